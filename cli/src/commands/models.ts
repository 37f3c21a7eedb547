import { ExitCode } from '../exit-codes';
import type { ModelList } from '../types';
import { printJson, table, type CommandContext, type ConnectionOptions } from './command-kit';

/** `onnx-batch models`: the models the server serves, as a table (or its JSON). */
export function addModelsCommand(ctx: CommandContext): void {
  ctx
    .command('models')
    .description('List the models the server serves, with their versions.')
    .option('--json', 'print the server answer as JSON')
    .action(
      ctx.run<ConnectionOptions & { json?: boolean }>(async (_id, opts) => {
        const list = await ctx.clientOf(opts).models({ signal: ctx.signal });
        if (opts.json) printJson(ctx.io, list);
        else ctx.io.stdout.write(modelTable(list));
        return ExitCode.Ok;
      }),
    );
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
  return table(rows);
}
