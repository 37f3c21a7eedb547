import { Gauge, type Registry } from 'prom-client';
import type { RolloutReport } from '@onnx-batch/contracts';
import { METRIC_PREFIX } from '@onnx-batch/shared';
import { memoPerScrape } from './scrape-memo';

/** One model's rollout report, as the gauges read it at scrape time. */
export interface ModelRolloutReport {
  model: string;
  report: RolloutReport;
}

type Fill<L extends string> = (gauge: Gauge<L>, reports: ModelRolloutReport[]) => void;

/**
 * The canary and shadow reports of `GET /v1/models/:name/rollout` as Prometheus gauges, read at
 * scrape time (the same on every API replica: aggregate with max). Series exist only for models
 * with a canary or shadow.
 */
export function registerRolloutGauges(registry: Registry, read: () => Promise<ModelRolloutReport[]>): void {
  const load = memoPerScrape(read);
  const gauge = <L extends string>(name: string, help: string, labelNames: L[], fill: Fill<L>): void => {
    const g: Gauge<L> = new Gauge({
      name: `${METRIC_PREFIX}${name}`,
      help,
      labelNames,
      registers: [registry],
      aggregator: 'max',
      collect: async () => {
        const reports = await load().catch(() => []);
        g.reset();
        fill(g, reports);
      },
    });
  };
  const shadows = (reports: ModelRolloutReport[]) =>
    reports.flatMap(({ model, report }) => (report.shadow ? [{ model, shadow: report.shadow }] : []));
  const canaries = (reports: ModelRolloutReport[]) =>
    reports.flatMap(({ model, report }) => (report.canary ? [{ model, canary: report.canary }] : []));
  const sides = ['default', 'shadow'] as const;
  const arms = ['default', 'canary'] as const;
  const seconds = (ms: number | null): number | null => (ms === null ? null : ms / 1000);
  const set = <L extends string>(g: Gauge<L>, labels: Record<L, string>, value: number | null): void => {
    if (value !== null) g.set(labels, value);
  };

  gauge(
    'rollout_canary_percent',
    'Share of the jobs naming no version that the canary takes, by model and canary version.',
    ['model', 'version'],
    (g, r) => {
      for (const { model, canary } of canaries(r)) g.set({ model, version: canary.version }, canary.percent);
    },
  );
  gauge(
    'shadow_rows_compared',
    'Rows run on both the default and the shadow version since the rollout changed, by model and shadow version.',
    ['model', 'version'],
    (g, r) => {
      for (const { model, shadow } of shadows(r)) g.set({ model, version: shadow.version }, shadow.rowsCompared);
    },
  );
  gauge('shadow_agreement', 'Share of compared rows whose label the shadow agrees with (classification).', ['model', 'version'], (g, r) => {
    for (const { model, shadow } of shadows(r)) set(g, { model, version: shadow.version }, shadow.agreement);
  });
  gauge(
    'shadow_mean_abs_difference',
    'Mean absolute difference of the probabilities (or values) of shadow and default, per compared row.',
    ['model', 'version'],
    (g, r) => {
      for (const { model, shadow } of shadows(r)) set(g, { model, version: shadow.version }, shadow.meanAbsDifference);
    },
  );
  gauge(
    'shadow_failed_rows',
    'Rows of shadow-sampled chunks that failed, by side (default, shadow).',
    ['model', 'version', 'side'],
    (g, r) => {
      for (const { model, shadow } of shadows(r))
        for (const side of sides) g.set({ model, version: shadow.version, side }, shadow.failedRows[side]);
    },
  );
  gauge(
    'shadow_p50_seconds_per_row',
    'Median inference time per row of shadow-sampled chunks, by side.',
    ['model', 'version', 'side'],
    (g, r) => {
      for (const { model, shadow } of shadows(r))
        for (const side of sides) set(g, { model, version: shadow.version, side }, seconds(shadow.p50MsPerRow[side]));
    },
  );
  gauge('canary_rows', 'Rows recorded since the rollout changed, by arm (default, canary).', ['model', 'version', 'arm'], (g, r) => {
    for (const { model, canary } of canaries(r)) for (const arm of arms) g.set({ model, version: canary.version, arm }, canary.rows[arm]);
  });
  gauge('canary_jobs', 'Jobs finished since the rollout changed, by arm.', ['model', 'version', 'arm'], (g, r) => {
    for (const { model, canary } of canaries(r)) for (const arm of arms) g.set({ model, version: canary.version, arm }, canary.jobs[arm]);
  });
  gauge('canary_failed_row_rate', 'Share of rows that failed, by arm.', ['model', 'version', 'arm'], (g, r) => {
    for (const { model, canary } of canaries(r))
      for (const arm of arms) set(g, { model, version: canary.version, arm }, canary.failedRowRate[arm]);
  });
  gauge('canary_p50_seconds_per_row', 'Median inference time per row, by arm.', ['model', 'version', 'arm'], (g, r) => {
    for (const { model, canary } of canaries(r))
      for (const arm of arms) set(g, { model, version: canary.version, arm }, seconds(canary.p50MsPerRow[arm]));
  });
  gauge('canary_p50_job_seconds', 'Median job duration (submit to finish), by arm.', ['model', 'version', 'arm'], (g, r) => {
    for (const { model, canary } of canaries(r))
      for (const arm of arms) set(g, { model, version: canary.version, arm }, seconds(canary.p50JobMs[arm]));
  });
}
