import type { Rollout } from '@onnx-batch/contracts';
import {
  autoRollbackReason,
  bucketOf,
  emptyRollout,
  histogramMedian,
  inShadowSample,
  nextRollout,
  percentile,
  rolloutReport,
  routeJob,
} from '@onnx-batch/shared';
import { compareOutputs } from '@onnx-batch/worker';

const NOW = new Date('2026-11-29T12:00:00Z');
const ids = Array.from({ length: 10_000 }, (_, i) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`);

describe('rollout transitions', () => {
  it('when a canary is set without changing the default, then a rollback drops it and keeps the default', () => {
    const withCanary = nextRollout(emptyRollout('iris'), 'put', '2', { canary: { version: '3', percent: 10 } }, NOW);
    const rolledBack = nextRollout(withCanary, 'rollback', '2', {}, NOW);

    expect(withCanary).toMatchObject({ default: null, canary: { version: '3', percent: 10 }, previousDefault: '2', revision: 1 });
    expect(rolledBack).toMatchObject({ default: '2', canary: null, shadow: null, previousDefault: null, revision: 2 });
  });

  it('when a canary is promoted, then it is the default and a rollback returns to the default before it', () => {
    const withCanary = nextRollout(
      emptyRollout('iris'),
      'put',
      '2',
      { default: '2', canary: { version: '3', percent: 50 }, shadow: { version: '3', percent: 5 } },
      NOW,
    );
    const promoted = nextRollout(withCanary, 'promote', '2', {}, NOW);
    const rolledBack = nextRollout(promoted, 'rollback', '3', {}, NOW);

    expect(promoted).toMatchObject({ default: '3', canary: null, previousDefault: '2' });
    expect(rolledBack).toMatchObject({ default: '2', canary: null, shadow: null });
  });

  it('when a new experiment starts after a promotion, then its rollback keeps the promoted default', () => {
    const promoted = nextRollout(
      nextRollout(emptyRollout('iris'), 'put', '2', { canary: { version: '3', percent: 50 } }, NOW),
      'promote',
      '2',
      {},
      NOW,
    );
    const nextExperiment = nextRollout(promoted, 'put', '3', { default: '3', canary: { version: '4', percent: 10 } }, NOW);

    expect(nextRollout(nextExperiment, 'auto-rollback', '3', {}, NOW)).toMatchObject({ default: '3', canary: null });
  });

  it('when there is no canary, then promote is refused', () => {
    expect(() => nextRollout(emptyRollout('iris'), 'promote', '2', {}, NOW)).toThrow('there is no canary to promote');
  });
});

describe('routing by job id', () => {
  const rollout: Rollout = {
    ...emptyRollout('iris'),
    canary: { version: '3', percent: 25 },
    shadow: { version: '3', percent: 10 },
    revision: 4,
  };

  it('when 10 000 jobs are routed, then the canary takes its percent within a point, and the same job always lands the same way', () => {
    const canary = ids.filter((id) => routeJob(rollout, id, '2').arm === 'canary').length;

    expect(Math.abs(canary / 100 - 25)).toBeLessThan(1);
    for (const id of ids.slice(0, 100)) expect(routeJob(rollout, id, '2')).toEqual(routeJob(rollout, id, '2'));
  });

  it('when a job names a version, then it is never rerouted', () => {
    expect(
      ids.slice(0, 1000).every((id) => routeJob(rollout, id, '2', '1').arm === 'pinned' && routeJob(rollout, id, '2', '1').version === '1'),
    ).toBe(true);
  });

  it('when chunks are sampled for the shadow, then about its percent are, and percentile spreads over [0, 100)', () => {
    const sampled = ids.filter((id) => inShadowSample(rollout, id, 0)).length;
    const values = ids.map(percentile);

    expect(Math.abs(sampled / 100 - 10)).toBeLessThan(1);
    expect(Math.min(...values)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...values)).toBeLessThan(100);
  });
});

describe('reports and the auto-rollback rule', () => {
  const rollout: Rollout = {
    ...emptyRollout('iris'),
    canary: { version: '3', percent: 10 },
    shadow: { version: '3', percent: 100 },
    autoRollback: { maxFailedRowRate: 0.01, minAgreement: 0.95, minRows: 1000 },
    revision: 2,
    updatedAt: NOW.toISOString(),
  };
  const counters = (fields: Record<string, number>): Record<string, string> =>
    Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, String(v)]));

  it('when counters are read, then rates, agreement and medians come out of them', () => {
    const report = rolloutReport(
      rollout,
      counters({
        'shadow:rows': 2000,
        'shadow:agree': 1900,
        'shadow:absdiff': 40,
        'shadow:failed:shadow': 3,
        [`shadow:us:default:${bucketOf(10)}`]: 2000,
        'canary:canary:rows': 500,
        'canary:canary:failed': 5,
        'canary:default:rows': 4500,
        'canary:canary:jobs': 5,
        [`canary:canary:jobms:${bucketOf(40)}`]: 5,
      }),
    );

    expect(report.shadow).toMatchObject({
      rowsCompared: 2000,
      agreement: 0.95,
      meanAbsDifference: 0.02,
      failedRows: { default: 0, shadow: 3 },
      p50MsPerRow: { shadow: null },
    });
    expect(report.shadow?.p50MsPerRow.default).toBeCloseTo(0.01, 2);
    expect(report.canary).toMatchObject({
      rows: { canary: 500, default: 4500 },
      failedRowRate: { canary: 0.01, default: 0 },
      jobs: { canary: 5, default: 0 },
    });
    expect(report.canary?.p50JobMs.canary).toBeGreaterThan(40 / 1.2);
    expect(report.canary?.p50JobMs.canary).toBeLessThan(40 * 1.2);
  });

  it('when the canary fails more rows than allowed after minRows, then the rule says why; before minRows it waits', () => {
    const failing = rolloutReport(rollout, counters({ 'canary:canary:rows': 1000, 'canary:canary:failed': 20 }));
    const early = rolloutReport(rollout, counters({ 'canary:canary:rows': 999, 'canary:canary:failed': 999 }));

    expect(autoRollbackReason(rollout, failing)).toBe('canary version 3 failed 2.00 % of 1000 rows (more than maxFailedRowRate 0.01)');
    expect(autoRollbackReason(rollout, early)).toBeNull();
  });

  it('when the shadow agrees less than minAgreement after minRows, then the rule says why', () => {
    const report = rolloutReport(rollout, counters({ 'shadow:rows': 1000, 'shadow:agree': 900 }));

    expect(autoRollbackReason(rollout, report)).toBe(
      'shadow version 3 agreed with the default on 90.00 % of 1000 rows (less than minAgreement 0.95)',
    );
    expect(autoRollbackReason({ ...rollout, autoRollback: null }, report)).toBeNull();
  });

  it('when a histogram is empty or weighted, then its median is null or the heavy bucket', () => {
    expect(histogramMedian(new Map())).toBeNull();
    expect(
      histogramMedian(
        new Map([
          [bucketOf(100), 10],
          [bucketOf(1000), 1],
        ]),
      ),
    ).toBeCloseTo(100, -1);
  });
});

describe('comparing default and shadow outputs', () => {
  it('when rows are compared, then labels, differences and failed rows (NaN) are counted per side', () => {
    const primary = { width: 2, data: new Float32Array([0.9, 0.1, 0.4, 0.6, Number.NaN, Number.NaN, 0.5, 0.5]) };
    const shadow = { width: 2, data: new Float32Array([0.8, 0.2, 0.7, 0.3, 0.1, 0.9, Number.NaN, Number.NaN]) };

    const comparison = compareOutputs(primary, shadow, true);

    expect(comparison).toMatchObject({ rows: 2, agree: 1, failedDefault: 1, failedShadow: 1 });
    expect(comparison.absDiff).toBeCloseTo(0.1 + 0.3, 5);
  });
});
