import { Option } from 'commander';
import type { OnnxBatchClient } from '../client';
import { ExitCode } from '../exit-codes';
import { OUTPUT_FORMATS, outputFormat, type OutputFormat } from '../formats';
import { nonClosing, writeFileAtomically } from '../output-file';
import type { CliIo, CommandContext, ConnectionOptions } from './command-kit';

interface ResultsFlags extends ConnectionOptions {
  out?: string;
  format?: string;
}

/** `onnx-batch results ID`: downloads a finished job's results. */
export function addResultsCommand(ctx: CommandContext): void {
  ctx
    .command('results')
    .description("Download a finished job's results.")
    .argument('<id>', 'job id')
    .option('-o, --out <file>', "output file ('-' or absent = stdout)", '-')
    .addOption(
      new Option('-f, --format <format>', 'results format (default: from the --out extension; ndjson on stdout)').choices(OUTPUT_FORMATS),
    )
    .action(
      ctx.run<ResultsFlags>(async (id, opts) => {
        const out = opts.out ?? '-';
        await writeResults(ctx.clientOf(opts), String(id), out, outputFormat(out, opts.format, '--format'), ctx.io, ctx.signal);
        if (!opts.quiet && out !== '-') ctx.io.stderr.write(`results of job ${id} written to ${out}\n`);
        return ExitCode.Ok;
      }),
    );
}

/** Streams a job's results to stdout (`-`, left open) or into a file written whole or not at all. */
export async function writeResults(
  client: OnnxBatchClient,
  id: string,
  out: string,
  format: OutputFormat,
  io: CliIo,
  signal: AbortSignal,
): Promise<void> {
  if (out === '-') {
    await client.downloadResults(id, format, nonClosing(io.stdout), { signal });
    return;
  }
  await writeFileAtomically(out, (destination) => client.downloadResults(id, format, destination, { signal }));
}
