import { readFileSync } from 'node:fs';
import path from 'node:path';
import { labelIncrements, predictionIncrements, qualityMetrics, qualityOfRows, type Increments } from '@onnx-batch/shared';
import { ROOT } from '../helpers/env';

// The quality figures against scikit-learn's own (test/fixtures/quality-oracle.json, written by
// models/quality_oracle.py with scikit-learn 1.2.1 on seeded cases), computed the way the service
// computes them: additive counters per row, summed, then read.

interface ClassificationCase {
  name: string;
  labels: string[];
  yTrue: number[];
  proba: number[][];
  expected: {
    accuracy: number;
    precision: number[];
    recall: number[];
    f1: number[];
    support: number[];
    macroF1: number;
    weightedF1: number;
    confusion: number[][];
    logLoss: number;
    brier: number;
    meanConfidence: number;
    calibrationError: number;
    calibration: { from: number; to: number; rows: number; confidence: number; accuracy: number }[];
  };
}

interface RegressionCase {
  name: string;
  yTrue: number[];
  yPred: number[];
  expected: { mae: number; rmse: number; r2: number; bias: number };
}

const oracle = JSON.parse(readFileSync(path.join(ROOT, 'test', 'fixtures', 'quality-oracle.json'), 'utf8')) as {
  classification: ClassificationCase[];
  regression: RegressionCase[];
};

/** The float32 values a chunk stores. */
const stored = (rows: number[][]): Float32Array => Float32Array.from(rows.flat());

describe('quality metrics against scikit-learn', () => {
  it('when the oracle is read, then it holds the cases it promises', () => {
    expect(oracle.classification.map((c) => c.labels.length)).toEqual(expect.arrayContaining([2, 3, 10]));
    expect(oracle.regression.length).toBeGreaterThanOrEqual(2);
  });

  describe.each(oracle.classification.map((c) => [c.name, c] as const))('classification: %s', (_name, c) => {
    const K = c.labels.length;
    const values = stored(c.proba);
    const metrics = qualityOfRows('classification', values, c.yTrue.length, K, c.yTrue, c.labels);
    if (metrics.kind !== 'classification') throw new Error('a classifier');
    const e = c.expected;

    it('when every row is labelled, then accuracy, per-class figures, F1 averages and the confusion matrix are scikit-learn’s', () => {
      expect(metrics.labelledRows).toBe(c.yTrue.length);
      expect(metrics.accuracy).toBeCloseTo(e.accuracy, 12);
      expect(metrics.confusion).toEqual(e.confusion);
      expect(metrics.classes.map((k) => k.support)).toEqual(e.support);
      metrics.classes.forEach((k, i) => {
        expect(k.precision).toBeCloseTo(e.precision[i] as number, 12);
        expect(k.recall).toBeCloseTo(e.recall[i] as number, 12);
        expect(k.f1).toBeCloseTo(e.f1[i] as number, 12);
      });
      expect(metrics.macroF1).toBeCloseTo(e.macroF1, 12);
      expect(metrics.weightedF1).toBeCloseTo(e.weightedF1, 12);
    });

    it('when every row is labelled, then log loss, Brier score, mean confidence and calibration are scikit-learn’s (numpy’s)', () => {
      expect(metrics.logLoss).toBeCloseTo(e.logLoss, 9);
      expect(metrics.brier).toBeCloseTo(e.brier, 9);
      expect(metrics.meanConfidence).toBeCloseTo(e.meanConfidence, 9);
      expect(metrics.calibrationError).toBeCloseTo(e.calibrationError, 9);
      expect(metrics.calibration.map((b) => [b.from, b.to, b.rows])).toEqual(e.calibration.map((b) => [b.from, b.to, b.rows]));
      metrics.calibration.forEach((b, i) => {
        expect(b.confidence).toBeCloseTo(e.calibration[i]?.confidence as number, 9);
        expect(b.accuracy).toBeCloseTo(e.calibration[i]?.accuracy as number, 12);
      });
    });

    it('when labels are given, taken back and given again row by row, then the sums read the same figures', () => {
      const sums: Increments = predictionIncrements('classification', values, c.yTrue.length, K);
      c.yTrue.forEach((t, r) => {
        const wrong = (t + 1) % K;
        labelIncrements(sums, 'classification', values, r * K, K, wrong, 1);
        labelIncrements(sums, 'classification', values, r * K, K, wrong, -1);
        labelIncrements(sums, 'classification', values, r * K, K, t, 1);
      });
      const again = qualityMetrics('classification', sums, c.labels);
      if (again.kind !== 'classification') throw new Error('a classifier');
      expect(again.confusion).toEqual(e.confusion);
      expect(again.logLoss).toBeCloseTo(e.logLoss, 9);
      expect(again.brier).toBeCloseTo(e.brier, 9);
    });

    it('when nothing is labelled, then the estimate from confidences is the mean confidence, and realised figures are null', () => {
      const unlabelled = qualityMetrics('classification', predictionIncrements('classification', values, c.yTrue.length, K), c.labels);
      if (unlabelled.kind !== 'classification') throw new Error('a classifier');
      expect(unlabelled.accuracy).toBeNull();
      expect(unlabelled.estimated?.accuracy).toBeCloseTo(e.meanConfidence, 9);
      expect(unlabelled.estimated?.calibrationGap).toBeNull();
    });
  });

  describe.each(oracle.regression.map((c) => [c.name, c] as const))('regression: %s', (_name, c) => {
    it('when every row is labelled, then MAE, RMSE, R² and bias are scikit-learn’s', () => {
      const metrics = qualityOfRows('regression', Float32Array.from(c.yPred), c.yTrue.length, 1, c.yTrue, []);
      if (metrics.kind !== 'regression') throw new Error('regression');
      expect(metrics.labelledRows).toBe(c.yTrue.length);
      expect(metrics.mae).toBeCloseTo(c.expected.mae, 9);
      expect(metrics.rmse).toBeCloseTo(c.expected.rmse, 9);
      expect(metrics.r2).toBeCloseTo(c.expected.r2, 9);
      expect(metrics.bias).toBeCloseTo(c.expected.bias, 9);
    });
  });
});
