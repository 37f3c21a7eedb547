import { getJson, sendJson } from './api.js';
import { confirmAction } from './dialog.js';
import { badge, count, facts, h, notice, percent, show, table, time } from './dom.js';
import { servingStates } from './overview.js';
import { can, type Screen } from './screen.js';
import type { ModelDoc, ModelVersionDoc, Rollout, RolloutHistory, RolloutState } from './types.js';

const fixed = (n: unknown): string => (typeof n === 'number' ? n.toFixed(4) : '—');

export async function modelsScreen(screen: Screen): Promise<void> {
  const serving = await servingStates();
  if (!screen.live()) return;
  show(
    screen.main,
    h('h1', { tabindex: -1 }, 'Models'),
    table(
      'Models and what serves them',
      ['Model', 'Versions', 'Serving default', 'Canary', 'Shadow', 'Drift (1 h)'],
      serving.map(({ model, rollout, drift }) => [
        h('a', { href: `#/models/${model.name}` }, model.name),
        model.versions.map((v) => v.version).join(', '),
        rollout.servingDefault,
        rollout.rollout.canary ? `${rollout.rollout.canary.version} (${rollout.rollout.canary.percent} %)` : '—',
        rollout.rollout.shadow ? `${rollout.rollout.shadow.version} (${rollout.rollout.shadow.percent} %)` : '—',
        drift ? h('a', { href: `#/drift/${model.name}/${model.defaultVersion}` }, driftLabel(drift.status)) : 'no baseline',
      ]),
    ),
  );
}

function driftLabel(status: string): string {
  return { ok: 'stable', warn: 'moderate', drift: 'major' }[status] ?? 'too few rows';
}

/** What a version is in the rollout now. */
function roleOf(version: string, state: RolloutState): string[] {
  const roles: string[] = [];
  if (version === state.servingDefault) roles.push('default');
  if (state.rollout.canary?.version === version) roles.push('canary');
  if (state.rollout.shadow?.version === version) roles.push('shadow');
  return roles;
}

function metrics(v: ModelVersionDoc): string {
  const r = v.reference;
  if (!r) return v.accuracy === null ? '—' : `accuracy ${fixed(v.accuracy)} (training script)`;
  if ('accuracy' in r)
    return `accuracy ${fixed(r.accuracy)}, macro F1 ${fixed(r.macroF1)}, log loss ${fixed(r.logLoss)} (${count(Number(r.rows))} rows)`;
  return `R² ${fixed(r.r2)}, MAE ${fixed(r.mae)}, RMSE ${fixed(r.rmse)} (${count(Number(r.rows))} rows)`;
}

const shares = (rollout: Rollout): string =>
  [
    `default ${rollout.default ?? 'repository default'}`,
    rollout.canary ? `canary ${rollout.canary.version} at ${rollout.canary.percent} %` : null,
    rollout.shadow ? `shadow ${rollout.shadow.version} at ${rollout.shadow.percent} %` : null,
  ]
    .filter(Boolean)
    .join(', ');

/** One model: its versions, its rollout with the canary report and shadow agreement, promote/rollback, the audit history. */
export async function modelScreen(screen: Screen): Promise<void> {
  const name = screen.params[0] ?? '';
  const base = `/v1/models/${encodeURIComponent(name)}`;
  const [model, state, history] = await Promise.all([
    getJson<ModelDoc>(base),
    getJson<RolloutState>(`${base}/rollout`),
    getJson<RolloutHistory>(`${base}/rollout/history?limit=50`),
  ]);
  if (!screen.live()) return;
  const message = h('div', { 'aria-live': 'polite' });
  const change = async (action: 'promote' | 'rollback'): Promise<void> => {
    const promote = action === 'promote';
    const reason = await confirmAction({
      title: promote ? `Promote the canary of ${name}?` : `Roll ${name} back?`,
      body: promote
        ? `Version ${state.rollout.canary?.version ?? '?'} becomes the default for every job that names no version.`
        : `The default returns to ${state.rollout.previousDefault ?? 'the previous default'}; canary and shadow are cleared.`,
      action: promote ? 'Promote' : 'Roll back',
      reason: 'Reason (kept in the audit history)',
    });
    if (reason === null) return;
    try {
      await sendJson('POST', `${base}/rollout/${action}`, { reason });
      screen.refresh();
    } catch (error) {
      show(message, notice(`Not done: ${(error as Error).message}`, 'error'));
    }
  };
  const admin = can(screen.me, 'admin');
  const { canary, shadow } = state.report;
  show(
    screen.main,
    h('h1', { tabindex: -1 }, `Model ${model.name}`),
    message,
    h('h2', {}, 'Versions'),
    table(
      `Versions of ${model.name}`,
      ['Version', 'Now', 'Task', 'Labels', 'Metrics', 'Created', 'Input schema'],
      model.versions.map((v) => [
        v.version,
        h('span', {}, ...roleOf(v.version, state).map((r) => badge(r, 'arm'))),
        v.task,
        v.labels?.join(', ') ?? '—',
        metrics(v),
        time(v.createdAt),
        h(
          'details',
          {},
          h('summary', {}, `${v.features.length} features`),
          h('ul', {}, ...v.features.map((f) => h('li', {}, `${f.name} (${f.type})${f.description ? `: ${f.description}` : ''}`))),
          h('pre', {}, JSON.stringify(v.inputSchema, null, 2)),
        ),
      ]),
    ),
    h('h2', {}, 'Rollout'),
    facts([
      ['Serving default', state.servingDefault],
      ['Rollout', shares(state.rollout)],
      [
        'Revision',
        h(
          'span',
          {},
          String(state.rollout.revision),
          state.rollout.updatedAt ? ', changed ' : null,
          state.rollout.updatedAt ? time(state.rollout.updatedAt) : null,
        ),
      ],
      ['Quality gate', state.gate ? `${state.gate.state}: ${state.gate.detail}` : 'no canary'],
    ]),
    canary
      ? table(
          `Canary ${canary.version} against the default since ${canary.percent} % went to it`,
          ['Arm', 'Jobs', 'Rows', 'Failed rows', 'p50 ms per row', 'p50 job ms'],
          (['default', 'canary'] as const).map((arm) => [
            arm,
            count(canary.jobs[arm]),
            count(canary.rows[arm]),
            percent(canary.failedRowRate[arm], 2),
            canary.p50MsPerRow[arm]?.toFixed(3) ?? '—',
            canary.p50JobMs[arm]?.toFixed(0) ?? '—',
          ]),
        )
      : null,
    shadow
      ? facts([
          ['Shadow version', shadow.version],
          ['Rows compared', count(shadow.rowsCompared)],
          ['Agreement with the default', percent(shadow.agreement, 2)],
          ['Mean absolute difference', fixed(shadow.meanAbsDifference)],
        ])
      : null,
    admin
      ? h(
          'p',
          { class: 'actions' },
          state.rollout.canary
            ? h('button', { type: 'button', name: 'promote', onclick: () => void change('promote') }, 'Promote canary…')
            : null,
          ' ',
          state.rollout.previousDefault || state.rollout.canary || state.rollout.shadow
            ? h('button', { type: 'button', name: 'rollback', class: 'danger', onclick: () => void change('rollback') }, 'Roll back…')
            : null,
        )
      : null,
    h('h2', {}, 'History'),
    history.entries.length === 0
      ? notice('The rollout was never changed.')
      : table(
          `Changes to the rollout of ${model.name}, newest first`,
          ['When', 'Action', 'Who', 'From', 'To', 'Reason'],
          history.entries.map((e) => [
            time(e.at),
            e.action,
            `${e.actor.tenant} (key ${e.actor.keyId})`,
            shares(e.from),
            shares(e.to),
            e.reason ?? '—',
          ]),
          { class: 'history' },
        ),
  );
}
