/**
 * Time buckets of production drift counts. Workers add every count to the bucket of its minute
 * and to the bucket of its hour; a window is read from whole hours where it covers them and from
 * minutes for the rest, so a 24-hour window reads at most 83 buckets instead of 1440.
 *
 * A bucket is named by its index: minutes (or hours) since the Unix epoch. It expires
 * DRIFT_RETENTION_HOURS after it ends.
 */
export type DriftUnit = 'm' | 'h';

const MINUTE_MS = 60_000;
const MINUTES_PER_HOUR = 60;

/** The windows the drift API answers, in minutes. */
export const DRIFT_WINDOWS = { '15m': 15, '1h': 60, '24h': 1440 } as const;
export type DriftWindow = keyof typeof DRIFT_WINDOWS;

export interface DriftBucketRef {
  unit: DriftUnit;
  index: number;
}

/** The minute bucket holding time `ms`. */
export function minuteOf(ms: number): number {
  return Math.floor(ms / MINUTE_MS);
}

/** The hour bucket holding minute bucket `minute`. */
export function hourOfMinute(minute: number): number {
  return Math.floor(minute / MINUTES_PER_HOUR);
}

/** When a bucket ends, in ms since the epoch. */
export function bucketEnd(bucket: DriftBucketRef): number {
  return (bucket.index + 1) * (bucket.unit === 'm' ? 1 : MINUTES_PER_HOUR) * MINUTE_MS;
}

/** When a bucket expires (EXPIREAT, seconds since the epoch): `retentionSeconds` after it ends. */
export function bucketExpiry(bucket: DriftBucketRef, retentionSeconds: number): number {
  return Math.floor(bucketEnd(bucket) / 1000) + Math.ceil(retentionSeconds);
}

/**
 * The buckets holding the last `minutes` minutes up to `nowMs`: the minute of `nowMs` and the
 * `minutes - 1` before it. Hours that start inside the window come from their hour bucket (an
 * hour bucket holds nothing later than now, so the current hour counts as whole); the minutes
 * before the first of them come from minute buckets. `from` is the start of the oldest minute.
 */
export function windowBuckets(minutes: number, nowMs: number): { from: number; buckets: DriftBucketRef[] } {
  if (!Number.isInteger(minutes) || minutes < 1) throw new RangeError(`a window is a whole number of minutes ≥ 1, not ${minutes}`);
  const last = minuteOf(nowMs);
  const first = last - minutes + 1;
  const firstHour = Math.ceil(first / MINUTES_PER_HOUR);
  const lastHour = hourOfMinute(last);
  const buckets: DriftBucketRef[] = [];
  const lastMinute = firstHour <= lastHour ? firstHour * MINUTES_PER_HOUR - 1 : last;
  for (let m = first; m <= lastMinute; m++) buckets.push({ unit: 'm', index: m });
  for (let h = firstHour; h <= lastHour; h++) buckets.push({ unit: 'h', index: h });
  return { from: first * MINUTE_MS, buckets };
}
