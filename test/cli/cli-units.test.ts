import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import {
  describeError,
  ExitCode,
  exitCodeForError,
  exitCodeForStatus,
  formatDuration,
  inputFormat,
  jsonArrayText,
  ndjsonValues,
  OnnxBatchClient,
  OnnxBatchError,
  outputFormat,
  PlainJobProgress,
  RateMeter,
  splitLines,
  UnreachableError,
  UsageError,
  WaitTimeoutError,
  writeFileAtomically,
  type JobStatusAnswer,
} from '@onnx-batch/cli';
import { cliInProcess } from '../helpers/cli';

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

function chunksOf(...parts: (string | Uint8Array)[]): AsyncIterable<Uint8Array | string> {
  return Readable.from(parts, { objectMode: true }) as AsyncIterable<Uint8Array | string>;
}

function status(done: number, total: number, state: JobStatusAnswer['status'] = 'running'): JobStatusAnswer {
  return {
    jobId: 'job-1',
    status: state,
    model: { name: 'iris', version: '2', route: 'default' },
    progress: { done, total, failed: 0 },
    createdAt: '2026-01-01T00:00:00.000Z',
    startedAt: null,
    finishedAt: null,
    resultsUrl: '/v1/batch-result/job-1/results',
    error: null,
    results: null,
  };
}

describe('cli: formats', () => {
  it.each([
    ['rows.csv', 'csv'],
    ['ROWS.CSV', 'csv'],
    ['rows.ndjson', 'ndjson'],
    ['/data/nightly/rows.jsonl', 'ndjson'],
    ['rows.json', 'json'],
    ['rows.arrow', 'arrow'],
    ['rows.arrows', 'arrow'],
    ['/data/Rows.PARQUET', 'parquet'],
  ])('when the input is %s, then the format is %s', (file, format) => {
    expect(inputFormat(file)).toBe(format);
  });

  it('when --format is given, then it wins over the extension', () => {
    expect(inputFormat('rows.txt', 'ndjson')).toBe('ndjson');
    expect(inputFormat('rows.csv', 'json')).toBe('json');
  });

  it('EXPECTED FAILURE – when the extension tells nothing, then a usage error names --format', () => {
    expect(() => inputFormat('rows.txt')).toThrow(UsageError);
    expect(() => inputFormat('rows.txt')).toThrow(/--format/);
  });

  it('EXPECTED FAILURE – when the input is stdin without --format, then a usage error says --format is needed', () => {
    expect(() => inputFormat('-')).toThrow(/--format is needed/);
  });

  it('EXPECTED FAILURE – when --format is not a known format, then a usage error lists the known ones', () => {
    expect(() => inputFormat('rows.csv', 'xml')).toThrow(/csv, ndjson, json/);
  });

  it('when results go to stdout without a format, then they are NDJSON; a file takes its extension', () => {
    expect(outputFormat('-', undefined)).toBe('ndjson');
    expect(outputFormat('out/results.csv', undefined)).toBe('csv');
    expect(outputFormat('results.json', undefined)).toBe('json');
    expect(outputFormat('results.bin', 'csv')).toBe('csv');
    expect(() => outputFormat('results.bin', undefined)).toThrow(/--out-format/);
    expect(outputFormat('results.parquet', undefined)).toBe('parquet');
    expect(outputFormat('results.arrow', undefined)).toBe('arrow');
    expect(outputFormat('results.bin', 'parquet')).toBe('parquet');
  });

  it('EXPECTED FAILURE – when an output extension tells nothing, then the usage error lists the extensions it knows', () => {
    expect(() => outputFormat('results.feather', undefined)).toThrow(/\.arrow, \.arrows or \.parquet\); pass --out-format/);
  });
});

describe('cli: exit codes', () => {
  it('when every outcome is listed, then each has its own code', () => {
    const codes = Object.values(ExitCode);
    expect(new Set(codes).size).toBe(codes.length);
    expect(ExitCode).toMatchObject({ Ok: 0, Error: 1, Usage: 2, Rejected: 3, JobFailed: 4, JobCancelled: 5, Timeout: 6, Unreachable: 7 });
  });

  it('when a job finishes, then completed is 0, failed 4 and cancelled 5', () => {
    expect(exitCodeForStatus('completed')).toBe(0);
    expect(exitCodeForStatus('failed')).toBe(4);
    expect(exitCodeForStatus('cancelled')).toBe(5);
  });

  it.each([
    ['a 400 problem', new OnnxBatchError(400, { code: 'OB_ERR_INVALID_ROWS', detail: 'line 3: bad' }), 3],
    ['a 404 problem', new OnnxBatchError(404, { code: 'OB_ERR_JOB_NOT_FOUND', detail: 'no job' }), 3],
    ['a 429 problem', new OnnxBatchError(429, { code: 'OB_ERR_RATE_LIMITED', detail: 'slow down' }), 3],
    ['a 500 problem', new OnnxBatchError(500, { code: 'OB_ERR_INTERNAL', detail: 'oops' }), 1],
    ['a 502 page from a proxy', new OnnxBatchError(502, { detail: '<html>bad gateway</html>' }), 1],
    ['an unreachable server', new UnreachableError('http://127.0.0.1:9', new Error('connect ECONNREFUSED')), 7],
    ['a wait timeout', new WaitTimeoutError('job-1', 5000, 'running'), 6],
    ['a usage error', new UsageError('bad flag'), 2],
    ['anything else', new Error('disk full'), 1],
  ])('when a command ends with %s, then the exit code is %s', (_what, error, code) => {
    expect(exitCodeForError(error)).toBe(code);
  });

  it('when commander refuses the command line, then the exit code is 2 and the reason is on stderr', async () => {
    const missing = await cliInProcess('submit', '--model', 'iris');
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/required option '-i, --input <file>'/);

    const unknown = await cliInProcess('status', 'abc', '--bogus');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown option '--bogus'/);

    const priority = await cliInProcess('submit', '-m', 'iris', '-i', 'rows.csv', '--priority', '0');
    expect(priority.code).toBe(2);
    expect(priority.stderr).toMatch(/--priority/);
  });

  it('when the input extension tells no format, then the exit code is 2 before anything is sent', async () => {
    const run = await cliInProcess('submit', '-m', 'iris', '-i', 'rows.txt', '--url', 'http://127.0.0.1:9');
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/cannot tell the format of input 'rows.txt'/);
  });

  it.each([
    [
      '--format and --input-format',
      ['-i', 'rows.csv', '--format', 'csv', '--input-format', 'parquet'],
      /--format 'csv' and --input-format 'parquet' disagree/,
    ],
    ['--out-format and --output-format', ['-i', 'rows.csv', '-o', 'r.csv', '--out-format', 'csv', '--output-format', 'arrow'], /disagree/],
    ['--output-format without --out', ['-i', 'rows.parquet', '--output-format', 'parquet'], /needs --out <file>/],
    ['an --out extension it does not know', ['-i', 'rows.parquet', '-o', 'results.feather'], /cannot tell the format of output/],
    ['an unknown --input-format', ['-i', 'rows.parquet', '--input-format', 'orc'], /argument 'orc' is invalid/],
  ])('EXPECTED FAILURE – when submit is given %s, then the exit code is 2 before anything is sent', async (_what, args, message) => {
    const run = await cliInProcess('submit', '-m', 'iris', ...args, '--url', 'http://127.0.0.1:9');
    expect(run.stderr).toMatch(message);
    expect(run.code).toBe(2);
  });

  it('EXPECTED FAILURE – when results is given --format and --output-format that disagree, then the exit code is 2', async () => {
    const run = await cliInProcess('results', 'job-1', '-o', 'r.parquet', '--format', 'parquet', '--output-format', 'csv');
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/--format 'parquet' and --output-format 'csv' disagree/);
  });

  it.each(['submit', 'status', 'wait', 'results', 'cancel', 'delete', 'jobs', 'models'])(
    'when %s --help is asked, then it prints usage and exits 0',
    async (command) => {
      const run = await cliInProcess(command, '--help');
      expect(run.code).toBe(0);
      expect(run.stdout).toMatch(new RegExp(`^Usage: onnx-batch ${command}`));
      expect(run.stdout).toMatch(/--url <url>/);
    },
  );

  it('when the top-level help is asked, then it lists the exit codes and environment variables', async () => {
    const run = await cliInProcess('--help');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/7 {2}server unreachable/);
    expect(run.stdout).toMatch(/ONNX_BATCH_API_KEY/);
  });
});

describe('cli: NDJSON and JSON writers', () => {
  it('when lines are split across chunks (and a UTF-8 character too), then each line comes whole', async () => {
    const bytes = Buffer.from('{"a":"é"}\r\n\n{"b":2}\n{"c":3}');
    const split = [bytes.subarray(0, 8), bytes.subarray(8, 13), bytes.subarray(13)];

    expect(await collect(splitLines(chunksOf(...split)))).toEqual(['{"a":"é"}', '{"b":2}', '{"c":3}']);
  });

  it('when NDJSON values are read, then each line is parsed; a bad line is named', async () => {
    expect(await collect(ndjsonValues(chunksOf('{"id":1}\n[2]\n')))).toEqual([{ id: 1 }, [2]]);
    await expect(collect(ndjsonValues(chunksOf('{"id":1}\n{oops\n')))).rejects.toThrow(/NDJSON value 2/);
  });

  it.each([0, 1, 3, 500])('when %i NDJSON lines are re-framed as a JSON array, then the text parses to the same values', async (n) => {
    const values = Array.from({ length: n }, (_, i) => ({ id: `r${i}`, label: 'setosa', p: [i, 0.5] }));
    const text = (await collect(jsonArrayText(chunksOf(...values.map((v) => JSON.stringify(v))) as AsyncIterable<string>, 64))).join('');

    expect(JSON.parse(text)).toEqual(values);
    expect(text.endsWith(']\n')).toBe(true);
  });

  it('when a file is written atomically and the writer fails, then neither the file nor a partial file is left', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'onnx-batch-cli-unit-'));
    try {
      const file = path.join(dir, 'results.csv');
      await writeFileAtomically(file, (out) => new Promise((resolve) => out.end('a,b\n', resolve)));
      expect(readFileSync(file, 'utf8')).toBe('a,b\n');

      const failing = path.join(dir, 'failed.csv');
      await expect(
        writeFileAtomically(failing, (out) => {
          out.write('half');
          return Promise.reject(new Error('connection lost'));
        }),
      ).rejects.toThrow('connection lost');
      expect(readdirSync(dir)).toEqual(['results.csv']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('cli: progress', () => {
  it('when rows go at a steady rate, then the meter reports it and the ETA of the rest', () => {
    const meter = new RateMeter(10_000);
    meter.sample(0, 0);
    meter.sample(1000, 1000);
    meter.sample(3000, 2000);

    expect(meter.rate()).toBe(1500);
    expect(meter.eta(3000, 6000)).toBe(2);
    expect(meter.eta(6000, 6000)).toBe(0);
  });

  it('when nothing has moved yet, then rate and ETA are unknown', () => {
    const meter = new RateMeter();
    meter.sample(0, 0);
    expect(meter.rate()).toBeNull();
    expect(meter.eta(0, 10)).toBeNull();
  });

  it.each([
    [null, '?'],
    [4.4, '4s'],
    [65, '1m05s'],
    [3725, '1h02m'],
  ])('when %s seconds are formatted, then they read %s', (seconds, text) => {
    expect(formatDuration(seconds)).toBe(text);
  });

  it('when stderr is not a terminal, then progress is plain lines at most every interval, plus the final one', () => {
    const written: string[] = [];
    let now = 0;
    const progress = new PlainJobProgress({ write: (t: string) => written.push(t) }, 2000, () => now);
    for (let t = 0; t <= 5000; t += 500) {
      now = t;
      progress.update(status(t * 10, 100_000));
    }
    now = 5200;
    progress.update(status(100_000, 100_000, 'completed'));

    expect(written).toHaveLength(4); // at 0, 2000 and 4000 ms, then completed
    expect(written[1]).toBe('job job-1: running, 20000/100000 rows (20.0%), 10k rows/s, ETA 8s\n');
    expect(written[3]).toBe('job job-1: completed, 100000/100000 rows (100.0%)\n');
    expect(written.join('')).not.toMatch(/\x1b/); // eslint-disable-line no-control-regex
  });
});

describe('cli: errors and client', () => {
  it('when the server answers a problem, then the error carries its fields and the CLI prints each offending row', () => {
    const error = new OnnxBatchError(400, {
      type: 'urn:onnx-batch:problem:invalid-rows',
      title: 'Invalid input rows',
      status: 400,
      code: 'OB_ERR_INVALID_ROWS',
      detail: "line 3: field 'petal_length' must be <= 10; nothing was queued",
      errors: [{ line: 3, field: 'petal_length', message: 'must be <= 10' }],
    });

    expect(error).toMatchObject({ status: 400, code: 'OB_ERR_INVALID_ROWS', title: 'Invalid input rows', isClientError: true });
    expect(error.message).toBe(error.detail);
    expect(describeError(error)).toBe(
      "onnx-batch: line 3: field 'petal_length' must be <= 10; nothing was queued (OB_ERR_INVALID_ROWS, HTTP 400)\n  line 3, " +
        "field 'petal_length': must be <= 10\n",
    );
  });

  it('when an answer is not problem+json, then the error has code HTTP_<status> and the text as detail', () => {
    const error = new OnnxBatchError(502, { title: 'Bad Gateway', detail: 'upstream down' });
    expect(error).toMatchObject({ code: 'HTTP_502', detail: 'upstream down', errors: [], isClientError: false });
  });

  it("when fetch fails, then the unreachable error says why from the failure's cause", () => {
    const cause = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED' });
    const error = new UnreachableError('http://127.0.0.1:9', new TypeError('fetch failed', { cause }));
    expect(error.message).toBe('cannot reach http://127.0.0.1:9: connect ECONNREFUSED 127.0.0.1:9');
  });

  it('EXPECTED FAILURE – when the URL is not http(s), then the client refuses it naming url', () => {
    expect(() => new OnnxBatchClient({ url: 'ftp://example.test' })).toThrow(/url must be http or https/);
    expect(() => new OnnxBatchClient({ url: 'not a url' })).toThrow(/url must be an absolute/);
  });

  it('when the URL has a path prefix or trailing slash, then requests keep the prefix', () => {
    expect(new OnnxBatchClient({ url: 'https://host.test/onnx/' }).url).toBe('https://host.test/onnx');
  });
});
