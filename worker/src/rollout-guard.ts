import type { RedisClient } from '@onnx-batch/shared';
import {
  autoRollbackReason,
  nextRollout,
  qualityMetrics,
  qualityRollbackReason,
  readRolloutReport,
  RolloutError,
  servingDefault,
  sumCounters,
  type Config,
  type Logger,
  type ModelEntry,
  type ModelRepository,
  type QualityArm,
  type QualityStore,
  type RedisKeys,
  type RolloutStore,
} from '@onnx-batch/shared';
import type { Rollout } from '@onnx-batch/contracts';

/** The actor an automatic rollback is recorded under in the audit trail. */
export const AUTO_ROLLBACK_ACTOR = { tenant: 'system', keyId: 'auto-rollback' } as const;

/** What watching a canary's realised quality needs: the quality counters and QUALITY_* settings. */
export interface QualityWatch {
  quality: Pick<QualityStore, 'buckets'>;
  config: Pick<Config, 'QUALITY_MIN_LABELS' | 'QUALITY_ALERT_MARGIN' | 'QUALITY_GUARD_WINDOW_HOURS'>;
  now?: () => number;
}

/**
 * Rolls a rollout back by itself when its canary or shadow breaches the rollout's
 * `autoRollback` rule, or when a canary's labelled quality is worse than the default's over the
 * same window (docs/models-in-production.md), and records why. Run by the worker that holds the
 * recovery sweep's lock, so one process judges at a time.
 */
export class RolloutGuard {
  constructor(
    private readonly repository: ModelRepository,
    private readonly rollouts: RolloutStore,
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
    private readonly logger: Logger,
    private readonly watch: QualityWatch | null = null,
  ) {}

  async check(): Promise<void> {
    for (const entry of this.repository.list()) {
      const rollout = await this.rollouts.get(entry.name);
      if (!rollout.canary && !rollout.shadow) continue;
      const reason =
        (rollout.autoRollback ? autoRollbackReason(rollout, await readRolloutReport(this.redis, this.keys, rollout)) : null) ??
        (await this.qualityReason(entry, rollout));
      if (!reason) continue;
      try {
        const next = await this.rollouts.update(entry.name, 'auto-rollback', AUTO_ROLLBACK_ACTOR, reason, (current) => {
          // Judged on this revision's report: a rollout changed meanwhile is judged afresh next time.
          if (current.revision !== rollout.revision) throw new RolloutError('changed while being judged');
          return nextRollout(current, 'auto-rollback', servingDefault(entry, current));
        });
        this.logger.warn('rollout rolled back by its guard', { model: entry.name, reason, default: next.default });
      } catch (error) {
        if (!(error instanceof RolloutError)) throw error;
      }
    }
  }

  /**
   * Why a canary's realised quality calls for a rollback, or null: the hour buckets of the canary
   * arm (its version) and the default arm (the serving default) over the same window — the last
   * QUALITY_GUARD_WINDOW_HOURS, from when the rollout last changed at the earliest.
   */
  private async qualityReason(entry: ModelEntry, rollout: Rollout): Promise<string | null> {
    const canary = rollout.canary;
    if (!this.watch || !canary) return null;
    const byDefault = servingDefault(entry, rollout);
    const manifest = entry.versions.find((v) => v.manifest.version === byDefault)?.manifest;
    const kind = manifest?.result.kind;
    if (!manifest || (kind !== 'classification' && kind !== 'regression')) return null;
    const { config } = this.watch;
    const to = (this.watch.now ?? Date.now)();
    const since = Date.parse(rollout.updatedAt);
    const from = Math.max(to - config.QUALITY_GUARD_WINDOW_HOURS * 3_600_000, Number.isNaN(since) ? 0 : since);
    const labels = manifest.result.labels ?? [];
    const metricsOf = async (version: string, arm: QualityArm) => {
      const buckets = await this.watch?.quality.buckets(entry.name, version, arm, 'h', from, to + 1);
      return qualityMetrics(kind, sumCounters((buckets ?? []).map((b) => b.sums)), labels);
    };
    const [canaryMetrics, defaultMetrics] = await Promise.all([metricsOf(canary.version, 'canary'), metricsOf(byDefault, 'default')]);
    return qualityRollbackReason(
      { version: canary.version, metrics: canaryMetrics },
      { version: byDefault, metrics: defaultMetrics },
      {
        minLabels: config.QUALITY_MIN_LABELS,
        margin: config.QUALITY_ALERT_MARGIN,
        window: `hour buckets from ${new Date(from).toISOString().slice(0, 13)}:00Z`,
      },
    );
  }
}
