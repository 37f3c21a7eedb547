import { Option } from 'commander';
import type { OnnxBatchClient } from '../client';
import { ExitCode } from '../exit-codes';
import type { RolloutState } from '../types';
import { printJson, type CliIo, type CommandContext, type ConnectionOptions } from './command-kit';
import {
  checkRolloutSetFlags,
  overwriteWarning,
  parseFraction,
  parseRows,
  parseShare,
  rolloutSpec,
  type RolloutSetFlags,
} from './rollout-spec';
import { historyText, rolloutText } from './rollout-text';

type JsonFlag = ConnectionOptions & { json?: boolean };

const SET_HELP = `
PUT /v1/models/:name/rollout replaces the whole rollout: a part it does not name is cleared.
'set' therefore reads the current rollout and changes only the parts given (a --no-… option
removes one); --replace sends only what is given, clearing the rest; --clear removes the whole
rollout, so the repository's default version serves every job. The write carries the read's
ETag (If-Match): a change someone else made in between is not overwritten, the server refuses
this one (exit 3, OB_ERR_PRECONDITION_FAILED): look at it ('show', 'history') and set again.

Starting a canary passes the quality gate: a version with an evaluation set needs a passing
evaluation against the default ('onnx-batch evaluate'), else exit 3 (OB_ERR_QUALITY_GATE, with
the figures); --force --reason TEXT starts it anyway, recorded in the audit trail.

Examples:
  onnx-batch rollout set iris --default 2 --shadow 3:100
  onnx-batch rollout set iris --no-shadow --canary 3:10 --max-failed-row-rate 0.01 --min-rows 1000
  onnx-batch rollout set iris --canary 3:10 --force --reason 'held-out set too small; watching labels'
  onnx-batch rollout promote iris`;

/**
 * `onnx-batch rollout show|set|promote|rollback|history MODEL`: a model's rollout (default,
 * canary and shadow versions, the auto-rollback rule), its report and its audit trail. Changes
 * need a key with the admin role.
 */
export function addRolloutCommand(ctx: CommandContext): void {
  const { io, signal } = ctx;
  // The group itself takes no options: each subcommand has the connection options.
  const rollout = ctx.program
    .command('rollout')
    .description("Show or change a model's rollout: default, canary and shadow versions, promote, roll back, audit trail.")
    .addHelpText('after', '\nChanges need a key with the admin role; docs/models-in-production.md describes rollouts.');

  const print = (state: RolloutState, opts: JsonFlag): void => {
    if (opts.json) printJson(io, state);
    else io.stdout.write(rolloutText(state));
  };

  ctx
    .command('show', rollout)
    .description('Print the rollout and its canary/shadow report (rows compared, agreement, failed-row rates, latencies).')
    .argument('<model>', 'model name')
    .option('--json', 'print the server answer as JSON')
    .action(
      ctx.run<JsonFlag>(async (model, opts) => {
        print(await ctx.clientOf(opts).rollout(String(model), { signal }), opts);
        return ExitCode.Ok;
      }),
    );

  ctx
    .command('set', rollout)
    .description('Change the rollout: only the parts given, unless --replace (admin).')
    .argument('<model>', 'model name')
    .option('--default <version>', 'version of jobs that name none (pins it: a new version dropped in does not take over)')
    .option('--no-default', "unpin: the repository's default version (the highest, or the manifest's pin)")
    .option('--canary <version:percent>', 'a version taking this percent of the jobs that name no version', parseShare)
    .option('--no-canary', 'remove the canary')
    .option(
      '--shadow <version:percent>',
      "a version also running this percent of the default's chunks, off the result path, to be compared",
      parseShare,
    )
    .option('--no-shadow', 'remove the shadow')
    .option('--max-failed-row-rate <rate>', 'auto-rollback: when the canary fails more rows than this (0–1)', parseFraction)
    .option(
      '--min-agreement <share>',
      'auto-rollback: when the shadow agrees with the default on fewer rows than this (0–1)',
      parseFraction,
    )
    .option('--min-rows <n>', 'auto-rollback: rows the canary or shadow must run before it is judged', parseRows)
    .option('--no-auto-rollback', 'remove the auto-rollback rule')
    .option('--force', 'start the canary although its version does not pass the quality gate (needs --reason)')
    .option('--reason <text>', 'why: recorded in the audit trail (required with --force)')
    .option('--replace', 'send only the parts given: every other part is cleared')
    .option('--clear', "remove the whole rollout (the repository's default serves every job)")
    .option('--json', 'print the server answer as JSON')
    .addHelpText('after', SET_HELP)
    .action(
      ctx.run<JsonFlag & RolloutSetFlags>(async (model, opts) => {
        const client = ctx.clientOf(opts);
        const name = String(model);
        checkRolloutSetFlags(opts); // before anything is read or sent
        const current = opts.replace || opts.clear ? null : (await client.rollout(name, { signal })).rollout;
        // The rollout as read, or nothing: a change made by someone else meanwhile is refused (412), not overwritten.
        const ifMatch = current ? `"${current.revision}"` : undefined;
        const state = await client.setRollout(name, rolloutSpec(opts, current), { signal, ...(ifMatch ? { ifMatch } : {}) });
        const overwritten = current ? overwriteWarning(name, current, state.rollout) : null;
        if (overwritten) io.stderr.write(overwritten);
        print(state, opts);
        summarise(io, opts, `rollout of ${name} set (revision ${state.rollout.revision})`);
        return ExitCode.Ok;
      }),
    );

  const moves = [
    {
      name: 'promote',
      description: 'Make the canary the default (admin). Exit 3 when there is no canary.',
      call: (client: OnnxBatchClient, model: string) => client.promoteRollout(model, { signal }),
      done: 'promoted',
    },
    {
      name: 'rollback',
      description: 'Return to the default that served before the current canary, shadow or promotion, and clear canary and shadow (admin).',
      call: (client: OnnxBatchClient, model: string) => client.rollbackRollout(model, { signal }),
      done: 'rolled back',
    },
  ];
  for (const move of moves) {
    ctx
      .command(move.name, rollout)
      .description(move.description)
      .argument('<model>', 'model name')
      .option('--json', 'print the server answer as JSON')
      .action(
        ctx.run<JsonFlag>(async (model, opts) => {
          const state = await move.call(ctx.clientOf(opts), String(model));
          print(state, opts);
          summarise(io, opts, `${state.model}: ${move.done}; jobs that name no version now run on version ${state.servingDefault}`);
          return ExitCode.Ok;
        }),
      );
  }

  ctx
    .command('history', rollout)
    .description('Every change of the rollout, newest first: when, what, who, from, to, and why for automatic ones.')
    .argument('<model>', 'model name')
    .addOption(new Option('-n, --limit <n>', 'at most this many changes (server default 100, at most 1000)').argParser(parseRows))
    .option('--json', 'print the server answer as JSON')
    .action(
      ctx.run<JsonFlag & { limit?: number }>(async (model, opts) => {
        const history = await ctx.clientOf(opts).rolloutHistory(String(model), { limit: opts.limit, signal });
        if (opts.json) printJson(io, history);
        else io.stdout.write(historyText(history));
        return ExitCode.Ok;
      }),
    );
}

function summarise(io: CliIo, opts: ConnectionOptions, line: string): void {
  if (!opts.quiet) io.stderr.write(`${line}\n`);
}
