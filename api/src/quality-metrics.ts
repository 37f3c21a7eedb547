import type { QualityMetrics } from '@onnx-batch/contracts';
import { Gauge, type Registry } from 'prom-client';
import {
  METRIC_PREFIX,
  qualityBucketIndex,
  qualityBucketStart,
  qualityKindOf,
  qualityMetrics,
  sumCounters,
  type ModelRepository,
  type QualityArm,
  type QualityStore,
} from '@onnx-batch/shared';
import { referenceOf } from './quality/quality-view';
import { memoPerScrape } from './scrape-memo';

/** The windows the quality gauges report over: the last 24 hour buckets, the last 7 day buckets (the current one included). */
export const QUALITY_WINDOWS = { '24h': { unit: 'h', count: 24 }, '7d': { unit: 'd', count: 7 } } as const;
export type QualityWindow = keyof typeof QUALITY_WINDOWS;

export interface QualityReading {
  model: string;
  version: string;
  arm: QualityArm;
  window: QualityWindow;
  metrics: QualityMetrics;
}

/** Reads the quality of every version and arm that predicted within the retention, over each gauge window ending now. */
export function qualityReadingsReader(
  repository: Pick<ModelRepository, 'list' | 'find'>,
  quality: QualityStore,
  now: () => number = Date.now,
): () => Promise<QualityReading[]> {
  return async () => {
    const readings: QualityReading[] = [];
    for (const entry of repository.list()) {
      for (const series of await quality.series(entry.name)) {
        const manifest = repository.find(entry.name, series.version)?.manifest;
        const kind = manifest ? qualityKindOf(manifest) : null;
        if (!manifest || !kind) continue;
        for (const [window, { unit, count }] of Object.entries(QUALITY_WINDOWS) as [
          QualityWindow,
          (typeof QUALITY_WINDOWS)[QualityWindow],
        ][]) {
          const current = qualityBucketIndex(unit, now());
          const from = qualityBucketStart(unit, current - count + 1);
          const buckets = await quality.buckets(entry.name, series.version, series.arm, unit, from, qualityBucketStart(unit, current + 1));
          readings.push({
            model: entry.name,
            version: series.version,
            arm: series.arm,
            window,
            metrics: qualityMetrics(kind, sumCounters(buckets.map((b) => b.sums)), manifest.result.labels ?? []),
          });
        }
      }
    }
    return readings;
  };
}

type Labels = 'model' | 'version' | 'arm' | 'window';
const LABELS: Labels[] = ['model', 'version', 'arm', 'window'];

/**
 * Model quality as Prometheus gauges (docs/models-in-production.md#quality), read at scrape time
 * from the quality counters, the same on every API replica (merged with max). Realised figures
 * exist only for a window holding QUALITY_MIN_LABELS labelled rows, estimated ones only for
 * QUALITY_MIN_LABELS predicted rows: five labels are no reading, never an alarm. Each version's
 * reference (its manifest's `metrics.reference`) is exported beside, for the alert rules.
 */
export function registerQualityGauges(
  registry: Registry,
  read: () => Promise<QualityReading[]>,
  repository: Pick<ModelRepository, 'list' | 'find'>,
  minLabels: number,
): void {
  const load = memoPerScrape(read);
  const gauge = (name: string, help: string, pick: (m: QualityMetrics) => number | null, enough: (m: QualityMetrics) => boolean): void => {
    const g: Gauge<Labels> = new Gauge({
      name: `${METRIC_PREFIX}${name}`,
      help,
      labelNames: LABELS,
      registers: [registry],
      aggregator: 'max',
      collect: async () => {
        const readings = await load().catch(() => []);
        g.reset();
        for (const r of readings) {
          const value = pick(r.metrics);
          if (value !== null && Number.isFinite(value) && enough(r.metrics))
            g.set({ model: r.model, version: r.version, arm: r.arm, window: r.window }, value);
        }
      },
    });
  };
  const labelled = (m: QualityMetrics): boolean => m.labelledRows >= minLabels;
  const predicted = (m: QualityMetrics): boolean => m.predictedRows >= minLabels;
  const always = (): boolean => true;
  const classifier = (pick: (m: Extract<QualityMetrics, { kind: 'classification' }>) => number | null) => (m: QualityMetrics) =>
    m.kind === 'classification' ? pick(m) : null;
  const regression = (pick: (m: Extract<QualityMetrics, { kind: 'regression' }>) => number | null) => (m: QualityMetrics) =>
    m.kind === 'regression' ? pick(m) : null;

  gauge('quality_labelled_rows', 'Rows predicted in the window that have a ground-truth label.', (m) => m.labelledRows, always);
  gauge('quality_predicted_rows', 'Rows predicted in the window (failed rows left out).', (m) => m.predictedRows, always);
  gauge(
    'quality_accuracy',
    'Realised accuracy of the labelled rows; absent below QUALITY_MIN_LABELS labels.',
    classifier((m) => m.accuracy),
    labelled,
  );
  gauge(
    'quality_macro_f1',
    'Realised macro-averaged F1 of the labelled rows; absent below QUALITY_MIN_LABELS labels.',
    classifier((m) => m.macroF1),
    labelled,
  );
  gauge(
    'quality_estimated_accuracy',
    'Accuracy estimated from confidences alone over every predicted row (CBPE); absent below QUALITY_MIN_LABELS predicted rows.',
    classifier((m) => m.estimated?.accuracy ?? null),
    predicted,
  );
  gauge(
    'quality_mae',
    'Realised mean absolute error of the labelled rows; absent below QUALITY_MIN_LABELS labels.',
    regression((m) => m.mae),
    labelled,
  );
  gauge(
    'quality_rmse',
    'Realised root mean squared error of the labelled rows; absent below QUALITY_MIN_LABELS labels.',
    regression((m) => m.rmse),
    labelled,
  );

  const reference = (name: string, field: string, help: string): void => {
    const g: Gauge<'model' | 'version'> = new Gauge({
      name: `${METRIC_PREFIX}${name}`,
      help,
      labelNames: ['model', 'version'],
      registers: [registry],
      aggregator: 'max',
      collect: () => {
        g.reset();
        for (const entry of repository.list())
          for (const v of entry.versions) {
            const value = referenceOf(repository as ModelRepository, entry.name, v.manifest.version)?.[field];
            if (typeof value === 'number') g.set({ model: entry.name, version: v.manifest.version }, value);
          }
      },
    });
  };
  reference(
    'quality_reference_accuracy',
    'accuracy',
    "Accuracy of a model version on its evaluation set (its manifest's metrics.reference).",
  );
  reference(
    'quality_reference_rmse',
    'rmse',
    "RMSE of a regression model version on its evaluation set (its manifest's metrics.reference).",
  );
}
