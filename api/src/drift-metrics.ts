import { Gauge, type Registry } from 'prom-client';
import {
  METRIC_PREFIX,
  readDriftReport,
  type DriftReport,
  type DriftSettings,
  type DriftWindow,
  type ModelRepository,
  type RedisClient,
  type RedisKeys,
} from '@onnx-batch/shared';
import { memoPerScrape } from './scrape-memo';

/** The window the drift gauges report over (the API answers others on request). */
export const DRIFT_METRICS_WINDOW: DriftWindow = '15m';

/** Reads the reports the gauges export: every version with a baseline, over DRIFT_METRICS_WINDOW ending now. */
export function driftReportsReader(
  repository: Pick<ModelRepository, 'list'>,
  redis: RedisClient,
  keys: RedisKeys,
  settings: DriftSettings,
  now: () => number = Date.now,
): () => Promise<DriftReport[]> {
  return () =>
    Promise.all(
      repository
        .list()
        .flatMap((entry) => entry.versions)
        .flatMap((v) =>
          v.baseline
            ? [readDriftReport(redis, keys, v.manifest.name, v.manifest.version, v.baseline, DRIFT_METRICS_WINDOW, settings, now())]
            : [],
        ),
    );
}

/**
 * Drift of every model version with a baseline as Prometheus gauges, read at scrape time over
 * the last 15 minutes (the same on every API replica: aggregate with max). A series exists only
 * when its window holds at least DRIFT_MIN_ROWS rows: too few rows is no reading, never an alarm.
 */
export function registerDriftGauges(registry: Registry, read: () => Promise<DriftReport[]>): void {
  const load = memoPerScrape(read);
  const features: Gauge<'model' | 'version' | 'feature'> = new Gauge({
    name: `${METRIC_PREFIX}feature_psi`,
    help:
      `Population stability index of a feature statistic of a model version over the last ${DRIFT_METRICS_WINDOW} against ` +
      `its baseline (docs/drift.md); absent with too few rows.`,
    labelNames: ['model', 'version', 'feature'],
    registers: [registry],
    // Every API process reads the same reports: merged across processes, once, not summed.
    aggregator: 'max',
    collect: async () => {
      const reports = await load().catch(() => []);
      features.reset();
      for (const r of reports) {
        for (const [feature, statistic] of Object.entries(r.features))
          if (statistic.psi !== null) features.set({ model: r.model, version: r.version, feature }, statistic.psi);
      }
    },
  });
  const predictions: Gauge<'model' | 'version'> = new Gauge({
    name: `${METRIC_PREFIX}prediction_psi`,
    help:
      `Population stability index of a model version's predictions over the last ${DRIFT_METRICS_WINDOW} against its ` +
      `baseline; absent with too few rows.`,
    labelNames: ['model', 'version'],
    registers: [registry],
    aggregator: 'max',
    collect: async () => {
      const reports = await load().catch(() => []);
      predictions.reset();
      for (const r of reports) if (r.prediction?.psi != null) predictions.set({ model: r.model, version: r.version }, r.prediction.psi);
    },
  });
}
