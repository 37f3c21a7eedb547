import type { Redis } from 'ioredis';
import { qualityMetrics, QualityStore, RedisKeys, type JobQualityPointer, type ResolvedLabel } from '@onnx-batch/shared';
import { dropPrefix, newRedis } from '../helpers/env';

// The prediction log and quality counters on a real Redis, driven directly: a chunk kept twice
// (a worker killed between keeping it and recording its results re-runs it) counts once, labels
// racing each other on the same rows count once each way, and a regression model's errors add up.

const HOUR = 3_600_000;

describe('QualityStore against a real Redis', () => {
  let redis: Redis;
  let keys: RedisKeys;
  let prefix: string;
  // Real time: bucket expiries are set from it, and a fixed date would one day lie in the past.
  let now = Date.now();
  let store: QualityStore;

  beforeAll(() => {
    redis = newRedis();
    prefix = `test-quality-${process.pid}-${Date.now()}`;
    keys = new RedisKeys(prefix);
    store = new QualityStore(redis, keys, { retentionSeconds: 2 * 86_400, indexIds: true, now: () => now });
  });

  afterAll(async () => {
    await dropPrefix(redis, prefix);
    await redis.quit();
  });

  const pointer = (jobId: string, kind: 'classification' | 'regression' = 'classification'): JobQualityPointer => ({
    jobId,
    tenant: 'acme',
    model: kind === 'classification' ? 'toy' : 'houses',
    version: '1',
    arm: 'default',
    kind,
    labels: kind === 'classification' ? ['no', 'yes'] : [],
    total: 4,
    chunkSize: 2,
    chunks: 2,
  });

  it('when a chunk is kept twice (a re-run after a crash), then its predictions count once', async () => {
    const job = pointer('00000000-0000-4000-8000-000000000001');
    const values = new Float32Array([0.9, 0.1, 0.2, 0.8]);
    await store.recordChunk({ pointer: job, chunk: 0, rows: 2, values, width: 2, ids: ['a', 'b'] });
    await store.recordChunk({ pointer: job, chunk: 0, rows: 2, values, width: 2, ids: ['a', 'b'] });
    const counters = await store.jobCounters(job);
    expect(counters.get('p')).toBe(2);
    expect(counters.get('pc:0')).toBe(1);
    expect(counters.get('pc:1')).toBe(1);
    const [bucket] = await store.buckets('toy', '1', 'default', 'h', now, now + 1);
    expect(bucket?.sums.get('p')).toBe(2);
  });

  it('when two requests give the same rows different labels at once, then each row ends with one label counted once', async () => {
    const job = pointer('00000000-0000-4000-8000-000000000002');
    await store.recordChunk({ pointer: job, chunk: 0, rows: 2, values: new Float32Array([0.9, 0.1, 0.2, 0.8]), width: 2, ids: null });
    const yes: ResolvedLabel[] = [0, 1].map((row) => ({ row, truth: 1, line: row + 1 }));
    const no: ResolvedLabel[] = [0, 1].map((row) => ({ row, truth: 0, line: row + 1 }));
    await Promise.all(Array.from({ length: 10 }, (_, i) => store.applyLabels(job, i % 2 === 0 ? yes : no)));
    const metrics = qualityMetrics('classification', await store.jobCounters(job), ['no', 'yes']);
    expect(metrics.labelledRows).toBe(2);
    if (metrics.kind !== 'classification') throw new Error('a classifier');
    expect(metrics.confusion.flat().reduce((a, b) => a + b, 0)).toBe(2);
    // Whichever request came last, its label is the one counted for both rows.
    const last = metrics.confusion[0]?.[0] === 1 ? 0 : 1;
    expect(metrics.confusion[last]?.reduce((a, b) => a + b, 0)).toBe(2);
  });

  it('when a regression chunk is labelled, then MAE, RMSE, R² and bias follow from the errors; a label of 0 is a label', async () => {
    const job = pointer('00000000-0000-4000-8000-000000000003', 'regression');
    const predicted = [2, 4, 7, Number.NaN];
    await store.recordChunk({ pointer: job, chunk: 0, rows: 2, values: new Float32Array(predicted.slice(0, 2)), width: 1, ids: null });
    await store.recordChunk({ pointer: job, chunk: 1, rows: 2, values: new Float32Array(predicted.slice(2)), width: 1, ids: null });
    const truths = [0, 5, 6, 1];
    const outcome = await store.applyLabels(
      job,
      truths.map((truth, row) => ({ row, truth, line: row + 1 })),
    );
    expect(outcome).toEqual({ added: 3, replaced: 0, unchanged: 0, notPredicted: 1 });
    // The label 0 is stored (as −0) and found again: the same label twice is unchanged.
    expect(await store.applyLabels(job, [{ row: 0, truth: 0, line: 1 }])).toMatchObject({ unchanged: 1 });
    const metrics = qualityMetrics('regression', await store.jobCounters(job), []);
    const errors = [2 - 0, 4 - 5, 7 - 6];
    const y = [0, 5, 6];
    const mean = y.reduce((a, b) => a + b, 0) / 3;
    expect(metrics).toMatchObject({ kind: 'regression', predictedRows: 3, labelledRows: 3 });
    if (metrics.kind !== 'regression') throw new Error('regression');
    expect(metrics.mae).toBeCloseTo(errors.reduce((a, e) => a + Math.abs(e), 0) / 3, 12);
    expect(metrics.rmse).toBeCloseTo(Math.sqrt(errors.reduce((a, e) => a + e * e, 0) / 3), 12);
    expect(metrics.bias).toBeCloseTo(errors.reduce((a, e) => a + e, 0) / 3, 12);
    expect(metrics.r2).toBeCloseTo(1 - errors.reduce((a, e) => a + e * e, 0) / y.reduce((a, v) => a + (v - mean) ** 2, 0), 12);
  });

  it('when predictions were made in another hour, then their labels count in that hour, whenever they arrive', async () => {
    const job = pointer('00000000-0000-4000-8000-000000000004');
    const madeAt = now;
    await store.recordChunk({ pointer: job, chunk: 0, rows: 2, values: new Float32Array([0.6, 0.4, 0.3, 0.7]), width: 2, ids: ['x', 'y'] });
    now += 5 * HOUR;
    await store.applyLabels(job, [{ row: 1, truth: 1, line: 1 }]);
    const buckets = await store.buckets('toy', '1', 'default', 'h', madeAt, now + 1);
    const labelled = buckets.map((b) => b.sums.get('n') ?? 0);
    expect(labelled[0]).toBeGreaterThanOrEqual(1);
    expect(labelled.slice(1).every((n) => n === 0)).toBe(true);
    // The id index still finds the row days later, within the retention.
    const [found] = await store.findIds('acme', ['y']);
    expect(found).toEqual([job.jobId, 0, 1]);
    now = madeAt;
  });
});
