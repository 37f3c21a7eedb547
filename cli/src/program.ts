import { Command, CommanderError } from 'commander';
import { addCancelCommand } from './commands/cancel';
import { cliVersion, commandContext, DEFAULT_URL, type CliIo } from './commands/command-kit';
import { addDeleteCommand } from './commands/delete';
import { addEvaluateCommand } from './commands/evaluate';
import { addJobsCommand } from './commands/jobs';
import { addModelsCommand } from './commands/models';
import { addQualityCommands } from './commands/quality';
import { addResultsCommand } from './commands/results';
import { addRolloutCommand } from './commands/rollout';
import { addStatusCommand } from './commands/status';
import { addSubmitCommand } from './commands/submit';
import { addWaitCommand } from './commands/wait';
import { OnnxBatchError, WaitTimeoutError } from './errors';
import { ExitCode, exitCodeForError } from './exit-codes';

export { DEFAULT_URL, type CliIo } from './commands/command-kit';

const EXIT_CODES_HELP = `
Exit codes:
  0  completed (or the command did what it was asked)
  1  anything else (server error 5xx, local I/O error)
  2  usage error (bad option, unreadable or unrecognised input file)
  3  the server refused the request (4xx problem: invalid rows, unknown model or job, bad key, a refused rollout change or quality gate)
  4  the job failed
  5  the job was cancelled
  6  --timeout passed before the job finished (the job goes on)
  7  server unreachable
  8  evaluate --wait: the verdict is fail or insufficient-data
  130 interrupted while waiting (the job goes on; resume with 'onnx-batch wait ID')

Environment:
  ONNX_BATCH_URL      server base URL (default ${DEFAULT_URL})
  ONNX_BATCH_API_KEY  API key, sent as 'Authorization: Bearer <key>'
  ONNX_BATCH_CA_FILE  PEM file of a CA to trust for https:// (a private CA), besides the usual ones`;

/** Builds the `onnx-batch` command, one module of commands/ per command. Actions report the exit code they chose. */
export function buildProgram(io: CliIo, signal: AbortSignal, setExitCode: (code: ExitCode) => void): Command {
  const program = new Command('onnx-batch')
    .description('Submit batches to an onnx-batch server, follow them, and download their results.')
    .version(cliVersion(), '-V, --version', 'print the CLI version')
    .enablePositionalOptions()
    .exitOverride()
    .showHelpAfterError('(add --help for usage)')
    .configureOutput({ writeOut: (s) => void io.stdout.write(s), writeErr: (s) => void io.stderr.write(s) })
    .addHelpText('after', EXIT_CODES_HELP);
  const ctx = commandContext(program, io, signal, setExitCode);
  addSubmitCommand(ctx);
  addStatusCommand(ctx);
  addWaitCommand(ctx);
  addResultsCommand(ctx);
  addCancelCommand(ctx);
  addDeleteCommand(ctx);
  addJobsCommand(ctx);
  addModelsCommand(ctx);
  addRolloutCommand(ctx);
  addQualityCommands(ctx);
  addEvaluateCommand(ctx);
  return program;
}

/** What to tell a person about an error that ended a command. */
export function describeError(error: unknown): string {
  if (error instanceof OnnxBatchError) {
    const lines = [`onnx-batch: ${error.detail} (${error.code}, HTTP ${error.status})`];
    for (const e of error.errors.slice(0, 20)) {
      const where = [
        e.line !== undefined ? `line ${e.line}` : null,
        e.row !== undefined ? `row ${e.row}` : null,
        e.field !== undefined ? `field '${e.field}'` : null,
      ]
        .filter(Boolean)
        .join(', ');
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
