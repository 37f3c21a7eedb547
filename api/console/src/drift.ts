import { getJson, parameterValues } from './api.js';
import { binChart, type ChartBin } from './chart.js';
import { badge, count, facts, field, h, notice, percent, show, table } from './dom.js';
import type { Screen } from './screen.js';
import type { DriftBin, DriftReport, DriftStatistic, ModelDoc, PsiStatus } from './types.js';

const WORDS: Record<PsiStatus, string> = { ok: 'stable', warn: 'moderate', drift: 'major', 'insufficient-data': 'too few rows' };

export function driftWord(status: PsiStatus): HTMLSpanElement {
  return badge(WORDS[status], `drift-${status}`);
}

/** A bin's name from its edges: the first and last are open-ended. */
export function binName(bin: DriftBin): string {
  if (bin.label !== undefined) return bin.label;
  if (bin.from === null || bin.from === undefined) return `< ${bin.to ?? ''}`;
  if (bin.to === null || bin.to === undefined) return `≥ ${bin.from}`;
  return `${bin.from} – ${bin.to}`;
}

function statisticDetail(name: string, statistic: DriftStatistic): HTMLElement {
  const bins: ChartBin[] = statistic.bins.map((b) => ({ name: binName(b), reference: b.reference, current: b.current }));
  return h(
    'div',
    { class: 'bins' },
    binChart(name, bins),
    table(
      `${name}: share of rows per bin`,
      ['Bin', 'Reference', 'Current'],
      bins.map((b) => [b.name, percent(b.reference), percent(b.current)]),
      { class: 'bin-table', 'data-feature': name },
    ),
  );
}

/** Features sorted by PSI (largest first; those too thin to judge last), each expanding to its bins. */
export async function driftScreen(screen: Screen): Promise<void> {
  const [modelName = '', versionParam = ''] = screen.params;
  const [{ models }, windows] = await Promise.all([
    getJson<{ models: ModelDoc[] }>('/v1/models'),
    parameterValues('/v1/models/{name}/versions/{version}/drift', 'window'),
  ]);
  const model = models.find((m) => m.name === modelName) ?? models[0];
  if (!model) {
    show(screen.main, h('h1', { tabindex: -1 }, 'Drift'), notice('No model is served.'));
    return;
  }
  const version = model.versions.find((v) => v.version === versionParam)?.version ?? model.defaultVersion;
  const window = screen.query.get('window') ?? '1h';
  const picker = h(
    'form',
    { class: 'filters', 'aria-label': 'Choose what drift to show' },
    h('label', { for: 'drift-version' }, 'Model version'),
    ' ',
    h(
      'select',
      { id: 'drift-version', name: 'version' },
      ...models.flatMap((m) =>
        m.versions.map((v) =>
          h('option', { value: `${m.name}/${v.version}`, selected: m === model && v.version === version }, `${m.name}@${v.version}`),
        ),
      ),
    ),
    ' ',
    h('label', { for: 'drift-window' }, 'Window'),
    ' ',
    h(
      'select',
      { id: 'drift-window', name: 'window' },
      ...windows.map((w) => h('option', { value: w, selected: w === window }, `last ${w}`)),
    ),
    ' ',
    h('button', { type: 'submit' }, 'Show'),
  );
  picker.addEventListener('submit', (event) => {
    event.preventDefault();
    const data = new FormData(picker);
    location.hash = `#/drift/${field(data, 'version')}?window=${encodeURIComponent(field(data, 'window'))}`;
  });
  if (!model.versions.find((v) => v.version === version)?.driftBaseline) {
    show(
      screen.main,
      h('h1', { tabindex: -1 }, `Drift of ${model.name}@${version}`),
      picker,
      notice('This version has no drift reference (baseline.json), so its drift is not measured.'),
    );
    return;
  }
  const report = await getJson<DriftReport>(
    `/v1/models/${encodeURIComponent(model.name)}/versions/${encodeURIComponent(version)}/drift?window=${encodeURIComponent(window)}`,
  );
  if (!screen.live()) return;
  const features = Object.entries(report.features).sort(([, a], [, b]) => (b.psi ?? -1) - (a.psi ?? -1));
  const rows = features.map(([name, statistic]) => {
    const detailId = `bins-${name.replace(/[^A-Za-z0-9_-]/g, '_')}`;
    const detail = h('tr', { id: detailId, hidden: true, class: 'detail' }, h('td', { colspan: 4 }, statisticDetail(name, statistic)));
    const toggle = h('button', { type: 'button', 'aria-expanded': 'false', 'aria-controls': detailId, name: `toggle-${name}` }, name);
    toggle.addEventListener('click', () => {
      const open = toggle.getAttribute('aria-expanded') !== 'true';
      toggle.setAttribute('aria-expanded', String(open));
      detail.hidden = !open;
    });
    return [
      h(
        'tr',
        { 'data-feature': name },
        h('th', { scope: 'row' }, toggle),
        h('td', { class: 'psi' }, statistic.psi === null ? '—' : statistic.psi.toFixed(4)),
        h('td', {}, driftWord(statistic.status)),
        h('td', {}, count(statistic.rows)),
      ),
      detail,
    ];
  });
  const thin = report.status === 'insufficient-data';
  show(
    screen.main,
    h('h1', { tabindex: -1 }, `Drift of ${report.model}@${report.version}`),
    picker,
    facts([
      ['Window', `last ${report.window}`],
      ['Rows in the window', count(report.rows)],
      ['Overall', driftWord(report.status)],
      ['Thresholds (PSI)', `moderate ≥ ${report.thresholds.warn}, major ≥ ${report.thresholds.drift}`],
    ]),
    thin
      ? notice(
          `Too few rows to judge: ${count(report.rows)} in this window, ${count(report.minRows)} needed. The bins below are shown, ` +
            'but no PSI is computed from so few rows.',
        )
      : null,
    h(
      'table',
      { class: 'features' },
      h('caption', {}, 'Features by population stability index (PSI), largest first; open one to see its bins'),
      h('thead', {}, h('tr', {}, ...['Feature', 'PSI', 'Drift', 'Rows'].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, ...rows.flat()),
    ),
    report.prediction ? h('h2', {}, 'Predictions') : null,
    report.prediction
      ? facts([
          ['PSI', report.prediction.psi?.toFixed(4) ?? '—'],
          ['Drift', driftWord(report.prediction.status)],
        ])
      : null,
    report.prediction ? statisticDetail('predictions', report.prediction) : null,
  );
}
