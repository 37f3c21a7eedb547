import { ExitCode } from '../exit-codes';
import { printJson, type CommandContext, type ConnectionOptions } from './command-kit';

/** `onnx-batch status ID`: the job's status document, without inline results. */
export function addStatusCommand(ctx: CommandContext): void {
  ctx
    .command('status')
    .description("Print a job's status document (JSON) on stdout.")
    .argument('<id>', 'job id')
    .action(
      ctx.run<ConnectionOptions>(async (id, opts) => {
        const { results: _results, ...status } = await ctx.clientOf(opts).status(String(id), { signal: ctx.signal });
        printJson(ctx.io, status);
        return ExitCode.Ok;
      }),
    );
}
