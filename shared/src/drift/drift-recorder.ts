import type { RedisClient } from '../redis';
import type { RedisKeys } from '../redis-keys';
import type { LoadedBaseline } from './baseline';
import { bucketExpiry, hourOfMinute, minuteOf, type DriftBucketRef } from './drift-buckets';
import { countLayout } from './drift-counts';

export interface DriftRecorderOptions {
  /** How long a bucket is kept after it ends (DRIFT_RETENTION_HOURS × 3600). */
  retentionSeconds: number;
  /** How often the counts added up in memory are written (one pipeline). */
  flushEveryMs?: number;
  onError?: (error: unknown) => void;
  /** The clock (tests move it). */
  now?: () => number;
}

interface PendingBucket {
  model: string;
  version: string;
  digest: string;
  minute: number;
  fields: readonly string[];
  sums: Float64Array;
}

/**
 * A worker's drift counts, added up in memory per model version and minute and written to Redis
 * once a second: one HINCRBY per non-zero bin into the minute's hash and the hour's hash, each
 * with its expiry (drift-buckets.ts). The hot path costs a few additions per bin and chunk. Counts
 * of a flush that fails (Redis away) are dropped, not kept without bound.
 */
export class DriftRecorder {
  private pending = new Map<string, PendingBucket>();
  private readonly timer: NodeJS.Timeout;
  private readonly now: () => number;

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
    private readonly options: DriftRecorderOptions,
  ) {
    this.now = options.now ?? Date.now;
    this.timer = setInterval(() => {
      this.flush().catch(options.onError ?? (() => undefined));
    }, options.flushEveryMs ?? 1000);
    this.timer.unref();
  }

  /**
   * Adds one chunk's counts (countChunk's layout for `baseline`) to the current minute. Answers
   * false, adding nothing, when they do not fit the layout.
   */
  add(model: string, version: string, baseline: LoadedBaseline, counts: ArrayLike<number>): boolean {
    const fields = countLayout(baseline).fields;
    if (counts.length !== fields.length) return false;
    const minute = minuteOf(this.now());
    const key = this.keys.driftBucket(model, version, baseline.digest, 'm', minute);
    let bucket = this.pending.get(key);
    if (!bucket)
      this.pending.set(key, (bucket = { model, version, digest: baseline.digest, minute, fields, sums: new Float64Array(fields.length) }));
    const sums = bucket.sums;
    for (let i = 0; i < counts.length; i++) sums[i] = (sums[i] as number) + (counts[i] as number);
    return true;
  }

  /** Writes what was added since the last flush. */
  async flush(): Promise<void> {
    if (this.pending.size === 0) return;
    const batch = this.pending;
    this.pending = new Map();
    const nowSeconds = Math.floor(this.now() / 1000);
    // One pipeline per model: a model's buckets share a slot (`{<model>}`), so each pipeline stays on one node of a cluster.
    const pipelines = new Map<string, ReturnType<RedisClient['pipeline']>>();
    let commands = 0;
    for (const bucket of batch.values()) {
      let pipeline = pipelines.get(bucket.model);
      if (!pipeline) pipelines.set(bucket.model, (pipeline = this.redis.pipeline()));
      const targets: [DriftBucketRef, string][] = (
        [
          { unit: 'm', index: bucket.minute },
          { unit: 'h', index: hourOfMinute(bucket.minute) },
        ] as DriftBucketRef[]
      ).map((ref) => [ref, this.keys.driftBucket(bucket.model, bucket.version, bucket.digest, ref.unit, ref.index)]);
      for (const [ref, key] of targets) {
        const expiry = bucketExpiry(ref, this.options.retentionSeconds);
        if (expiry <= nowSeconds) continue; // already past its retention: nothing to keep
        bucket.sums.forEach((n, i) => {
          if (n > 0) pipeline?.hincrby(key, bucket.fields[i] as string, n);
        });
        pipeline.expireat(key, expiry);
        commands++;
      }
    }
    if (commands === 0) return;
    const results = (await Promise.all([...pipelines.values()].map((p) => p.exec()))).flatMap((r) => r ?? []);
    const failed = results.find(([error]) => error)?.[0];
    if (failed) throw failed;
  }

  /** Stops the timer and writes what is left. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }
}
