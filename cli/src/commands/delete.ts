import { ExitCode } from '../exit-codes';
import type { CommandContext, ConnectionOptions } from './command-kit';

/** `onnx-batch delete ID`: deletes a job with its inputs and results. */
export function addDeleteCommand(ctx: CommandContext): void {
  ctx
    .command('delete')
    .description('Delete a job with its inputs and results (cancelling it if it still runs).')
    .argument('<id>', 'job id')
    .action(
      ctx.run<ConnectionOptions>(async (id, opts) => {
        await ctx.clientOf(opts).delete(String(id), { signal: ctx.signal });
        if (!opts.quiet) ctx.io.stderr.write(`job ${id} deleted\n`);
        return ExitCode.Ok;
      }),
    );
}
