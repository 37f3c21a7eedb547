import { createHash } from 'node:crypto';
import type { EvaluationMetric } from '@onnx-batch/contracts';
import { LOG_LOSS_EPSILON, predictedClass } from '../quality/quality-counters';

/**
 * The paired bootstrap of an evaluation (docs/models-in-production.md#quality-gate): the rows
 * both versions predicted are drawn n times with replacement, the same draw for both versions,
 * and each metric's difference (candidate − baseline) is computed on the draw; B draws give the
 * percentile interval of each difference. The generator is seeded, so the same rows, settings
 * and seed always give the same interval.
 */

/** A seed from a text (the evaluation id): the first 32 bits of its SHA-256. */
export function seedOf(text: string): number {
  return createHash('sha256').update(text).digest().readUInt32BE(0);
}

/**
 * xoshiro128** (Blackman and Vigna), its state filled by splitmix32 from `seed`: uniform numbers
 * in [0, 1) with 32 random bits each, the same sequence for the same seed on every platform.
 */
export function seededRandom(seed: number): () => number {
  let s = seed >>> 0;
  const splitmix = (): number => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
  let a = splitmix();
  let b = splitmix();
  let c = splitmix();
  let d = splitmix();
  return () => {
    const result = Math.imul(rotl(Math.imul(b, 5) >>> 0, 7), 9) >>> 0;
    const t = (b << 9) >>> 0;
    c = (c ^ a) >>> 0;
    d = (d ^ b) >>> 0;
    b = (b ^ c) >>> 0;
    a = (a ^ d) >>> 0;
    c = (c ^ t) >>> 0;
    d = rotl(d, 11);
    return result / 0x1_0000_0000;
  };
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** The rows both versions predicted, as the bootstrap reads them. */
export type PairedRows = PairedClassification | PairedRegression;

export interface PairedClassification {
  kind: 'classification';
  /** Classes (the width of a row of probabilities). */
  classes: number;
  /** Each row's true class index. */
  truths: ArrayLike<number>;
  /** rows × classes probabilities of each version (no failed row: those are left out before). */
  candidate: ArrayLike<number>;
  baseline: ArrayLike<number>;
}

export interface PairedRegression {
  kind: 'regression';
  truths: ArrayLike<number>;
  /** One predicted value a row, per version. */
  candidate: ArrayLike<number>;
  baseline: ArrayLike<number>;
}

/** What a metric is computed from, per row of one version: precomputed once, summed with weights per draw. */
interface SideRows {
  /** Classification: predicted class; regression: unused. */
  predicted: Int32Array;
  /** Classification: 1 when right; regression: |error|. */
  a: Float64Array;
  /** Classification: −ln p(true); regression: error². */
  b: Float64Array;
}

const CLASSIFICATION_METRICS = ['accuracy', 'macroF1', 'logLoss'] as const;
const REGRESSION_METRICS = ['rmse', 'mae'] as const;

/** The metrics a paired bootstrap reports, in report order (the primary first). */
export function metricsOf(kind: PairedRows['kind']): readonly EvaluationMetric[] {
  return kind === 'classification' ? CLASSIFICATION_METRICS : REGRESSION_METRICS;
}

export function betterOf(metric: EvaluationMetric): 'higher' | 'lower' {
  return metric === 'accuracy' || metric === 'macroF1' ? 'higher' : 'lower';
}

function sideRows(paired: PairedRows, side: 'candidate' | 'baseline'): SideRows {
  const values = paired[side];
  const n = paired.truths.length;
  const out: SideRows = { predicted: new Int32Array(n), a: new Float64Array(n), b: new Float64Array(n) };
  for (let r = 0; r < n; r++) {
    const truth = paired.truths[r] as number;
    if (paired.kind === 'classification') {
      const k = predictedClass(values, r * paired.classes, paired.classes);
      out.predicted[r] = k;
      out.a[r] = k === truth ? 1 : 0;
      out.b[r] = -Math.log(Math.max(values[r * paired.classes + truth] as number, LOG_LOSS_EPSILON));
    } else {
      const error = (values[r] as number) - truth;
      out.a[r] = Math.abs(error);
      out.b[r] = error * error;
    }
  }
  return out;
}

/**
 * Each metric of one version over rows weighted by how often a draw took them (all 1: the rows
 * as they are). Computed as the quality counters compute them (quality-counters.ts): macro F1
 * over every class, a class never predicted (or never true) scoring 0.
 */
function metricsOfDraw(
  paired: PairedRows,
  side: SideRows,
  weights: ArrayLike<number>,
  total: number,
  confusion: Float64Array,
): Record<EvaluationMetric, number> {
  const n = weights.length;
  let a = 0;
  let b = 0;
  for (let r = 0; r < n; r++) {
    const w = weights[r] as number;
    if (w === 0) continue;
    a += w * (side.a[r] as number);
    b += w * (side.b[r] as number);
  }
  const out = { accuracy: NaN, macroF1: NaN, logLoss: NaN, rmse: NaN, mae: NaN };
  if (paired.kind === 'regression') {
    out.mae = a / total;
    out.rmse = Math.sqrt(b / total);
    return out;
  }
  const K = paired.classes;
  confusion.fill(0);
  for (let r = 0; r < n; r++) {
    const w = weights[r] as number;
    if (w === 0) continue;
    const cell = (paired.truths[r] as number) * K + (side.predicted[r] as number);
    confusion[cell] = (confusion[cell] as number) + w;
  }
  let f1Sum = 0;
  for (let k = 0; k < K; k++) {
    let support = 0;
    let predictedAs = 0;
    for (let j = 0; j < K; j++) {
      support += confusion[k * K + j] as number;
      predictedAs += confusion[j * K + k] as number;
    }
    const tp = confusion[k * K + k] as number;
    const precision = predictedAs > 0 ? tp / predictedAs : 0;
    const recall = support > 0 ? tp / support : 0;
    f1Sum += precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0;
  }
  out.accuracy = a / total;
  out.logLoss = b / total;
  out.macroF1 = f1Sum / Math.max(K, 1);
  return out;
}

/** The linear-interpolation quantile (Hyndman and Fan type 7, R's default) of sorted values. */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  const h = (sorted.length - 1) * q;
  const lo = Math.floor(h);
  const hi = Math.min(lo + 1, sorted.length - 1);
  return (sorted[lo] as number) + (h - lo) * ((sorted[hi] as number) - (sorted[lo] as number));
}

export interface BootstrapSettings {
  resamples: number;
  /** Of the interval, e.g. 0.95: the (1 − c)/2 and (1 + c)/2 quantiles of the B differences. */
  confidence: number;
  seed: number;
}

export interface BootstrapOutcome {
  /** Each metric of each version over the rows as they are, and the difference candidate − baseline. */
  point: Record<EvaluationMetric, { candidate: number; baseline: number; difference: number }>;
  /** Each metric's percentile interval of the difference. */
  ci: Record<EvaluationMetric, { low: number; high: number }>;
}

/** Draws between two yields to the event loop: a large set does not hold an API process for long at a time. */
const DRAWS_PER_SLICE = 25;

/**
 * The paired percentile bootstrap of every metric's difference over `paired` (at least one row).
 * Each draw takes n row indexes, uniformly with replacement, from the seeded generator; the
 * metric of each version is computed on the same draw, and their difference kept. Yields to the
 * event loop every few draws.
 */
export async function pairedBootstrap(paired: PairedRows, settings: BootstrapSettings): Promise<BootstrapOutcome> {
  const n = paired.truths.length;
  if (n === 0) throw new Error('a bootstrap needs at least one row');
  const metrics = metricsOf(paired.kind);
  const candidate = sideRows(paired, 'candidate');
  const baseline = sideRows(paired, 'baseline');
  const K = paired.kind === 'classification' ? paired.classes : 1;
  const confusion = new Float64Array(K * K);
  const ones = new Float64Array(n).fill(1);
  const c0 = metricsOfDraw(paired, candidate, ones, n, confusion);
  const b0 = metricsOfDraw(paired, baseline, ones, n, confusion);
  const point = Object.fromEntries(
    metrics.map((m) => [m, { candidate: c0[m], baseline: b0[m], difference: c0[m] - b0[m] }]),
  ) as BootstrapOutcome['point'];

  const random = seededRandom(settings.seed);
  const weights = new Float64Array(n);
  const differences = Object.fromEntries(metrics.map((m) => [m, new Float64Array(settings.resamples)])) as Record<
    EvaluationMetric,
    Float64Array
  >;
  for (let draw = 0; draw < settings.resamples; draw++) {
    if (draw > 0 && draw % DRAWS_PER_SLICE === 0) await new Promise<void>((resolve) => setImmediate(resolve));
    weights.fill(0);
    for (let i = 0; i < n; i++) {
      const r = Math.floor(random() * n);
      weights[r] = (weights[r] as number) + 1;
    }
    const c = metricsOfDraw(paired, candidate, weights, n, confusion);
    const b = metricsOfDraw(paired, baseline, weights, n, confusion);
    for (const m of metrics) differences[m][draw] = c[m] - b[m];
  }
  const tail = (1 - settings.confidence) / 2;
  const ci = Object.fromEntries(
    metrics.map((m) => {
      const sorted = differences[m].sort();
      return [m, { low: quantile(sorted, tail), high: quantile(sorted, 1 - tail) }];
    }),
  ) as BootstrapOutcome['ci'];
  return { point, ci };
}
