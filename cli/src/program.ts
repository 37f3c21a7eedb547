import { createReadStream, readFileSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { OnnxBatchClient } from './client';
import { OnnxBatchError, UsageError, WaitTimeoutError } from './errors';
import { ExitCode, exitCodeForError, exitCodeForStatus } from './exit-codes';
import { inputFormat, outputFormat, OUTPUT_FORMATS, INPUT_FORMATS, type OutputFormat } from './formats';
import { nonClosing, writeFileAtomically } from './output-file';
import { BarJobProgress, countingBytes, formatDuration, PlainJobProgress, UploadProgress, type JobProgress } from './progress';
import type { JobStatusAnswer, ModelList, SubmitAnswer } from './types';

/** Where the CLI reads and writes: the process's streams, or a test's. */
export interface CliIo {
  stdin: NodeJS.ReadableStream;
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
}

export const DEFAULT_URL = 'http://127.0.0.1:8080';

/** How often progress is polled (and a plain progress line printed when stderr is not a terminal). */
const PLAIN_PROGRESS_SECONDS = 2;
const TTY_PROGRESS_SECONDS = 1;

interface ConnectionOptions {
  url: string;
  apiKey?: string;
  caFile?: string;
  quiet?: boolean;
}

interface WaitFlags extends ConnectionOptions {
  out?: string;
  timeout?: number;
}

interface SubmitFlags extends WaitFlags {
  model: string;
  version?: string;
  input: string;
  format?: string;
  wait?: boolean;
  outFormat?: string;
  priority?: number;
  idempotencyKey?: string;
  callbackUrl?: string;
}

interface ResultsFlags extends ConnectionOptions {
  out?: string;
  format?: string;
}

function cliVersion(): string {
  try {
    return (JSON.parse(readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return '0.0.0';
  }
}

function parsePriority(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 1000) throw new InvalidArgumentError('must be an integer from 1 (most urgent) to 1000.');
  return n;
}

function parseSeconds(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('must be a positive number of seconds.');
  return n;
}

const EXIT_CODES_HELP = `
Exit codes:
  0  completed (or the command did what it was asked)
  1  anything else (server error 5xx, local I/O error)
  2  usage error (bad option, unreadable or unrecognised input file)
  3  the server refused the request (4xx problem: invalid rows, unknown model or job, bad key)
  4  the job failed
  5  the job was cancelled
  6  --timeout passed before the job finished (the job goes on)
  7  server unreachable
  130 interrupted while waiting (the job goes on; resume with 'onnx-batch wait ID')

Environment:
  ONNX_BATCH_URL      server base URL (default ${DEFAULT_URL})
  ONNX_BATCH_API_KEY  API key, sent as 'Authorization: Bearer <key>'
  ONNX_BATCH_CA_FILE  PEM file of a CA to trust for https:// (a private CA), besides the usual ones`;

/** Builds the `onnx-batch` command. Actions resolve with the exit code they chose. */
export function buildProgram(io: CliIo, signal: AbortSignal, setExitCode: (code: ExitCode) => void): Command {
  const program = new Command('onnx-batch')
    .description('Submit batches to an onnx-batch server, follow them, and download their results.')
    .version(cliVersion(), '-V, --version', 'print the CLI version')
    .enablePositionalOptions()
    .exitOverride()
    .showHelpAfterError('(add --help for usage)')
    .configureOutput({ writeOut: (s) => void io.stdout.write(s), writeErr: (s) => void io.stderr.write(s) })
    .addHelpText('after', EXIT_CODES_HELP);

  /** --url, --api-key and --quiet on every command, so they may follow the command name. */
  const command = (name: string): Command =>
    program
      .command(name)
      .addOption(new Option('--url <url>', 'server base URL').env('ONNX_BATCH_URL').default(DEFAULT_URL))
      .addOption(new Option('--api-key <key>', 'API key (prefer the environment variable: arguments show in ps)').env('ONNX_BATCH_API_KEY'))
      .addOption(new Option('--ca-file <file>', 'PEM file of a CA to trust for https:// besides the usual ones').env('ONNX_BATCH_CA_FILE'))
      .option('-q, --quiet', 'no progress or summary on stderr (errors are still printed)');

  const clientOf = (opts: ConnectionOptions): OnnxBatchClient => {
    let ca: Buffer | undefined;
    try {
      ca = opts.caFile ? readFileSync(opts.caFile) : undefined;
    } catch (error) {
      throw new UsageError(`--ca-file: cannot read ${opts.caFile}: ${(error as Error).message}`);
    }
    try {
      return new OnnxBatchClient({ url: opts.url, apiKey: opts.apiKey, userAgent: `onnx-batch-cli/${cliVersion()}`, ca });
    } catch (error) {
      throw new UsageError(`--url: ${(error as Error).message}`);
    }
  };

  const run =
    <T extends ConnectionOptions>(action: (id: string | undefined, opts: T) => Promise<ExitCode>) =>
    async (...args: unknown[]): Promise<void> => {
      const cmd = args[args.length - 1] as Command;
      const id = typeof args[0] === 'string' ? args[0] : undefined;
      setExitCode(await action(id, cmd.opts<T>()));
    };

  command('submit')
    .description('Submit a batch file; with --wait (or --out) follow it and download its results. Prints the job id on stdout.')
    .requiredOption('-m, --model <name>', 'model name (see: onnx-batch models)')
    .option('--version <version>', "model version (the model's default when absent)")
    .requiredOption('-i, --input <file>', "batch file, or '-' for standard input; CSV and NDJSON stream up in bounded memory")
    .addOption(new Option('-f, --format <format>', 'input format (default: from the file extension)').choices(INPUT_FORMATS))
    .option('-w, --wait', 'wait for the job to finish, showing progress on stderr')
    .option('-o, --out <file>', "write the results here when the job completes ('-' = stdout); implies --wait")
    .addOption(new Option('--out-format <format>', 'results format (default: from the --out extension)').choices(OUTPUT_FORMATS))
    .option('-p, --priority <n>', '1 = most urgent … 1000 = least (server default 100)', parsePriority)
    .option('--idempotency-key <key>', 'a retried submit with the same key and body answers the first job')
    .option('--callback-url <url>', 'http(s) URL the server POSTs the job status to when it finishes')
    .option('-t, --timeout <seconds>', 'stop waiting after this long (exit 6; the job goes on)', parseSeconds)
    .addHelpText(
      'after',
      `
Formats: .csv (header row of feature names, optional 'id' column), .ndjson/.jsonl (one row object
or array a line), .json (one JSON array of rows, read into memory). Results: .csv, .ndjson/.jsonl
or .json by the --out extension.

Example:
  onnx-batch submit --model iris --input rows.csv --wait --out results.csv`,
    )
    .action(run<SubmitFlags>((_id, opts) => submit(clientOf(opts), opts, io, signal)));

  command('status')
    .description("Print a job's status document (JSON) on stdout.")
    .argument('<id>', 'job id')
    .action(
      run<ConnectionOptions>(async (id, opts) => {
        const { results: _results, ...status } = await clientOf(opts).status(String(id), { signal });
        io.stdout.write(`${JSON.stringify(status, null, 2)}\n`);
        return ExitCode.Ok;
      }),
    );

  command('wait')
    .description('Wait for a job to finish, showing progress; exit code by how it ended. Resumes a killed submit --wait.')
    .argument('<id>', 'job id')
    .option('-o, --out <file>', "write the results here when the job completes ('-' = stdout)")
    .addOption(new Option('-f, --format <format>', 'results format (default: from the --out extension)').choices(OUTPUT_FORMATS))
    .option('-t, --timeout <seconds>', 'stop waiting after this long (exit 6; the job goes on)', parseSeconds)
    .action(
      run<WaitFlags & { format?: string }>((id, opts) => {
        const format = opts.out === undefined ? null : outputFormat(opts.out, opts.format, '--format');
        return waitAndDownload(clientOf(opts), String(id), { ...opts, outFormat: format }, io, signal);
      }),
    );

  command('results')
    .description("Download a finished job's results.")
    .argument('<id>', 'job id')
    .option('-o, --out <file>', "output file ('-' or absent = stdout)", '-')
    .addOption(new Option('-f, --format <format>', 'results format (default: from the --out extension; ndjson on stdout)').choices(OUTPUT_FORMATS))
    .action(
      run<ResultsFlags>(async (id, opts) => {
        const out = opts.out ?? '-';
        await writeResults(clientOf(opts), String(id), out, outputFormat(out, opts.format, '--format'), io, signal);
        if (!opts.quiet && out !== '-') io.stderr.write(`results of job ${id} written to ${out}\n`);
        return ExitCode.Ok;
      }),
    );

  command('cancel')
    .description('Cancel a queued or running job; prints its status document (JSON).')
    .argument('<id>', 'job id')
    .action(
      run<ConnectionOptions>(async (id, opts) => {
        const { results: _results, ...status } = await clientOf(opts).cancel(String(id), { signal });
        io.stdout.write(`${JSON.stringify(status, null, 2)}\n`);
        if (!opts.quiet) io.stderr.write(`job ${id} is ${status.status}\n`);
        return ExitCode.Ok;
      }),
    );

  command('delete')
    .description('Delete a job with its inputs and results (cancelling it if it still runs).')
    .argument('<id>', 'job id')
    .action(
      run<ConnectionOptions>(async (id, opts) => {
        await clientOf(opts).delete(String(id), { signal });
        if (!opts.quiet) io.stderr.write(`job ${id} deleted\n`);
        return ExitCode.Ok;
      }),
    );

  command('models')
    .description('List the models the server serves, with their versions.')
    .option('--json', 'print the server answer as JSON')
    .action(
      run<ConnectionOptions & { json?: boolean }>(async (_id, opts) => {
        const list = await clientOf(opts).models({ signal });
        io.stdout.write(opts.json ? `${JSON.stringify(list, null, 2)}\n` : modelTable(list));
        return ExitCode.Ok;
      }),
    );

  return program;
}

/** The input as a byte stream and its size when known (a file; not stdin). */
async function openInput(file: string, io: CliIo): Promise<{ stream: AsyncIterable<Uint8Array>; size: number | null }> {
  if (file === '-') return { stream: io.stdin as AsyncIterable<Uint8Array>, size: null };
  const info = await stat(file).catch((error: NodeJS.ErrnoException) => {
    throw new UsageError(`cannot read --input '${file}': ${error.code === 'ENOENT' ? 'no such file' : error.message}`);
  });
  if (!info.isFile()) throw new UsageError(`--input '${file}' is not a file`);
  return { stream: createReadStream(file, { highWaterMark: 1024 * 1024 }), size: info.size };
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const parts: Buffer[] = [];
  for await (const chunk of stream as AsyncIterable<Buffer | string>) parts.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  return Buffer.concat(parts).toString('utf8');
}

/** A JSON input file: one array of rows (or `{"inputs": [...]}`), parsed in memory. */
async function readJsonRows(file: string, io: CliIo): Promise<object[]> {
  let text: string;
  try {
    text = file === '-' ? await readAll(io.stdin) : await readFile(file, 'utf8');
  } catch (error) {
    const e = error as NodeJS.ErrnoException;
    throw new UsageError(`cannot read --input '${file}': ${e.code === 'ENOENT' ? 'no such file' : e.message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new UsageError(`--input '${file}' is not valid JSON: ${(error as Error).message}`);
  }
  const rows = Array.isArray(parsed) ? parsed : (parsed as { inputs?: unknown } | null)?.inputs;
  if (!Array.isArray(rows)) throw new UsageError(`--input '${file}' must hold a JSON array of rows (or an object with an 'inputs' array)`);
  return rows as object[];
}

async function submit(client: OnnxBatchClient, opts: SubmitFlags, io: CliIo, signal: AbortSignal): Promise<ExitCode> {
  const format = inputFormat(opts.input, opts.format);
  // Check everything about the output before anything is uploaded.
  const outFormat = opts.out === undefined ? null : outputFormat(opts.out, opts.outFormat);
  const common = {
    model: opts.model,
    version: opts.version,
    priority: opts.priority,
    idempotencyKey: opts.idempotencyKey,
    callbackUrl: opts.callbackUrl,
    signal,
  };
  let answer: SubmitAnswer;
  if (format === 'json') {
    answer = await client.submit({ ...common, rows: await readJsonRows(opts.input, io) });
  } else {
    const { stream, size } = await openInput(opts.input, io);
    const upload = opts.quiet ? null : new UploadProgress(io.stderr, size);
    try {
      const body = upload ? countingBytes(stream, (sent) => upload.update(sent)) : stream;
      answer = await client.submitStream({ ...common, format, body });
    } finally {
      upload?.stop();
    }
  }
  // stdout carries the job id, unless it carries the results (`--out -`).
  if (opts.out !== '-') io.stdout.write(`${answer.jobId}\n`);
  if (!opts.quiet) io.stderr.write(`job ${answer.jobId} ${answer.status}\n`);
  if (!opts.wait && opts.out === undefined) return ExitCode.Ok;
  return waitAndDownload(client, answer.jobId, { ...opts, outFormat }, io, signal);
}

function progressFor(io: CliIo, quiet: boolean | undefined): { progress: JobProgress | null; pollSeconds: number | undefined } {
  if (quiet) return { progress: null, pollSeconds: undefined };
  if (io.stderr.isTTY) return { progress: new BarJobProgress(io.stderr), pollSeconds: TTY_PROGRESS_SECONDS };
  return { progress: new PlainJobProgress(io.stderr, PLAIN_PROGRESS_SECONDS * 1000 * 0.9), pollSeconds: PLAIN_PROGRESS_SECONDS };
}

/** Waits for a job with progress, writes its results if asked, and answers the exit code of how it ended. */
async function waitAndDownload(
  client: OnnxBatchClient,
  id: string,
  opts: WaitFlags & { outFormat: OutputFormat | null },
  io: CliIo,
  signal: AbortSignal,
): Promise<ExitCode> {
  const resume = `onnx-batch wait ${id}${opts.out === undefined ? '' : ` --out ${opts.out}`}`;
  const { progress, pollSeconds } = progressFor(io, opts.quiet);
  let final: JobStatusAnswer;
  try {
    final = await client.wait(id, {
      onProgress: progress ? (s) => progress.update(s) : undefined,
      pollSeconds,
      timeoutMs: opts.timeout === undefined ? undefined : opts.timeout * 1000,
      signal,
    });
  } catch (error) {
    progress?.stop();
    if (!(error instanceof OnnxBatchError && error.status === 404)) io.stderr.write(`job ${id} goes on; resume with: ${resume}\n`);
    throw error;
  }
  progress?.stop();
  const { done, total, failed } = final.progress;
  switch (final.status) {
    case 'completed': {
      if (!opts.quiet) {
        const took = final.startedAt && final.finishedAt ? ` in ${formatDuration((Date.parse(final.finishedAt) - Date.parse(final.startedAt)) / 1000)}` : '';
        io.stderr.write(`job ${id} completed: ${done}/${total} rows${took}\n`);
      }
      if (failed > 0) io.stderr.write(`warning: ${failed} of ${total} rows failed; their results carry an 'error'\n`);
      if (opts.out !== undefined && opts.outFormat !== null) {
        await writeResults(client, id, opts.out, opts.outFormat, io, signal);
        if (!opts.quiet && opts.out !== '-') io.stderr.write(`results written to ${opts.out}\n`);
      }
      break;
    }
    case 'failed':
      io.stderr.write(`job ${id} failed${final.error ? `: ${final.error.code}: ${final.error.detail}` : ''}\n`);
      break;
    case 'cancelled':
      io.stderr.write(`job ${id} was cancelled (${done}/${total} rows had run)\n`);
      break;
    case 'queued':
    case 'running':
      break;
  }
  return exitCodeForStatus(final.status);
}

async function writeResults(client: OnnxBatchClient, id: string, out: string, format: OutputFormat, io: CliIo, signal: AbortSignal): Promise<void> {
  if (out === '-') {
    await client.downloadResults(id, format, nonClosing(io.stdout), { signal });
    return;
  }
  await writeFileAtomically(out, (destination) => client.downloadResults(id, format, destination, { signal }));
}

function modelTable(list: ModelList): string {
  const rows: string[][] = [['MODEL', 'VERSION', 'DEFAULT', 'TASK', 'ACCURACY', 'FEATURES']];
  for (const model of list.models) {
    for (const v of model.versions) {
      const features = v.features.map((f) => f.name);
      rows.push([
        model.name,
        v.version,
        v.version === model.defaultVersion ? '*' : '',
        v.task,
        v.accuracy === null ? '-' : String(v.accuracy),
        features.length > 6 ? `${features.slice(0, 5).join(', ')}, … (${features.length})` : features.join(', '),
      ]);
    }
  }
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  ')).join('\n') + '\n';
}

/** What to tell a person about an error that ended a command. */
export function describeError(error: unknown): string {
  if (error instanceof OnnxBatchError) {
    const lines = [`onnx-batch: ${error.detail} (${error.code}, HTTP ${error.status})`];
    for (const e of error.errors.slice(0, 20)) {
      const where = [e.line !== undefined ? `line ${e.line}` : null, e.row !== undefined ? `row ${e.row}` : null, e.field !== undefined ? `field '${e.field}'` : null].filter(Boolean).join(', ');
      lines.push(`  ${where ? `${where}: ` : ''}${e.message}`);
    }
    if (error.errors.length > 20) lines.push(`  … and ${error.errors.length - 20} more`);
    return `${lines.join('\n')}\n`;
  }
  if (error instanceof WaitTimeoutError) return `onnx-batch: ${error.message}\n`;
  if (error instanceof Error) return `onnx-batch: ${error.message}\n`;
  return `onnx-batch: ${String(error)}\n`;
}

/**
 * Runs the CLI on `argv` (as process.argv: node, script, args…) and answers the exit code;
 * never throws. Aborting `signal` (SIGINT/SIGTERM in main.ts) stops waiting: exit 130.
 */
export async function runCli(argv: string[], io: CliIo, signal: AbortSignal = new AbortController().signal): Promise<ExitCode> {
  let code: ExitCode = ExitCode.Ok;
  const program = buildProgram(io, signal, (c) => {
    code = c;
  });
  try {
    await program.parseAsync(argv);
    return code;
  } catch (error) {
    if (error instanceof CommanderError) return exitCodeForError(error); // commander printed it
    if (signal.aborted) {
      io.stderr.write('onnx-batch: interrupted\n');
      return ExitCode.Interrupted;
    }
    io.stderr.write(describeError(error));
    return exitCodeForError(error);
  }
}
