/**
 * Model quality as additive counters (docs/models-in-production.md#quality). Every prediction and
 * every ground-truth label adds a few numbers to hash fields; any window's metrics are computed
 * from the sums of its buckets, so writing a label is O(1) and reading a window O(buckets). A
 * label that replaces an earlier one adds the difference (new minus old contributions).
 *
 * Fields, for a classifier with K labels (indices 0..K-1 into the manifest's `result.labels`):
 *
 *   p           rows predicted (rows that failed are not counted)
 *   pc:<k>      rows predicted as class k
 *   ps:<k>      sum of the confidence (the top probability) of rows predicted as k
 *   pa:<k>      sum of the probability of class k over all predicted rows
 *   n           rows labelled
 *   cm:<t>:<k>  labelled rows of true class t predicted as k (the confusion matrix)
 *   ll          sum of the log loss −ln p(true class) (probabilities clipped at LOG_LOSS_EPSILON)
 *   br          sum of the Brier score Σ_k (p_k − [k = true])²
 *   cb:<b>:n    labelled rows whose confidence falls in calibration bin b (tenths: [0.1·b, 0.1·(b+1)))
 *   cb:<b>:c    their summed confidence
 *   cb:<b>:a    how many of them were right
 *
 * For a regression model (one target):
 *
 *   p, py, pyy  rows predicted, sum of the predictions, sum of their squares
 *   n           rows labelled
 *   e, ae, se   sums of the error (prediction − truth), its absolute value and its square
 *   y, yy       sums of the true values and their squares (for R²)
 */
import type { CalibrationBin, ClassQuality, EstimatedQuality, ModelManifest, QualityKind, QualityMetrics } from '@onnx-batch/contracts';

export type { QualityKind } from '@onnx-batch/contracts';

/** Field → increment; what one row (or many, summed) adds. */
export type Increments = Map<string, number>;

/**
 * How a model version's predictions are judged against ground truth, or null when they are not:
 * classifiers, and regression with one target; tensors and embeddings have no truth to compare
 * (an embedding is judged by what is built on it, not row by row), and several regression targets
 * would need a label each.
 */
export function qualityKindOf(manifest: Pick<ModelManifest, 'result'>): QualityKind | null {
  const { kind, names } = manifest.result;
  if (kind === 'classification') return kind;
  return kind === 'regression' && (names?.length ?? 1) <= 1 ? kind : null;
}

/** Probabilities below this count as it in the log loss (as scikit-learn clips float64 probabilities). */
export const LOG_LOSS_EPSILON = 1e-15;
/** Equal-width confidence bins of the calibration table: [0, 0.1), …, [0.9, 1.0]. */
export const CALIBRATION_BINS = 10;

function add(into: Increments, field: string, value: number): void {
  if (value !== 0) into.set(field, (into.get(field) ?? 0) + value);
}

/** The predicted class of a row of probabilities (its first largest); -1 when a value is not a number (a failed row). */
export function predictedClass(probabilities: ArrayLike<number>, offset: number, classes: number): number {
  let best = -1;
  let top = -Infinity;
  for (let k = 0; k < classes; k++) {
    const p = probabilities[offset + k] as number;
    if (Number.isNaN(p)) return -1;
    if (p > top) {
      top = p;
      best = k;
    }
  }
  return best;
}

/** The calibration bin of a confidence (1.0 falls in the last one). */
export function calibrationBin(confidence: number): number {
  return Math.min(CALIBRATION_BINS - 1, Math.max(0, Math.floor(confidence * CALIBRATION_BINS)));
}

/**
 * What the predictions of a chunk add: `values` is rows × width float32, as results are stored
 * (classification: probabilities, width K; regression: the value, width 1); rows with a NaN failed.
 */
export function predictionIncrements(kind: QualityKind, values: ArrayLike<number>, rows: number, width: number): Increments {
  const out: Increments = new Map();
  if (kind === 'regression') {
    for (let r = 0; r < rows; r++) {
      const y = values[r * width] as number;
      if (Number.isNaN(y)) continue;
      add(out, 'p', 1);
      add(out, 'py', y);
      add(out, 'pyy', y * y);
    }
    return out;
  }
  const sumsByClass = new Float64Array(width);
  for (let r = 0; r < rows; r++) {
    const offset = r * width;
    const k = predictedClass(values, offset, width);
    if (k < 0) continue;
    add(out, 'p', 1);
    add(out, `pc:${k}`, 1);
    add(out, `ps:${k}`, values[offset + k] as number);
    for (let j = 0; j < width; j++) sumsByClass[j] = (sumsByClass[j] as number) + (values[offset + j] as number);
  }
  sumsByClass.forEach((sum, j) => add(out, `pa:${j}`, sum));
  return out;
}

/**
 * What one labelled row adds (`sign` −1: what taking its label back removes). `prediction` holds
 * the row's stored values at `offset` (K probabilities, or the regression value); `truth` is the
 * true class index or the true value. Adds nothing for a row that failed.
 */
export function labelIncrements(
  into: Increments,
  kind: QualityKind,
  prediction: ArrayLike<number>,
  offset: number,
  width: number,
  truth: number,
  sign: 1 | -1 = 1,
): void {
  if (kind === 'regression') {
    const predicted = prediction[offset] as number;
    if (Number.isNaN(predicted)) return;
    const error = predicted - truth;
    add(into, 'n', sign);
    add(into, 'e', sign * error);
    add(into, 'ae', sign * Math.abs(error));
    add(into, 'se', sign * error * error);
    add(into, 'y', sign * truth);
    add(into, 'yy', sign * truth * truth);
    return;
  }
  const k = predictedClass(prediction, offset, width);
  if (k < 0) return;
  const confidence = prediction[offset + k] as number;
  let brier = 0;
  for (let j = 0; j < width; j++) {
    const d = (prediction[offset + j] as number) - (j === truth ? 1 : 0);
    brier += d * d;
  }
  const bin = calibrationBin(confidence);
  add(into, 'n', sign);
  add(into, `cm:${truth}:${k}`, sign);
  add(into, 'll', -sign * Math.log(Math.max(prediction[offset + truth] as number, LOG_LOSS_EPSILON)));
  add(into, 'br', sign * brier);
  add(into, `cb:${bin}:n`, sign);
  add(into, `cb:${bin}:c`, sign * confidence);
  add(into, `cb:${bin}:a`, k === truth ? sign : 0);
}

/** Sums hashes of counters (bucket after bucket) into one. */
export function sumCounters(hashes: Iterable<Record<string, string> | ReadonlyMap<string, number>>): Map<string, number> {
  const sums = new Map<string, number>();
  for (const hash of hashes) {
    const entries: Iterable<[string, string | number]> = hash instanceof Map ? hash.entries() : Object.entries(hash);
    for (const [field, value] of entries) sums.set(field, (sums.get(field) ?? 0) + Number(value));
  }
  return sums;
}

// ---------------------------------------------------------------------------------------------
// Metrics from sums (their shapes: contracts/src/quality.ts).

const ratio = (a: number, b: number): number | null => (b > 0 ? a / b : null);
const f1Of = (precision: number | null, recall: number | null): number | null =>
  precision === null || recall === null ? null : precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0;

/** The metrics of summed counters. `labels`: the classifier's labels (their count is K); ignored for regression. */
export function qualityMetrics(kind: QualityKind, sums: ReadonlyMap<string, number>, labels: readonly string[]): QualityMetrics {
  const get = (field: string): number => sums.get(field) ?? 0;
  const predictedRows = Math.round(get('p'));
  const n = Math.round(get('n'));
  const labelledShare = predictedRows > 0 ? Math.min(1, n / predictedRows) : null;
  if (kind === 'regression') {
    const sst = get('yy') - (get('y') * get('y')) / Math.max(n, 1);
    return {
      kind,
      predictedRows,
      labelledRows: n,
      labelledShare,
      mae: ratio(get('ae'), n),
      rmse: n > 0 ? Math.sqrt(Math.max(0, get('se')) / n) : null,
      r2: n >= 2 && sst > 1e-12 * Math.max(1, get('yy')) ? 1 - get('se') / sst : null,
      bias: ratio(get('e'), n),
      meanPrediction: ratio(get('py'), predictedRows),
    };
  }
  const K = labels.length;
  const confusion = Array.from({ length: K }, (_, t) => Array.from({ length: K }, (__, k) => Math.round(get(`cm:${t}:${k}`))));
  let right = 0;
  for (let t = 0; t < K; t++) right += confusion[t]?.[t] ?? 0;
  const classes: ClassQuality[] = labels.map((label, k) => {
    const tp = confusion[k]?.[k] ?? 0;
    const support = confusion[k]?.reduce((a, b) => a + b, 0) ?? 0;
    const predictedAs = confusion.reduce((a, row) => a + (row[k] ?? 0), 0);
    // As scikit-learn's zero_division=0: a class never predicted (or never true) scores 0.
    const precision = n > 0 ? (predictedAs > 0 ? tp / predictedAs : 0) : null;
    const recall = n > 0 ? (support > 0 ? tp / support : 0) : null;
    return { label, precision, recall, f1: f1Of(precision, recall), support };
  });
  const calibration: CalibrationBin[] = [];
  let calibrationError = 0;
  let confidenceSum = 0;
  for (let b = 0; b < CALIBRATION_BINS; b++) {
    const rows = Math.round(get(`cb:${b}:n`));
    confidenceSum += get(`cb:${b}:c`);
    if (rows <= 0) continue;
    const confidence = get(`cb:${b}:c`) / rows;
    const accuracy = get(`cb:${b}:a`) / rows;
    calibration.push({ from: b / CALIBRATION_BINS, to: (b + 1) / CALIBRATION_BINS, rows, confidence, accuracy });
    calibrationError += (rows / n) * Math.abs(accuracy - confidence);
  }
  const accuracy = ratio(right, n);
  const meanConfidence = ratio(confidenceSum, n);
  return {
    kind,
    predictedRows,
    labelledRows: n,
    labelledShare,
    accuracy,
    macroF1: n > 0 ? classes.reduce((a, c) => a + (c.f1 ?? 0), 0) / Math.max(K, 1) : null,
    weightedF1: n > 0 ? classes.reduce((a, c) => a + (c.f1 ?? 0) * c.support, 0) / n : null,
    logLoss: ratio(get('ll'), n),
    brier: ratio(get('br'), n),
    classes,
    confusion,
    meanConfidence,
    calibrationError: n > 0 ? calibrationError : null,
    calibration,
    estimated: estimatedQuality(sums, labels, accuracy !== null && meanConfidence !== null ? accuracy - meanConfidence : null),
  };
}

/**
 * Confidence-based performance estimation (as NannyML's CBPE): with calibrated probabilities, a
 * row predicted as k is right with probability p_k, so the expected confusion matrix follows from
 * the sums of probabilities — expected true positives of k: Σ p_k over rows predicted k (`ps:k`);
 * expected rows truly k: Σ p_k over all rows (`pa:k`).
 */
function estimatedQuality(
  sums: ReadonlyMap<string, number>,
  labels: readonly string[],
  calibrationGap: number | null,
): EstimatedQuality | null {
  const get = (field: string): number => sums.get(field) ?? 0;
  const predicted = get('p');
  if (predicted <= 0) return null;
  let expectedRight = 0;
  const classes = labels.map((label, k) => {
    const tp = get(`ps:${k}`);
    expectedRight += tp;
    const precision = get(`pc:${k}`) > 0 ? tp / get(`pc:${k}`) : 0;
    const recall = get(`pa:${k}`) > 0 ? tp / get(`pa:${k}`) : 0;
    return { label, precision, recall, f1: f1Of(precision, recall) };
  });
  return {
    accuracy: expectedRight / predicted,
    macroF1: classes.reduce((a, c) => a + (c.f1 ?? 0), 0) / Math.max(labels.length, 1),
    classes,
    calibrationGap,
  };
}

/** The metrics of per-row predictions and truths (an evaluation set, a reference): the same counters, summed in memory. */
export function qualityOfRows(
  kind: QualityKind,
  values: ArrayLike<number>,
  rows: number,
  width: number,
  truths: ArrayLike<number>,
  labels: readonly string[],
): QualityMetrics {
  const sums = predictionIncrements(kind, values, rows, width);
  for (let r = 0; r < rows; r++) labelIncrements(sums, kind, values, r * width, width, truths[r] as number);
  return qualityMetrics(kind, sums, labels);
}
