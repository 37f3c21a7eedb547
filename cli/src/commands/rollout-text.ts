import type { QualityGateOutcome, Rollout, RolloutHistory, RolloutState } from '../types';
import { table } from './command-kit';

/** What `onnx-batch rollout show` (and set, promote, rollback) print: the rollout and its report, for a person. */
export function rolloutText(state: RolloutState): string {
  const { rollout, report, servingDefault } = state;
  const rule = rollout.autoRollback;
  const lines = [`${state.model}: jobs that name no version run on version ${servingDefault}`];
  lines.push(
    table([
      ['  default', rollout.default === null ? `the repository's (${servingDefault})` : `${rollout.default} (pinned by the rollout)`],
      ['  canary', rollout.canary ? `${rollout.canary.version} on ${rollout.canary.percent} % of jobs that name no version` : 'none'],
      ['  shadow', rollout.shadow ? `${rollout.shadow.version} on ${rollout.shadow.percent} % of the default's chunks` : 'none'],
      ['  auto-rollback', rule ? ruleText(rule) : 'none'],
      ...(state.gate ? [['  quality gate', gateText(state.gate)]] : []),
      ['  rollback to', rollout.previousDefault ?? '-'],
      ['  revision', rollout.revision === 0 ? '0 (never set)' : `${rollout.revision}, changed ${rollout.updatedAt}`],
    ]).trimEnd(),
  );
  if (report.shadow) {
    const s = report.shadow;
    lines.push(`shadow ${s.version} since revision ${report.revision}:`);
    lines.push(
      table([
        ['', 'default', 'shadow'],
        ['  rows compared', '', String(s.rowsCompared)],
        ['  label agreement', '', percent(s.agreement)],
        ['  mean abs difference', '', number(s.meanAbsDifference)],
        ['  failed rows', String(s.failedRows.default), String(s.failedRows.shadow)],
        ['  p50 ms per row', number(s.p50MsPerRow.default), number(s.p50MsPerRow.shadow)],
      ]).trimEnd(),
    );
  }
  if (report.canary) {
    const c = report.canary;
    lines.push(`canary ${c.version} (${c.percent} %) since revision ${report.revision}:`);
    lines.push(
      table([
        ['', 'default', 'canary'],
        ['  jobs', String(c.jobs.default), String(c.jobs.canary)],
        ['  rows', String(c.rows.default), String(c.rows.canary)],
        ['  failed-row rate', percent(c.failedRowRate.default), percent(c.failedRowRate.canary)],
        ['  p50 ms per row', number(c.p50MsPerRow.default), number(c.p50MsPerRow.canary)],
        ['  p50 ms per job', number(c.p50JobMs.default), number(c.p50JobMs.canary)],
      ]).trimEnd(),
    );
  }
  return `${lines.join('\n')}\n`;
}

/** What `onnx-batch rollout history` prints: one change a line, newest first. */
export function historyText(history: RolloutHistory): string {
  if (history.entries.length === 0) return `${history.model}: the rollout was never changed\n`;
  const rows = [['AT', 'ACTION', 'BY', 'FROM', 'TO', 'REASON']];
  for (const e of history.entries) {
    const gate = e.gate?.forced ? `forced past the quality gate (${e.gate.state}: ${e.gate.detail})` : null;
    const why = [e.reason, gate].filter((x): x is string => Boolean(x)).join('; ');
    rows.push([e.at, e.action, `${e.actor.tenant}/${e.actor.keyId}`, summary(e.from), summary(e.to), why]);
  }
  return table(rows);
}

/** A rollout in a few words: `default 2, canary 3@10%, shadow 3@100%, rule`. */
export function summary(rollout: Rollout): string {
  const parts = [`default ${rollout.default ?? 'repo'}`];
  if (rollout.canary) parts.push(`canary ${rollout.canary.version}@${rollout.canary.percent}%`);
  if (rollout.shadow) parts.push(`shadow ${rollout.shadow.version}@${rollout.shadow.percent}%`);
  if (rollout.autoRollback) parts.push('guarded');
  return parts.join(', ');
}

/** The canary's quality gate in a few words: `passed (evaluation …)`, `not gated (…)`, `failed: accuracy …`. */
export function gateText(gate: QualityGateOutcome): string {
  const p = gate.primary;
  const figures =
    p && p.difference !== null
      ? `: ${p.metric} ${number(round(p.candidate))} vs ${number(round(p.baseline))} on ${gate.baseline}, ` +
        `difference ${number(round(p.difference))}` +
        (p.ci ? ` [${number(round(p.ci.low))}, ${number(round(p.ci.high))}]` : '')
      : '';
  if (gate.state === 'not-gated') return 'not gated (the version has no evaluation set)';
  return `${gate.state}${figures}${gate.evaluationId ? ` (evaluation ${gate.evaluationId})` : ''}`;
}

function round(x: number | null): number | null {
  return x === null ? null : Number(x.toPrecision(4));
}

function ruleText(rule: NonNullable<Rollout['autoRollback']>): string {
  const limits = [
    rule.maxFailedRowRate === undefined ? null : `failed-row rate above ${rule.maxFailedRowRate}`,
    rule.minAgreement === undefined ? null : `agreement below ${rule.minAgreement}`,
  ].filter((x): x is string => x !== null);
  return `roll back on ${limits.length ? limits.join(' or ') : 'nothing yet'}, judged after ${rule.minRows} rows`;
}

function percent(x: number | null): string {
  return x === null ? '-' : `${(x * 100).toFixed(2)} %`;
}

function number(x: number | null): string {
  return x === null ? '-' : String(x);
}
