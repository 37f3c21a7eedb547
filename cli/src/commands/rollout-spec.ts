import { InvalidArgumentError } from 'commander';
import { UsageError } from '../errors';
import type { AutoRollbackRule, Rollout, RolloutSpec } from '../types';

/**
 * What `onnx-batch rollout set` sends. The server's PUT replaces the whole rollout (a field left
 * out is cleared); `set` starts from the current rollout and changes only the parts given, unless
 * `--replace` (start from nothing) or `--clear` (send nothing: the repository's default serves).
 */

export interface Share {
  version: string;
  percent: number;
}

/** The options of `rollout set`; `false` is a `--no-…` flag (remove that part). */
export interface RolloutSetFlags {
  default?: string | false;
  canary?: Share | false;
  shadow?: Share | false;
  /** Only `--no-auto-rollback` is a flag: true unless it was given. */
  autoRollback?: boolean;
  maxFailedRowRate?: number;
  minAgreement?: number;
  minRows?: number;
  replace?: boolean;
  clear?: boolean;
  /** Start the canary past a quality gate it does not pass (needs `reason`). */
  force?: boolean;
  /** Why, recorded in the audit trail. */
  reason?: string;
}

/** `VERSION:PERCENT` (`3:10`, `3:10%`): a version and the share it takes, 0–100. */
export function parseShare(value: string): Share {
  const match = /^([^:\s]+):\s*([0-9]+(?:\.[0-9]+)?)\s*%?$/.exec(value.trim());
  const percent = Number(match?.[2]);
  if (!match || !(percent >= 0 && percent <= 100))
    throw new InvalidArgumentError("must be VERSION:PERCENT, e.g. '3:10' (percent from 0 to 100).");
  return { version: match[1] as string, percent };
}

/** A rate or share from 0 to 1 (`--max-failed-row-rate`, `--min-agreement`). */
export function parseFraction(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !(n >= 0 && n <= 1)) throw new InvalidArgumentError('must be a number from 0 to 1.');
  return n;
}

/** A count of rows, at least 1 (`--min-rows`). */
export function parseRows(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be an integer of at least 1.');
  return n;
}

/** The spec that sets `rollout` again as it is. */
export function specOf(rollout: Rollout): RolloutSpec {
  const share = (s: Share | null): Share | null => (s ? { version: s.version, percent: s.percent } : null);
  const rule = rollout.autoRollback;
  return {
    default: rollout.default,
    canary: share(rollout.canary),
    shadow: share(rollout.shadow),
    autoRollback: rule
      ? {
          ...(rule.maxFailedRowRate === undefined ? {} : { maxFailedRowRate: rule.maxFailedRowRate }),
          ...(rule.minAgreement === undefined ? {} : { minAgreement: rule.minAgreement }),
          minRows: rule.minRows,
        }
      : null,
  };
}

function ruleFlagsOf(flags: RolloutSetFlags): Partial<AutoRollbackRule> {
  return {
    ...(flags.maxFailedRowRate === undefined ? {} : { maxFailedRowRate: flags.maxFailedRowRate }),
    ...(flags.minAgreement === undefined ? {} : { minAgreement: flags.minAgreement }),
    ...(flags.minRows === undefined ? {} : { minRows: flags.minRows }),
  };
}

/** Throws UsageError for flags that contradict each other or change nothing (checked before anything is read or sent). */
export function checkRolloutSetFlags(flags: RolloutSetFlags): void {
  if (flags.reason !== undefined && flags.reason.trim() === '')
    throw new UsageError('--reason must say why (it is recorded in the audit trail)');
  if (flags.force && flags.reason === undefined)
    throw new UsageError('--force needs --reason: why the quality gate is overridden is recorded in the audit trail');
  const givesRule = Object.keys(ruleFlagsOf(flags)).length > 0;
  const removesRule = flags.autoRollback === false;
  const gives = flags.default !== undefined || flags.canary !== undefined || flags.shadow !== undefined || givesRule || removesRule;
  if (flags.clear) {
    if (gives || flags.replace) throw new UsageError('--clear removes the whole rollout: give no other rollout option with it');
    return;
  }
  if (!gives) {
    throw new UsageError(
      'nothing to set: give --default, --canary, --shadow, --max-failed-row-rate, --min-agreement or --min-rows (or a --no-… of ' +
        'one), or --clear',
    );
  }
  if (removesRule && givesRule)
    throw new UsageError('--no-auto-rollback removes the rule: give no --max-failed-row-rate, --min-agreement or --min-rows with it');
}

/**
 * The body of the PUT: `current` (null with --replace or --clear, which need no read) with the
 * flags applied. Throws UsageError as checkRolloutSetFlags does, and when a new rule lacks --min-rows.
 */
export function rolloutSpec(flags: RolloutSetFlags, current: Rollout | null): RolloutSpec {
  checkRolloutSetFlags(flags);
  const why: RolloutSpec = {
    ...(flags.force ? { force: true } : {}),
    ...(flags.reason === undefined ? {} : { reason: flags.reason.trim() }),
  };
  if (flags.clear) return why;
  const spec: RolloutSpec = { ...(flags.replace || current === null ? {} : specOf(current)), ...why };
  if (flags.default !== undefined) spec.default = flags.default === false ? null : flags.default;
  if (flags.canary !== undefined) spec.canary = flags.canary === false ? null : flags.canary;
  if (flags.shadow !== undefined) spec.shadow = flags.shadow === false ? null : flags.shadow;
  if (flags.autoRollback === false) spec.autoRollback = null;
  const ruleFlags = ruleFlagsOf(flags);
  if (Object.keys(ruleFlags).length > 0) {
    const rule = { ...(spec.autoRollback ?? {}), ...ruleFlags };
    if (rule.minRows === undefined)
      throw new UsageError(
        '--min-rows is needed with a new auto-rollback rule: how many rows the canary or shadow must run before it is judged',
      );
    spec.autoRollback = { ...rule, minRows: rule.minRows };
  }
  return spec;
}

/**
 * `set` reads, then writes: when the rollout it wrote is not the very next revision of the one
 * it read, someone changed it in between and that change is gone. Answers the warning, or null.
 */
export function overwriteWarning(model: string, read: Rollout, written: Rollout): string | null {
  if (written.revision === read.revision + 1) return null;
  return (
    `warning: the rollout of ${model} changed between reading it (revision ${read.revision}) and setting it (now ${written.revision}): ` +
    `that change was overwritten; see onnx-batch rollout history ${model}\n`
  );
}
