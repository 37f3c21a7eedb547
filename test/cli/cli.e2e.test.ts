import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { Float64, Table, tableFromIPC, tableToIPC, Utf8, vectorFromArray } from 'apache-arrow';
import { formatFloat } from '@onnx-batch/shared';
import { runCli, unusedPort, type CliRun } from '../helpers/cli';
import { dropPrefix, newRedis, testEnv } from '../helpers/env';
import { spawnApi, spawnWorker, type Spawned } from '../helpers/processes';
import { irisNdjson, irisRow } from '../helpers/reliability';

const ROWS = 100_000;
const LABELS = new Set(['setosa', 'versicolor', 'virginica']);
const JOB_ID = /^[0-9a-f-]{36}$/;

/** A CSV batch of iris rows [0, rows) with an `id` column, as a nightly export would write it. */
function irisCsv(rows: number, edit: (i: number, line: string) => string = (_i, line) => line): string {
  const lines = ['id,sepal_length,sepal_width,petal_length,petal_width'];
  for (let i = 0; i < rows; i++) {
    const r = irisRow(i);
    lines.push(edit(i, `${r.id},${r.sepal_length},${r.sepal_width},${r.petal_length},${r.petal_width}`));
  }
  return `${lines.join('\n')}\n`;
}

interface IrisResult {
  id: string;
  label: string;
  confidence: number;
  probabilities: Record<string, number>;
}

function ndjsonResults(text: string): IrisResult[] {
  return text
    .trimEnd()
    .split('\n')
    .map((line) => JSON.parse(line) as IrisResult);
}

/**
 * A typed results row (Parquet read by DuckDB, Arrow by apache-arrow) against the NDJSON result of
 * the same row: ids and labels equal, every float32 printed as the JSON prints it equal to it.
 */
function expectRowsEqualResults(rows: Record<string, unknown>[], results: IrisResult[]): void {
  expect(rows).toHaveLength(results.length);
  const mismatches: string[] = [];
  rows.forEach((row, i) => {
    const want = results[i] as IrisResult;
    const float = (value: unknown): number => Number(formatFloat(value as number));
    const same =
      row.id === want.id &&
      row.label === want.label &&
      row.error === null &&
      float(row.confidence) === want.confidence &&
      Object.entries(want.probabilities).every(([label, p]) => float(row[`p_${label}`]) === p);
    if (!same) mismatches.push(`row ${i}: ${JSON.stringify(row)} vs ${JSON.stringify(want)}`);
  });
  expect(mismatches.slice(0, 5)).toEqual([]);
}

async function stopAndClean(prefix: string, ...procs: (Spawned | undefined)[]): Promise<void> {
  await Promise.all(procs.map((p) => p?.stop() ?? Promise.resolve(null)));
  const redis = newRedis();
  await dropPrefix(redis, prefix);
  await redis.quit();
}

describe('onnx-batch CLI end to end: real api, worker and CLI processes', () => {
  const env = testEnv();
  let api: Spawned | undefined;
  let worker: Spawned | undefined;
  let url: string;
  let dir: string;
  const cli = (args: string[], options: { input?: string } = {}): Promise<CliRun> =>
    runCli([...args, '--url', url], { cwd: dir, ...options });

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'onnx-batch-cli-'));
    writeFileSync(path.join(dir, 'rows.csv'), irisCsv(ROWS));
    [{ proc: api, url }, worker] = await Promise.all([spawnApi(env), spawnWorker(env)]);
  });

  afterAll(async () => {
    await stopAndClean(env.REDIS_PREFIX, api, worker);
    rmSync(dir, { recursive: true, force: true });
  });

  describe('when a 100 000-row CSV with ids is submitted with --wait --out results.csv', () => {
    let run: CliRun;

    beforeAll(async () => {
      run = await cli(['submit', '--model', 'iris', '--input', 'rows.csv', '--wait', '--out', 'results.csv']);
    }, 60_000);

    it('then it exits 0 and prints the job id on stdout', () => {
      expect(run.stderr).not.toMatch(/onnx-batch:/);
      expect(run.code).toBe(0);
      expect(run.stdout.trim()).toMatch(JOB_ID);
    });

    it('then results.csv holds 100 000 results in input order with the ids kept', () => {
      const lines = readFileSync(path.join(dir, 'results.csv'), 'utf8').trimEnd().split('\n');

      expect(lines[0]).toBe('id,label,confidence,p_setosa,p_versicolor,p_virginica,error');
      expect(lines).toHaveLength(ROWS + 1);
      const misplaced: string[] = [];
      lines.slice(1).forEach((line, i) => {
        const cells = line.split(',');
        if (cells[0] !== `r${i}` || !LABELS.has(cells[1] ?? '') || cells[6] !== '') misplaced.push(line);
      });
      expect(misplaced.slice(0, 5)).toEqual([]);
    });

    it('then, stderr not being a terminal, progress comes as plain lines without escape codes', () => {
      const id = run.stdout.trim();
      expect(run.stderr).toContain(`job ${id}: completed, ${ROWS}/${ROWS} rows (100.0%)\n`);
      expect(run.stderr).toMatch(new RegExp(`^job ${id}: (queued|running|completed), \\d+/${ROWS} rows`, 'm'));
      expect(run.stderr).not.toMatch(/\x1b\[/); // eslint-disable-line no-control-regex
    });
  });

  it('when NDJSON comes on stdin, then wait --out .json and results on stdout give the same results in order', async () => {
    const submitted = await cli(['submit', '-m', 'iris', '--version', '1', '-i', '-', '-f', 'ndjson', '-q'], {
      input: irisNdjson(0, 1000),
    });
    expect(submitted.code).toBe(0);
    const id = submitted.stdout.trim();

    const waited = await cli(['wait', id, '--out', 'stdin-results.json']);
    const streamed = await cli(['results', id]);

    expect(waited.code).toBe(0);
    const asJson = JSON.parse(readFileSync(path.join(dir, 'stdin-results.json'), 'utf8')) as { id: string; label: string }[];
    expect(asJson.map((r) => r.id)).toEqual(Array.from({ length: 1000 }, (_, i) => `r${i}`));
    expect(streamed.code).toBe(0);
    expect(
      streamed.stdout
        .trimEnd()
        .split('\n')
        .map((l) => JSON.parse(l) as unknown),
    ).toEqual(asJson);
  });

  it('when submit writes its results to stdout (--out -), then stdout carries only the results and the id goes to stderr', async () => {
    const run = await cli(['submit', '-m', 'iris', '-i', '-', '-f', 'csv', '--out', '-'], { input: irisCsv(5) });

    expect(run.code).toBe(0);
    const lines = run.stdout
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as { id: string });
    expect(lines.map((r) => r.id)).toEqual(['r0', 'r1', 'r2', 'r3', 'r4']);
    expect(run.stderr).toMatch(/^job [0-9a-f-]{36} queued$/m);
  });

  it('when a JSON file of rows is submitted, then it is sent as one JSON body and its results come back', async () => {
    writeFileSync(path.join(dir, 'rows.json'), JSON.stringify([irisRow(0), irisRow(1), [6.7, 3.0, 5.2, 2.3]]));

    const run = await cli(['submit', '-m', 'iris', '-i', 'rows.json', '-o', 'json-results.ndjson', '-q']);

    expect(run.code).toBe(0);
    const results = readFileSync(path.join(dir, 'json-results.ndjson'), 'utf8')
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as { id?: string; label: string });
    expect(results.map((r) => r.id)).toEqual(['r0', 'r1', undefined]);
    expect(results[2]?.label).toBe('virginica');
  });

  it(
    'when a Parquet file DuckDB wrote is submitted with --out out.parquet and with --out out.ndjson, then DuckDB reads ' +
      'out.parquet back and every value equals the NDJSON result of the same row',
    async () => {
      writeFileSync(path.join(dir, 'duck.csv'), irisCsv(1000));
      const duck = await DuckDBInstance.create(':memory:');
      const db = await duck.connect();
      // What a user's own `duckdb -c "COPY (SELECT …) TO 'in.parquet'"` does, in several row groups.
      await db.run(
        `COPY (SELECT * FROM read_csv('${path.join(dir, 'duck.csv')}')) TO '${path.join(dir, 'in.parquet')}' (ROW_GROUP_SIZE 300)`,
      );

      const parquet = await cli(['submit', '--model', 'iris', '--input', 'in.parquet', '--out', 'out.parquet', '--wait']);
      const ndjson = await cli(['submit', '--model', 'iris', '--input', 'in.parquet', '--out', 'out.ndjson', '-q']);
      const again = await cli(['results', parquet.stdout.trim(), '--out', 'again.bin', '--output-format', 'parquet']);

      expect(parquet.stderr).not.toMatch(/onnx-batch:/);
      expect(parquet.code).toBe(0);
      expect(parquet.stdout.trim()).toMatch(JOB_ID);
      expect(parquet.stderr).toContain('results written to out.parquet');
      expect(ndjson.code).toBe(0);
      expect(again.code).toBe(0);
      const read = await db.runAndReadAll(
        `SELECT * EXCLUDE (file_row_number) FROM read_parquet('${path.join(dir, 'out.parquet')}', file_row_number = true) ` +
          'ORDER BY file_row_number',
      );
      const rows = read.getRowObjectsJS() as Record<string, unknown>[];
      const results = ndjsonResults(readFileSync(path.join(dir, 'out.ndjson'), 'utf8'));
      expect(results.map((r) => r.id)).toEqual(Array.from({ length: 1000 }, (_, i) => `r${i}`));
      expectRowsEqualResults(rows, results);
      expect(readFileSync(path.join(dir, 'again.bin')).equals(readFileSync(path.join(dir, 'out.parquet')))).toBe(true);
      expect(readdirSync(dir).filter((f) => f.includes('.partial-'))).toEqual([]);
      db.closeSync();
    },
  );

  it('when an Arrow IPC stream apache-arrow wrote is submitted with --out out.arrow, then its rows equal the NDJSON results', async () => {
    const rows = Array.from({ length: 500 }, (_, i) => irisRow(i));
    const features = ['sepal_length', 'sepal_width', 'petal_length', 'petal_width'] as const;
    const table = new Table({
      id: vectorFromArray(
        rows.map((r) => r.id),
        new Utf8(),
      ),
      ...Object.fromEntries(
        features.map((f) => [
          f,
          vectorFromArray(
            rows.map((r) => r[f]),
            new Float64(),
          ),
        ]),
      ),
    });
    writeFileSync(path.join(dir, 'in.arrow'), tableToIPC(table, 'stream'));

    const run = await cli(['submit', '-m', 'iris', '-i', 'in.arrow', '-o', 'out.arrow', '-q']);
    const streamed = await cli(['results', run.stdout.trim()]);

    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const results = tableFromIPC(readFileSync(path.join(dir, 'out.arrow')));
    const plain = results.toArray().map((row: { toJSON(): Record<string, unknown> }) => row.toJSON());
    expectRowsEqualResults(plain, ndjsonResults(streamed.stdout));
    expect(plain.map((r) => r.id)).toEqual(rows.map((r) => r.id));
  });

  it('when an Arrow file carries a column that is not a feature, then --passthrough returns it beside each prediction', async () => {
    const rows = Array.from({ length: 20 }, (_, i) => irisRow(i));
    const features = ['sepal_length', 'sepal_width', 'petal_length', 'petal_width'] as const;
    const table = new Table({
      ...Object.fromEntries(
        features.map((f) => [
          f,
          vectorFromArray(
            rows.map((r) => r[f]),
            new Float64(),
          ),
        ]),
      ),
      region: vectorFromArray(
        rows.map((_, i) => `region-${i % 3}`),
        new Utf8(),
      ),
    });
    writeFileSync(path.join(dir, 'regions.arrow'), tableToIPC(table, 'stream'));

    const refused = await cli(['submit', '-m', 'iris', '-i', 'regions.arrow', '-q']);
    const kept = await cli(['submit', '-m', 'iris', '-i', 'regions.arrow', '--passthrough', 'region', '-o', 'regions.ndjson', '-q']);

    expect(refused.code).toBe(3);
    expect(refused.stderr).toMatch(/column 'region' is not a feature .* name it in \?passthrough= to keep it/);
    expect(kept.code).toBe(0);
    const lines = ndjsonResults(readFileSync(path.join(dir, 'regions.ndjson'), 'utf8')) as unknown as { passthrough?: unknown }[];
    expect(lines.map((l) => l.passthrough)).toEqual(rows.map((_, i) => ({ region: `region-${i % 3}` })));
  });

  it('EXPECTED FAILURE – when an .arrow file is not an Arrow stream, then the server refuses it, exit 3, nothing written', async () => {
    writeFileSync(path.join(dir, 'broken.arrow'), 'id,sepal_length\nr0,1\n');

    const run = await cli(['submit', '-m', 'iris', '-i', 'broken.arrow', '-o', 'broken-results.parquet']);

    expect(run.code).toBe(3);
    expect(run.stderr).toMatch(/Arrow/);
    expect(run.stdout).toBe('');
    expect(readdirSync(dir).filter((f) => f.startsWith('broken-results') || f.includes('.partial-'))).toEqual([]);
  });

  it(
    "EXPECTED FAILURE – when a row is out of bounds, then exit 3 with the server's message naming line and field, " + 'and no job id',
    async () => {
      writeFileSync(
        path.join(dir, 'bad.csv'),
        irisCsv(10, (i, line) => (i === 3 ? 'r3,5.1,3.5,99,0.2' : line)),
      );

      const run = await cli(['submit', '-m', 'iris', '-i', 'bad.csv', '--wait']);

      expect(run.code).toBe(3);
      expect(run.stdout).toBe('');
      expect(run.stderr).toMatch(/line 5/);
      expect(run.stderr).toMatch(/petal_length/);
      expect(run.stderr).toMatch(/OB_ERR_INVALID_ROWS, HTTP 400/);
    },
  );

  it('EXPECTED FAILURE – when status is asked of an unknown job, then exit 3 with OB_ERR_JOB_NOT_FOUND', async () => {
    const run = await cli(['status', '00000000-0000-4000-8000-000000000000']);

    expect(run.code).toBe(3);
    expect(run.stderr).toMatch(/OB_ERR_JOB_NOT_FOUND, HTTP 404/);
  });

  it('EXPECTED FAILURE – when nothing listens at the URL, then submit and status exit 7', async () => {
    const nowhere = `http://127.0.0.1:${await unusedPort()}`;

    const submit = await runCli(['submit', '-m', 'iris', '-i', 'rows.csv', '--url', nowhere], { cwd: dir });
    const status = await runCli(['status', 'x'], { cwd: dir, env: { ONNX_BATCH_URL: nowhere } });

    expect(submit.code).toBe(7);
    expect(submit.stderr).toMatch(/cannot reach http:\/\/127\.0\.0\.1:\d+: .*ECONNREFUSED/);
    expect(status.code).toBe(7);
  });

  it('when models is asked, then the table lists every iris version and marks the default, and diabetes without accuracy', async () => {
    const run = await cli(['models']);

    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^MODEL\s+VERSION\s+DEFAULT\s+TASK/);
    expect(run.stdout).toMatch(/^iris\s+1\s+classification/m);
    expect(run.stdout).toMatch(/^iris\s+2\s+\*\s+classification/m);
    expect(run.stdout).toMatch(/^iris\s+3\s+classification/m);
    expect(run.stdout).toMatch(/^diabetes\s+1\s+\*\s+regression\s+-\s/m);
  });

  it('when the same --idempotency-key is sent twice with the same file, then both submits answer the same job', async () => {
    writeFileSync(path.join(dir, 'small.csv'), irisCsv(20));
    const args = ['submit', '-m', 'iris', '-i', 'small.csv', '--idempotency-key', `nightly-${env.REDIS_PREFIX}`, '-q'];

    const first = await cli(args);
    const second = await cli(args);

    expect(first.code).toBe(0);
    expect(second.code).toBe(0);
    expect(second.stdout).toBe(first.stdout);
  });
});

describe('onnx-batch CLI end to end: an api with API keys and no worker (jobs stay queued)', () => {
  const KEY = 'cli-e2e-key-0123456789abcdef';
  const env = testEnv({ API_KEYS: `cli-tenant:${KEY}` });
  let api: Spawned | undefined;
  let url: string;
  let dir: string;
  const cli = (args: string[]): Promise<CliRun> => runCli(args, { cwd: dir, env: { ONNX_BATCH_URL: url, ONNX_BATCH_API_KEY: KEY } });

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'onnx-batch-cli-'));
    writeFileSync(path.join(dir, 'rows.csv'), irisCsv(50));
    ({ proc: api, url } = await spawnApi(env));
  });

  afterAll(async () => {
    await stopAndClean(env.REDIS_PREFIX, api);
    rmSync(dir, { recursive: true, force: true });
  });

  it('EXPECTED FAILURE – when no key is given, then exit 3 with OB_ERR_UNAUTHORIZED', async () => {
    const run = await runCli(['models', '--url', url], { cwd: dir });

    expect(run.code).toBe(3);
    expect(run.stderr).toMatch(/OB_ERR_UNAUTHORIZED, HTTP 401/);
  });

  it('when a queued job is waited on with --timeout 1, then exit 6 and stderr says how to resume', async () => {
    const submitted = await cli(['submit', '-m', 'iris', '-i', 'rows.csv', '-q']);
    const id = submitted.stdout.trim();

    const run = await cli(['wait', id, '--timeout', '1', '--out', 'later.csv']);

    expect(run.code).toBe(6);
    expect(run.stderr).toContain(`resume with: onnx-batch wait ${id} --out later.csv`);
  });

  it('when a queued job is cancelled, then cancel exits 0, wait exits 5, delete exits 0 and status then exits 3', async () => {
    const id = (await cli(['submit', '-m', 'iris', '-i', 'rows.csv', '-q'])).stdout.trim();

    const cancelled = await cli(['cancel', id]);
    const waited = await cli(['wait', id]);
    const deleted = await cli(['delete', id]);
    const status = await cli(['status', id]);

    expect(cancelled.code).toBe(0);
    expect(JSON.parse(cancelled.stdout)).toMatchObject({ jobId: id, status: 'cancelled' });
    expect(waited.code).toBe(5);
    expect(deleted.code).toBe(0);
    expect(status.code).toBe(3);
  });
});
