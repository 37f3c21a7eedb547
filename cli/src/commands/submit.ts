import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { InvalidArgumentError, Option } from 'commander';
import type { OnnxBatchClient } from '../client';
import { UsageError } from '../errors';
import { ExitCode } from '../exit-codes';
import { eitherFlag, inputFormat, INPUT_FORMATS, OUTPUT_FORMATS, outputFormat } from '../formats';
import { countingBytes, UploadProgress } from '../progress';
import type { SubmitAnswer } from '../types';
import { parseSeconds, type CliIo, type CommandContext } from './command-kit';
import { waitAndDownload, type WaitFlags } from './wait';

interface SubmitFlags extends WaitFlags {
  model: string;
  version?: string;
  input: string;
  format?: string;
  inputFormat?: string;
  wait?: boolean;
  outFormat?: string;
  outputFormat?: string;
  priority?: number;
  idempotencyKey?: string;
  callbackUrl?: string;
  passthrough?: string;
}

function parsePriority(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 1000) throw new InvalidArgumentError('must be an integer from 1 (most urgent) to 1000.');
  return n;
}

/** `onnx-batch submit`: uploads a batch file; with --wait (or --out) follows it and writes its results. */
export function addSubmitCommand(ctx: CommandContext): void {
  ctx
    .command('submit')
    .description('Submit a batch file; with --wait (or --out) follow it and download its results. Prints the job id on stdout.')
    .requiredOption('-m, --model <name>', 'model name (see: onnx-batch models)')
    .option('--version <version>', "model version (the model's default when absent)")
    .requiredOption(
      '-i, --input <file>',
      "batch file, or '-' for standard input; CSV, NDJSON, Arrow and Parquet go up as the file's bytes, in bounded memory",
    )
    .addOption(new Option('-f, --format <format>', 'input format (default: from the file extension)').choices(INPUT_FORMATS))
    .addOption(new Option('--input-format <format>', 'the same as --format').choices(INPUT_FORMATS))
    .option('-w, --wait', 'wait for the job to finish, showing progress on stderr')
    .option('-o, --out <file>', "write the results here when the job completes ('-' = stdout); implies --wait")
    .addOption(new Option('--out-format <format>', 'results format (default: from the --out extension)').choices(OUTPUT_FORMATS))
    .addOption(new Option('--output-format <format>', 'the same as --out-format').choices(OUTPUT_FORMATS))
    .option('-p, --priority <n>', '1 = most urgent … 1000 = least (server default 100)', parsePriority)
    .option('--idempotency-key <key>', 'a retried submit with the same key and body answers the first job')
    .option('--callback-url <url>', 'http(s) URL the server POSTs the job status to when it finishes')
    .option('--passthrough <columns>', 'Arrow/Parquet input: comma-separated columns (not features) returned beside the predictions')
    .option('-t, --timeout <seconds>', 'stop waiting after this long (exit 6; the job goes on)', parseSeconds)
    .addHelpText(
      'after',
      `
Formats: .csv (header row of feature names, optional 'id' column), .ndjson/.jsonl (one row object
or array a line), .json (one JSON array of rows, read into memory), .arrow/.arrows (an Arrow IPC
stream, columns named as the features, optional 'id' column), .parquet (a Parquet file, the same
columns). Arrow and Parquet are sent as they are, never parsed here. Results: .csv, .ndjson/.jsonl,
.json, .arrow/.arrows (Arrow IPC stream) or .parquet by the --out extension.

Examples:
  onnx-batch submit --model iris --input rows.csv --wait --out results.csv
  onnx-batch submit --model iris --input rows.parquet --out results.parquet`,
    )
    .action(ctx.run<SubmitFlags>((_id, opts) => submit(ctx.clientOf(opts), opts, ctx.io, ctx.signal)));
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
  const format = inputFormat(
    opts.input,
    eitherFlag([
      ['--format', opts.format],
      ['--input-format', opts.inputFormat],
    ]),
  );
  // Check everything about the output before anything is uploaded.
  const explicitOut = eitherFlag([
    ['--out-format', opts.outFormat],
    ['--output-format', opts.outputFormat],
  ]);
  if (opts.out === undefined && explicitOut !== undefined) throw new UsageError('--out-format/--output-format needs --out <file>');
  const outFormat = opts.out === undefined ? null : outputFormat(opts.out, explicitOut);
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
      const passthrough = opts.passthrough?.split(',').map((name) => name.trim());
      answer = await client.submitStream({ ...common, format, body, passthrough });
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
