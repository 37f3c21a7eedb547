import type { RedisClient } from '../redis';
import type { RedisKeys } from '../redis-keys';
import type { Arm, QualityMetrics, Rollout, RolloutReport } from '@onnx-batch/contracts';

/**
 * Canary and shadow statistics of one rollout revision: counters in a Redis hash that workers
 * add to (batched per second, see RolloutStatsRecorder) and the API and the auto-rollback guard
 * read as a report. Latencies are kept as histograms with four buckets per doubling, so a
 * median is known to within ±9 %.
 *
 *   shadow:rows, shadow:agree, shadow:absdiff     rows compared, labels agreeing, Σ mean |Δp| (or |Δvalue|)
 *   shadow:failed:<side>                          rows that failed on the default / the shadow
 *   shadow:us:<side>:<bucket>                     rows by inference µs per row, per side
 *   canary:<arm>:jobs, :rows, :failed             per arm (default, canary)
 *   canary:<arm>:us:<bucket>, canary:<arm>:jobms:<bucket>   rows by inference µs per row; jobs by duration ms
 */

const BUCKETS_PER_DOUBLING = 4;
/** Statistics of a revision are kept this long after their last update. */
const STATS_TTL_SECONDS = 30 * 24 * 3600;

export function bucketOf(value: number): number {
  return value <= 1 ? 0 : Math.floor(Math.log2(value) * BUCKETS_PER_DOUBLING);
}

/** The middle of a bucket (geometric). */
function bucketValue(bucket: number): number {
  return 2 ** ((bucket + 0.5) / BUCKETS_PER_DOUBLING);
}

/** The weighted median of a histogram given as `bucket → weight`, or null when empty. */
export function histogramMedian(histogram: ReadonlyMap<number, number>): number | null {
  const total = [...histogram.values()].reduce((a, b) => a + b, 0);
  if (total <= 0) return null;
  let seen = 0;
  for (const bucket of [...histogram.keys()].sort((a, b) => a - b)) {
    seen += histogram.get(bucket) ?? 0;
    if (seen >= total / 2) return bucketValue(bucket);
  }
  return null;
}

/** Reads a revision's counters and turns them into the report the API serves and the guard judges. */
export async function readRolloutReport(redis: RedisClient, keys: RedisKeys, rollout: Rollout): Promise<RolloutReport> {
  const raw = rollout.revision > 0 ? await redis.hgetall(keys.rolloutStats(rollout.model, rollout.revision)) : {};
  return rolloutReport(rollout, raw);
}

/** The report of `rollout` from its revision's counters (pure; see readRolloutReport). */
export function rolloutReport(rollout: Rollout, raw: Record<string, string>): RolloutReport {
  const n = (field: string): number => Number(raw[field] ?? 0);
  const histogram = (prefix: string): Map<number, number> => {
    const out = new Map<number, number>();
    for (const [field, value] of Object.entries(raw))
      if (field.startsWith(prefix)) out.set(Number(field.slice(prefix.length)), Number(value));
    return out;
  };
  const ms = (prefix: string): number | null => {
    const us = histogramMedian(histogram(prefix));
    return us === null ? null : round(us / 1000);
  };
  const shadow = rollout.shadow
    ? {
        version: rollout.shadow.version,
        rowsCompared: n('shadow:rows'),
        agreement: n('shadow:rows') > 0 && raw['shadow:agree'] !== undefined ? round(n('shadow:agree') / n('shadow:rows')) : null,
        meanAbsDifference: n('shadow:rows') > 0 ? round(n('shadow:absdiff') / n('shadow:rows')) : null,
        failedRows: { default: n('shadow:failed:default'), shadow: n('shadow:failed:shadow') },
        p50MsPerRow: { default: ms('shadow:us:default:'), shadow: ms('shadow:us:shadow:') },
      }
    : null;
  const arms: Arm[] = ['default', 'canary'];
  const perArm = <T>(f: (arm: Arm) => T): Record<Arm, T> => Object.fromEntries(arms.map((a) => [a, f(a)])) as Record<Arm, T>;
  const canary = rollout.canary
    ? {
        version: rollout.canary.version,
        percent: rollout.canary.percent,
        jobs: perArm((a) => n(`canary:${a}:jobs`)),
        rows: perArm((a) => n(`canary:${a}:rows`)),
        failedRowRate: perArm((a) => (n(`canary:${a}:rows`) > 0 ? round(n(`canary:${a}:failed`) / n(`canary:${a}:rows`)) : null)),
        p50MsPerRow: perArm((a) => ms(`canary:${a}:us:`)),
        p50JobMs: perArm((a) => {
          const median = histogramMedian(histogram(`canary:${a}:jobms:`));
          return median === null ? null : round(median);
        }),
      }
    : null;
  return { revision: rollout.revision, since: rollout.updatedAt, shadow, canary };
}

function round(x: number): number {
  return Number(x.toPrecision(6));
}

/** Why the guard rolls back, or null when the rollout may stay. */
export function autoRollbackReason(rollout: Rollout, report: RolloutReport): string | null {
  const rule = rollout.autoRollback;
  if (!rule) return null;
  const canary = report.canary;
  if (canary && rule.maxFailedRowRate !== undefined && canary.rows.canary >= rule.minRows) {
    const rate = canary.failedRowRate.canary ?? 0;
    if (rate > rule.maxFailedRowRate) {
      return (
        `canary version ${canary.version} failed ${(rate * 100).toFixed(2)} % of ${canary.rows.canary} rows (more than ` +
        `maxFailedRowRate ${rule.maxFailedRowRate})`
      );
    }
  }
  const shadow = report.shadow;
  if (
    shadow &&
    rule.minAgreement !== undefined &&
    shadow.rowsCompared >= rule.minRows &&
    shadow.agreement !== null &&
    shadow.agreement < rule.minAgreement
  ) {
    return (
      `shadow version ${shadow.version} agreed with the default on ${(shadow.agreement * 100).toFixed(2)} % of ` +
      `${shadow.rowsCompared} rows (less than minAgreement ${rule.minAgreement})`
    );
  }
  return null;
}

/** Realised quality of one arm of a canary over the guard's window (quality counters of its labelled rows). */
export interface ArmQuality {
  version: string;
  metrics: QualityMetrics;
}

export interface QualityRule {
  /** QUALITY_MIN_LABELS: labelled rows each arm needs before it is judged. */
  minLabels: number;
  /** QUALITY_ALERT_MARGIN: absolute for accuracy, relative for RMSE. */
  margin: number;
  /** The window, in words, for the reason. */
  window: string;
}

/**
 * Why the guard rolls a canary back for its realised quality, or null: with at least
 * `minLabels` labelled rows on both arms of the same window, the canary's accuracy is lower than
 * the default's by more than `margin` (or its RMSE higher by more than `margin` of the default's).
 */
export function qualityRollbackReason(canary: ArmQuality, byDefault: ArmQuality, rule: QualityRule): string | null {
  const c = canary.metrics;
  const d = byDefault.metrics;
  if (c.labelledRows < rule.minLabels || d.labelledRows < rule.minLabels) return null;
  const figures = (name: string, x: number, y: number): string =>
    `canary version ${canary.version}'s labelled ${name} ${fmt(x)} on ${c.labelledRows} rows against the default version ` +
    `${byDefault.version}'s ${fmt(y)} on ${d.labelledRows} rows`;
  if (c.kind === 'classification' && d.kind === 'classification') {
    if (c.accuracy === null || d.accuracy === null || !(c.accuracy < d.accuracy - rule.margin)) return null;
    return (
      `${figures('accuracy', c.accuracy, d.accuracy)} (${rule.window}): lower by ${fmt(d.accuracy - c.accuracy)}, more than ` +
      `QUALITY_ALERT_MARGIN ${rule.margin}`
    );
  }
  if (c.kind === 'regression' && d.kind === 'regression') {
    if (c.rmse === null || d.rmse === null || !(c.rmse > d.rmse * (1 + rule.margin))) return null;
    return (
      `${figures('RMSE', c.rmse, d.rmse)} (${rule.window}): higher by ${fmt(((c.rmse - d.rmse) / d.rmse) * 100)} %, more than ` +
      `QUALITY_ALERT_MARGIN ${rule.margin} (relative)`
    );
  }
  return null;
}

function fmt(x: number): string {
  return Number(x.toPrecision(4)).toString();
}

/**
 * A worker's counters, added up in memory and written to Redis once a second (one pipeline per hash),
 * so comparing and counting costs the hot path a few additions per chunk.
 */
export class RolloutStatsRecorder {
  private pending = new Map<string, Map<string, number>>();
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
    flushEveryMs = 1000,
    onError: (error: unknown) => void = () => undefined,
  ) {
    this.timer = setInterval(() => {
      this.flush().catch(onError);
    }, flushEveryMs);
    this.timer.unref();
  }

  add(model: string, revision: number, field: string, by: number): void {
    const key = this.keys.rolloutStats(model, revision);
    let fields = this.pending.get(key);
    if (!fields) this.pending.set(key, (fields = new Map<string, number>()));
    fields.set(field, (fields.get(field) ?? 0) + by);
  }

  async flush(): Promise<void> {
    if (this.pending.size === 0) return;
    const batch = this.pending;
    this.pending = new Map();
    // One pipeline per hash: hashes of different models live in different Redis Cluster slots.
    await Promise.all(
      [...batch].map(async ([key, fields]) => {
        const pipeline = this.redis.pipeline();
        for (const [field, by] of fields) {
          if (Number.isInteger(by)) pipeline.hincrby(key, field, by);
          else pipeline.hincrbyfloat(key, field, by);
        }
        pipeline.expire(key, STATS_TTL_SECONDS);
        await pipeline.exec();
      }),
    );
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.flush();
  }
}
