import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { OnnxBatchClient } from '../client';
import { UsageError } from '../errors';
import type { ExitCode } from '../exit-codes';

/**
 * What every `onnx-batch` command is made with: where it reads and writes, the connection
 * options every command takes, the client built from them, and the wrapper that turns an
 * action's answer into the process's exit code (exit-codes.ts says which code means what).
 */

/** Where the CLI reads and writes: the process's streams, or a test's. */
export interface CliIo {
  stdin: NodeJS.ReadableStream;
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
}

export const DEFAULT_URL = 'http://127.0.0.1:8080';

/** The options every command takes (`--url`, `--api-key`, `--ca-file`, `--quiet`). */
export interface ConnectionOptions {
  url: string;
  apiKey?: string;
  caFile?: string;
  quiet?: boolean;
}

/** An action: the command's first argument (a job id, a model name) and its options; answers its exit code. */
export type Action<T extends ConnectionOptions> = (arg: string | undefined, opts: T) => Promise<ExitCode>;

/** What a command module gets to add its command to the program. */
export interface CommandContext {
  /** The `onnx-batch` command itself. */
  program: Command;
  io: CliIo;
  /** Aborted on SIGINT/SIGTERM: stop waiting (exit 130). */
  signal: AbortSignal;
  /** A subcommand of `parent` (the program by default) with the connection options, so they may follow its name. */
  command(name: string, parent?: Command): Command;
  /** The handler commander calls: runs `action` and records its exit code. */
  run<T extends ConnectionOptions>(action: Action<T>): (...args: unknown[]) => Promise<void>;
  /** The client for the connection options of a command. */
  clientOf(opts: ConnectionOptions): OnnxBatchClient;
}

export function cliVersion(): string {
  try {
    return (JSON.parse(readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return '0.0.0';
  }
}

/** Adds the connection options to a command. */
export function withConnectionOptions(command: Command): Command {
  return command
    .addOption(new Option('--url <url>', 'server base URL').env('ONNX_BATCH_URL').default(DEFAULT_URL))
    .addOption(new Option('--api-key <key>', 'API key (prefer the environment variable: arguments show in ps)').env('ONNX_BATCH_API_KEY'))
    .addOption(new Option('--ca-file <file>', 'PEM file of a CA to trust for https:// besides the usual ones').env('ONNX_BATCH_CA_FILE'))
    .option('-q, --quiet', 'no progress or summary on stderr (errors are still printed)');
}

export function commandContext(program: Command, io: CliIo, signal: AbortSignal, setExitCode: (code: ExitCode) => void): CommandContext {
  return {
    program,
    io,
    signal,
    command: (name, parent = program) => withConnectionOptions(parent.command(name)),
    run:
      <T extends ConnectionOptions>(action: Action<T>) =>
      async (...args: unknown[]): Promise<void> => {
        const cmd = args[args.length - 1] as Command;
        const arg = typeof args[0] === 'string' ? args[0] : undefined;
        setExitCode(await action(arg, cmd.opts<T>()));
      },
    clientOf: (opts) => {
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
    },
  };
}

/** `--timeout` and the like: a positive number of seconds. */
export function parseSeconds(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('must be a positive number of seconds.');
  return n;
}

/** Writes a document as indented JSON on stdout. */
export function printJson(io: CliIo, value: unknown): void {
  io.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Rows of cells as columns two spaces apart (the last column not padded, no line ending in spaces). */
export function table(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return (
    rows
      .map((r) =>
        r
          .map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
          .join('  ')
          .trimEnd(),
      )
      .join('\n') + '\n'
  );
}
