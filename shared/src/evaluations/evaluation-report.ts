import {
  PRIMARY_METRIC,
  type EvaluationMetric,
  type EvaluationReport,
  type EvaluationVerdict,
  type MetricComparison,
} from '@onnx-batch/contracts';
import type { QualityMetrics } from '@onnx-batch/contracts';
import { predictedClass, qualityOfRows, type QualityKind } from '../quality/quality-counters';
import { betterOf, metricsOf, pairedBootstrap, type PairedRows } from './paired-bootstrap';

/** The settings a report is made with (GATE_* configuration). */
export interface ReportSettings {
  resamples: number;
  confidence: number;
  /** GATE_ALLOWED_REGRESSION: absolute for accuracy, relative for RMSE. */
  allowedRegression: number;
  minRows: number;
}

/** What a report is computed from: both jobs' stored values in input order, and the truths. */
export interface ReportInputs {
  kind: QualityKind;
  /** The classifier's labels (K = their count); [] for regression. */
  labels: readonly string[];
  /** rows × width float32 values of each version, as results store them (NaN in a failed row). */
  candidate: Float32Array;
  baseline: Float32Array;
  width: number;
  /** Each row's truth: class index or value. */
  truths: ArrayLike<number>;
  versions: { candidate: string; baseline: string };
  seed: number;
}

/**
 * The report of an evaluation: each metric of both versions over the rows both predicted (as the
 * live quality counters compute it: quality-counters.ts `qualityOfRows`), the difference and its
 * paired bootstrap interval, and the verdict of the primary metric (accuracy, RMSE):
 *
 *   insufficient-data  fewer than `minRows` rows compared
 *   fail               accuracy: difference < −allowedRegression and the interval's upper end < 0
 *                      RMSE:     difference > allowedRegression × baseline RMSE and the interval's lower end > 0
 *   pass               otherwise
 *
 * A candidate fails only when it is worse by more than the allowed regression and the interval
 * excludes "no worse" (a difference of 0): both a real loss and one the rows show beyond chance.
 */
export async function evaluationReport(inputs: ReportInputs, settings: ReportSettings): Promise<EvaluationReport> {
  const { kind, width } = inputs;
  const rows = inputs.truths.length;
  const failed = (values: Float32Array, r: number): boolean =>
    kind === 'classification' ? predictedClass(values, r * width, width) < 0 : Number.isNaN(values[r * width]);
  const compared: number[] = [];
  let candidateFailed = 0;
  let baselineFailed = 0;
  for (let r = 0; r < rows; r++) {
    const c = failed(inputs.candidate, r);
    const b = failed(inputs.baseline, r);
    if (c) candidateFailed++;
    if (b) baselineFailed++;
    if (!c && !b) compared.push(r);
  }
  const n = compared.length;
  const pick = (values: Float32Array): Float32Array => {
    const out = new Float32Array(n * width);
    compared.forEach((r, i) => out.set(values.subarray(r * width, (r + 1) * width), i * width));
    return out;
  };
  const candidate = pick(inputs.candidate);
  const baseline = pick(inputs.baseline);
  const truths = Float64Array.from(compared, (r) => inputs.truths[r] as number);
  const candidateMetrics = qualityOfRows(kind, candidate, n, width, truths, inputs.labels);
  const baselineMetrics = qualityOfRows(kind, baseline, n, width, truths, inputs.labels);

  const seed = inputs.seed;
  const paired: PairedRows =
    kind === 'classification'
      ? { kind, classes: width, truths, candidate, baseline }
      : {
          kind,
          truths,
          candidate: Float64Array.from({ length: n }, (_, i) => candidate[i * width] as number),
          baseline: Float64Array.from({ length: n }, (_, i) => baseline[i * width] as number),
        };
  const bootstrap = n > 0 ? await pairedBootstrap(paired, { resamples: settings.resamples, confidence: settings.confidence, seed }) : null;

  const metrics: MetricComparison[] = metricsOf(kind).map((metric) => {
    const c = metricOf(candidateMetrics, metric);
    const b = metricOf(baselineMetrics, metric);
    return {
      metric,
      better: betterOf(metric),
      candidate: c,
      baseline: b,
      difference: c !== null && b !== null ? c - b : null,
      ci: bootstrap ? bootstrap.ci[metric] : null,
    };
  });
  const primary = PRIMARY_METRIC[kind];
  const { verdict, reason } = verdictOf(metrics[0] as MetricComparison, n, settings, inputs.versions);
  return {
    kind,
    rows,
    comparedRows: n,
    failedRows: { candidate: candidateFailed, baseline: baselineFailed },
    primary,
    metrics,
    bootstrap: { resamples: settings.resamples, confidence: settings.confidence, seed, method: 'paired-percentile' },
    rule: { allowedRegression: settings.allowedRegression, minRows: settings.minRows },
    verdict,
    reason,
  };
}

function metricOf(metrics: QualityMetrics, metric: EvaluationMetric): number | null {
  if (metrics.kind === 'classification') {
    if (metric === 'accuracy') return metrics.accuracy;
    if (metric === 'macroF1') return metrics.macroF1;
    if (metric === 'logLoss') return metrics.logLoss;
    return null;
  }
  if (metric === 'rmse') return metrics.rmse;
  if (metric === 'mae') return metrics.mae;
  return null;
}

/** The verdict of the primary metric's comparison (see evaluationReport), and why, with the figures. */
export function verdictOf(
  primary: MetricComparison,
  comparedRows: number,
  settings: Pick<ReportSettings, 'allowedRegression' | 'minRows' | 'confidence'>,
  versions: { candidate: string; baseline: string },
): { verdict: EvaluationVerdict; reason: string } {
  if (comparedRows < settings.minRows || primary.difference === null || primary.ci === null)
    return {
      verdict: 'insufficient-data',
      reason: `${comparedRows} row(s) predicted on both versions, fewer than GATE_MIN_ROWS (${settings.minRows}): no verdict`,
    };
  const { metric, difference, ci } = primary;
  const figures = comparisonText(primary, comparedRows, settings.confidence, versions);
  const limit = metric === 'rmse' ? settings.allowedRegression * (primary.baseline ?? 0) : settings.allowedRegression;
  const allowed = metric === 'rmse' ? `${fmt(settings.allowedRegression * 100)} % of the default's RMSE` : fmt(settings.allowedRegression);
  const worse = metric === 'rmse' ? difference > limit : difference < -limit;
  const significant = metric === 'rmse' ? ci.low > 0 : ci.high < 0;
  if (worse && significant)
    return {
      verdict: 'fail',
      reason: `${figures}: worse by more than the allowed regression (${allowed}), and the interval excludes no change`,
    };
  if (worse)
    return {
      verdict: 'pass',
      reason: `${figures}: worse by more than the allowed regression (${allowed}), but the interval includes no change`,
    };
  return { verdict: 'pass', reason: `${figures}: within the allowed regression (${allowed})` };
}

/** "accuracy 0.9111 on version 3 against 1.0000 on version 2 over 45 rows: difference −0.0889 (95 % CI −0.1778 to −0.0222)". */
export function comparisonText(
  comparison: MetricComparison,
  rows: number,
  confidence: number,
  versions: { candidate: string; baseline: string },
): string {
  const ci = comparison.ci ? ` (${fmt(confidence * 100)} % CI ${fmt(comparison.ci.low)} to ${fmt(comparison.ci.high)})` : '';
  return (
    `${comparison.metric} ${fmt(comparison.candidate)} on version ${versions.candidate} against ${fmt(comparison.baseline)} on ` +
    `version ${versions.baseline} over ${rows} rows: difference ${fmt(comparison.difference)}${ci}`
  );
}

function fmt(x: number | null): string {
  if (x === null) return '-';
  return Number(x.toPrecision(4)).toString();
}
