import { ExitCode } from '../exit-codes';
import { printJson, type CommandContext, type ConnectionOptions } from './command-kit';

/** `onnx-batch cancel ID`: cancels a queued or running job. */
export function addCancelCommand(ctx: CommandContext): void {
  ctx
    .command('cancel')
    .description('Cancel a queued or running job; prints its status document (JSON).')
    .argument('<id>', 'job id')
    .action(
      ctx.run<ConnectionOptions>(async (id, opts) => {
        const { results: _results, ...status } = await ctx.clientOf(opts).cancel(String(id), { signal: ctx.signal });
        printJson(ctx.io, status);
        if (!opts.quiet) ctx.io.stderr.write(`job ${id} is ${status.status}\n`);
        return ExitCode.Ok;
      }),
    );
}
