import { Option } from 'commander';
import type { OnnxBatchClient } from '../client';
import { OnnxBatchError } from '../errors';
import { exitCodeForStatus, type ExitCode } from '../exit-codes';
import { OUTPUT_FORMATS, resultsFormat, type OutputFormat, type OutputFormatFlags } from '../formats';
import { BarJobProgress, formatDuration, PlainJobProgress, type JobProgress } from '../progress';
import type { JobStatusAnswer } from '../types';
import { parseSeconds, type CliIo, type CommandContext, type ConnectionOptions } from './command-kit';
import { writeResults } from './results';

export interface WaitFlags extends ConnectionOptions {
  out?: string;
  timeout?: number;
}

/** How often progress is polled (and a plain progress line printed when stderr is not a terminal). */
const PLAIN_PROGRESS_SECONDS = 2;
const TTY_PROGRESS_SECONDS = 1;

/** `onnx-batch wait ID`: follows a job until it finishes (also resumes a killed `submit --wait`). */
export function addWaitCommand(ctx: CommandContext): void {
  ctx
    .command('wait')
    .description('Wait for a job to finish, showing progress; exit code by how it ended. Resumes a killed submit --wait.')
    .argument('<id>', 'job id')
    .option('-o, --out <file>', "write the results here when the job completes ('-' = stdout)")
    .addOption(new Option('-f, --format <format>', 'results format (default: from the --out extension)').choices(OUTPUT_FORMATS))
    .addOption(new Option('--output-format <format>', 'the same as --format').choices(OUTPUT_FORMATS))
    .option('-t, --timeout <seconds>', 'stop waiting after this long (exit 6; the job goes on)', parseSeconds)
    .action(
      ctx.run<WaitFlags & OutputFormatFlags>((id, opts) => {
        const format = opts.out === undefined ? null : resultsFormat(opts.out, opts);
        return waitAndDownload(ctx.clientOf(opts), String(id), { ...opts, outFormat: format }, ctx.io, ctx.signal);
      }),
    );
}

function progressFor(io: CliIo, quiet: boolean | undefined): { progress: JobProgress | null; pollSeconds: number | undefined } {
  if (quiet) return { progress: null, pollSeconds: undefined };
  if (io.stderr.isTTY) return { progress: new BarJobProgress(io.stderr), pollSeconds: TTY_PROGRESS_SECONDS };
  return { progress: new PlainJobProgress(io.stderr, PLAIN_PROGRESS_SECONDS * 1000 * 0.9), pollSeconds: PLAIN_PROGRESS_SECONDS };
}

/** Waits for a job with progress, writes its results if asked, and answers the exit code of how it ended. */
export async function waitAndDownload(
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
        const took =
          final.startedAt && final.finishedAt
            ? ` in ${formatDuration((Date.parse(final.finishedAt) - Date.parse(final.startedAt)) / 1000)}`
            : '';
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
