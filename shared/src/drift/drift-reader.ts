import type { RedisClient } from '../redis';
import type { RedisKeys } from '../redis-keys';
import type { LoadedBaseline } from './baseline';
import { DRIFT_WINDOWS, windowBuckets, type DriftWindow } from './drift-buckets';
import { driftReport, type DriftReport, type DriftSettings, type DriftWindowCounts } from './drift-report';

/**
 * The summed counts of a version's buckets over a window ending now: one pipeline of HGETALL
 * (every bucket of a model is in one Redis Cluster slot), at most 83 buckets for 24 hours.
 */
export async function readDriftCounts(
  redis: RedisClient,
  keys: RedisKeys,
  model: string,
  version: string,
  digest: string,
  window: DriftWindow,
  nowMs: number = Date.now(),
): Promise<DriftWindowCounts> {
  const { from, buckets } = windowBuckets(DRIFT_WINDOWS[window], nowMs);
  const pipeline = redis.pipeline();
  for (const b of buckets) pipeline.hgetall(keys.driftBucket(model, version, digest, b.unit, b.index));
  const results = (await pipeline.exec()) ?? [];
  const sums = new Map<string, number>();
  for (const [error, hash] of results) {
    if (error) throw error;
    for (const [field, value] of Object.entries(hash as Record<string, string>)) sums.set(field, (sums.get(field) ?? 0) + Number(value));
  }
  return { window, from, to: nowMs, sums };
}

/** A version's drift report over a window ending now (readDriftCounts, then driftReport). */
export async function readDriftReport(
  redis: RedisClient,
  keys: RedisKeys,
  model: string,
  version: string,
  baseline: LoadedBaseline,
  window: DriftWindow,
  settings: DriftSettings,
  nowMs: number = Date.now(),
): Promise<DriftReport> {
  return driftReport(
    model,
    version,
    baseline,
    await readDriftCounts(redis, keys, model, version, baseline.digest, window, nowMs),
    settings,
  );
}
