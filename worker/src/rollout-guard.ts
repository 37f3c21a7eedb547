import type { RedisClient } from '@onnx-batch/shared';
import {
  autoRollbackReason,
  nextRollout,
  readRolloutReport,
  RolloutError,
  servingDefault,
  type Logger,
  type ModelRepository,
  type RedisKeys,
  type RolloutStore,
} from '@onnx-batch/shared';

/** The actor an automatic rollback is recorded under in the audit trail. */
export const AUTO_ROLLBACK_ACTOR = { tenant: 'system', keyId: 'auto-rollback' } as const;

/**
 * Rolls a rollout back by itself when its canary or shadow breaches the rollout's
 * `autoRollback` rule (docs/models-in-production.md), and records why. Run by the worker that
 * holds the recovery sweep's lock, so one process judges at a time.
 */
export class RolloutGuard {
  constructor(
    private readonly repository: ModelRepository,
    private readonly rollouts: RolloutStore,
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
    private readonly logger: Logger,
  ) {}

  async check(): Promise<void> {
    for (const entry of this.repository.list()) {
      const rollout = await this.rollouts.get(entry.name);
      if (!rollout.autoRollback || (!rollout.canary && !rollout.shadow)) continue;
      const reason = autoRollbackReason(rollout, await readRolloutReport(this.redis, this.keys, rollout));
      if (!reason) continue;
      try {
        const next = await this.rollouts.update(entry.name, 'auto-rollback', AUTO_ROLLBACK_ACTOR, reason, (current) => {
          // Judged on this revision's report: a rollout changed meanwhile is judged afresh next time.
          if (current.revision !== rollout.revision) throw new RolloutError('changed while being judged');
          return nextRollout(current, 'auto-rollback', servingDefault(entry, current));
        });
        this.logger.warn('rollout rolled back by its autoRollback rule', { model: entry.name, reason, default: next.default });
      } catch (error) {
        if (!(error instanceof RolloutError)) throw error;
      }
    }
  }
}
