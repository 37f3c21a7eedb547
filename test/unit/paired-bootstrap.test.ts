import {
  evaluationReport,
  pairedBootstrap,
  qualityOfRows,
  quantile,
  seededRandom,
  seedOf,
  verdictOf,
  type PairedClassification,
} from '@onnx-batch/shared';
import type { ClassificationQuality, MetricComparison } from '@onnx-batch/contracts';

// The paired bootstrap and the verdict of an evaluation (shared/src/evaluations), on small sets built here.

const SETTINGS = { resamples: 500, confidence: 0.95, allowedRegression: 0.01, minRows: 30 };

/** n rows of 3 classes: truth r % 3; the baseline right on every row, the candidate wrong on the rows `wrong` picks. */
function threeClassRows(
  n: number,
  wrong: (r: number) => boolean,
): { truths: Float64Array; candidate: Float32Array; baseline: Float32Array } {
  const truths = Float64Array.from({ length: n }, (_, r) => r % 3);
  const candidate = new Float32Array(n * 3);
  const baseline = new Float32Array(n * 3);
  for (let r = 0; r < n; r++) {
    const t = r % 3;
    for (let k = 0; k < 3; k++) baseline[r * 3 + k] = k === t ? 0.8 : 0.1;
    const said = wrong(r) ? (t + 1) % 3 : t;
    for (let k = 0; k < 3; k++) candidate[r * 3 + k] = k === said ? 0.6 : 0.2;
  }
  return { truths, candidate, baseline };
}

describe('seeded generator', () => {
  it('when two generators share a seed, then they give the same numbers in [0, 1); another seed gives others', () => {
    const a = seededRandom(42);
    const b = seededRandom(42);
    const c = seededRandom(43);
    const xs = Array.from({ length: 1000 }, () => a());

    expect(Array.from({ length: 1000 }, () => b())).toEqual(xs);
    expect(Array.from({ length: 1000 }, () => c())).not.toEqual(xs);
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
    // Roughly uniform: each tenth holds about a tenth of them.
    const tenths = Array.from({ length: 10 }, (_, d) => xs.filter((x) => Math.floor(x * 10) === d).length);
    expect(Math.min(...tenths)).toBeGreaterThan(60);
    expect(seedOf('an id')).toBe(seedOf('an id'));
    expect(seedOf('an id')).not.toBe(seedOf('another id'));
  });

  it('when quantiles are taken, then they interpolate linearly between order statistics (type 7)', () => {
    const sorted = [1, 2, 3, 4, 5];
    expect(quantile(sorted, 0)).toBe(1);
    expect(quantile(sorted, 1)).toBe(5);
    expect(quantile(sorted, 0.5)).toBe(3);
    expect(quantile(sorted, 0.1)).toBeCloseTo(1.4, 12);
  });
});

describe('paired bootstrap', () => {
  it(
    'when it runs twice with one seed, then the intervals are equal and bracket the difference; the points are the ' + 'counters\u2019',
    async () => {
      const { truths, candidate, baseline } = threeClassRows(90, (r) => r % 10 === 0);
      const paired: PairedClassification = { kind: 'classification', classes: 3, truths, candidate, baseline };

      const one = await pairedBootstrap(paired, { resamples: 500, confidence: 0.95, seed: 7 });
      const two = await pairedBootstrap(paired, { resamples: 500, confidence: 0.95, seed: 7 });
      const other = await pairedBootstrap(paired, { resamples: 500, confidence: 0.95, seed: 8 });

      expect(two).toEqual(one);
      expect(other.ci.logLoss).not.toEqual(one.ci.logLoss);
      const labels = ['a', 'b', 'c'];
      const c = qualityOfRows('classification', candidate, 90, 3, truths, labels) as ClassificationQuality;
      const b = qualityOfRows('classification', baseline, 90, 3, truths, labels) as ClassificationQuality;
      expect(one.point.accuracy.candidate).toBe(c.accuracy);
      expect(one.point.macroF1.candidate).toBeCloseTo(c.macroF1 as number, 12);
      expect(one.point.logLoss.baseline).toBeCloseTo(b.logLoss as number, 12);
      for (const metric of ['accuracy', 'macroF1', 'logLoss'] as const) {
        expect(one.ci[metric].low).toBeLessThanOrEqual(one.point[metric].difference);
        expect(one.ci[metric].high).toBeGreaterThanOrEqual(one.point[metric].difference);
      }
      // 9 of 90 rows wrong, the baseline never: every draw is worse, so the interval is below 0.
      expect(one.point.accuracy.difference).toBeCloseTo(-0.1, 12);
      expect(one.ci.accuracy.high).toBeLessThan(0);
    },
  );
});

describe('evaluation verdict', () => {
  const versions = { candidate: '3', baseline: '2' };
  const comparison = (difference: number, low: number, high: number, metric: 'accuracy' | 'rmse' = 'accuracy'): MetricComparison => ({
    metric,
    better: metric === 'accuracy' ? 'higher' : 'lower',
    candidate: metric === 'accuracy' ? 0.9 + difference : 1 + difference,
    baseline: metric === 'accuracy' ? 0.9 : 1,
    difference,
    ci: { low, high },
  });

  it.each([
    ['worse beyond the allowed regression, interval below 0', comparison(-0.05, -0.09, -0.01), 'fail'],
    ['worse beyond the allowed regression, interval reaching 0', comparison(-0.05, -0.09, 0), 'pass'],
    ['worse within the allowed regression, interval below 0', comparison(-0.005, -0.009, -0.001), 'pass'],
    ['better', comparison(0.02, 0.01, 0.03), 'pass'],
    ['RMSE 5 % higher, interval above 0', comparison(0.05, 0.01, 0.09, 'rmse'), 'fail'],
    ['RMSE 0.5 % higher, interval above 0', comparison(0.005, 0.001, 0.009, 'rmse'), 'pass'],
    ['RMSE 5 % higher, interval reaching 0', comparison(0.05, 0, 0.09, 'rmse'), 'pass'],
  ])('when the primary metric is %s, then the verdict is %s', (_what, primary, verdict) => {
    const got = verdictOf(primary, 100, SETTINGS, versions);

    expect(got.verdict).toBe(verdict);
    expect(got.reason).toMatch(new RegExp(`^${primary.metric} .* on version 3 against .* on version 2 over 100 rows: difference `));
  });

  it('when fewer rows than GATE_MIN_ROWS were compared, then insufficient-data', () => {
    expect(verdictOf(comparison(-0.5, -0.6, -0.4), 29, SETTINGS, versions).verdict).toBe('insufficient-data');
  });

  it('when rows failed on one side, then the report compares the others only and counts the failed ones', async () => {
    const { truths, candidate, baseline } = threeClassRows(60, (r) => r < 12);
    candidate.fill(NaN, 0, 3 * 2); // rows 0 and 1 failed on the candidate
    baseline.fill(NaN, 3 * 59); // row 59 on the baseline

    const report = await evaluationReport(
      { kind: 'classification', labels: ['a', 'b', 'c'], candidate, baseline, width: 3, truths, versions, seed: 1 },
      SETTINGS,
    );

    expect(report).toMatchObject({ rows: 60, comparedRows: 57, failedRows: { candidate: 2, baseline: 1 }, primary: 'accuracy' });
    expect(report.metrics.map((m) => m.metric)).toEqual(['accuracy', 'macroF1', 'logLoss']);
    expect(report.metrics[0]?.candidate).toBeCloseTo(47 / 57, 12);
    expect(report.metrics[0]?.baseline).toBe(1);
    expect(report.verdict).toBe('fail');
    expect(report.reason).toMatch(/excludes no change$/);
  });
});
