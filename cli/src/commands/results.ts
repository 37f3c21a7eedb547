import { Option } from 'commander';
import type { OnnxBatchClient } from '../client';
import { ExitCode } from '../exit-codes';
import { OUTPUT_FORMATS, resultsFormat, type OutputFormat, type OutputFormatFlags } from '../formats';
import { nonClosing, writeFileAtomically } from '../output-file';
import type { CliIo, CommandContext, ConnectionOptions } from './command-kit';

interface ResultsFlags extends ConnectionOptions, OutputFormatFlags {
  out?: string;
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
    .addOption(new Option('--output-format <format>', 'the same as --format').choices(OUTPUT_FORMATS))
    .addHelpText(
      'after',
      `
Formats: .csv, .ndjson/.jsonl, .json, .arrow/.arrows (Arrow IPC stream) or .parquet by the --out
extension. Arrow and Parquet are written as the server sends them, into a temporary file renamed
into place when complete.

Example:
  onnx-batch results 3f0c… --out results.parquet`,
    )
    .action(
      ctx.run<ResultsFlags>(async (id, opts) => {
        const out = opts.out ?? '-';
        await writeResults(ctx.clientOf(opts), String(id), out, resultsFormat(out, opts), ctx.io, ctx.signal);
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
