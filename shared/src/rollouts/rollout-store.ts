import type { RedisClient } from '../redis';
import { ROLLOUT_UPDATE } from '../lua/rollout-update';
import type { RedisKeys } from '../redis-keys';
import type { QualityGateOutcome, Rollout, RolloutAction, RolloutActor, RolloutAuditEntry } from '@onnx-batch/contracts';
import { emptyRollout, RolloutError, RolloutPreconditionError } from './rollout';

/** How long a cached rollout is trusted without a change message (a missed message heals within it). */
const CACHE_MS = 5000;
/** Audit entries kept per model (the stream is trimmed approximately beyond it). */
export const AUDIT_MAX_LEN = 1000;
/** Concurrent changes lost to another writer before a change gives up. */
const UPDATE_ATTEMPTS = 5;

export interface UpdateOptions {
  /** Revisions the caller read (If-Match); the change is refused unless the current one is among them. Absent: any. */
  ifMatch?: readonly number[] | null;
  /** The quality gate's outcome when the change starts a canary, kept in the audit entry. */
  gate?: QualityGateOutcome | null;
}

type ScriptedRedis = RedisClient & {
  rolloutUpdate(rollout: string, audit: string, ...argv: (string | number)[]): Promise<number>;
};

/**
 * Rollouts in Redis, shared by every API replica and worker: one JSON value per model, changed
 * only by a compare-and-set script that also appends to the model's audit stream and announces
 * the change. Reads are served from a per-process cache that the announcement invalidates, so
 * routing a job costs no round trip and every replica routes alike within milliseconds.
 */
export class RolloutStore {
  private readonly redis: ScriptedRedis;
  private readonly cache = new Map<string, { rollout: Rollout; at: number }>();

  constructor(
    redis: RedisClient,
    private readonly keys: RedisKeys,
    /** A subscriber connection (shared with other channels) that tells this process of changes. */
    subscriber?: RedisClient,
  ) {
    redis.defineCommand('rolloutUpdate', { numberOfKeys: 2, lua: ROLLOUT_UPDATE });
    this.redis = redis as ScriptedRedis;
    if (subscriber) {
      const channel = keys.rolloutChannel();
      subscriber.on('message', (from: string, model: string) => {
        if (from === channel) this.cache.delete(model);
      });
      // A reconnected subscriber may have missed changes: forget everything.
      subscriber.on('ready', () => this.cache.clear());
      void subscriber.subscribe(channel).catch(() => undefined);
    }
  }

  /** The model's rollout (an empty one when none was ever set). */
  async get(model: string): Promise<Rollout> {
    const cached = this.cache.get(model);
    if (cached && Date.now() - cached.at < CACHE_MS) return cached.rollout;
    const text = await this.redis.get(this.keys.rollout(model));
    const rollout = text ? (JSON.parse(text) as Rollout) : emptyRollout(model);
    this.cache.set(model, { rollout, at: Date.now() });
    return rollout;
  }

  /** The model's rollout as Redis holds it now (not this process's cached copy): what a change is checked against. */
  async fresh(model: string): Promise<Rollout> {
    this.cache.delete(model);
    return this.get(model);
  }

  /**
   * Changes a rollout atomically: `change` computes the new one from the current one, which is
   * written only if nobody changed it meanwhile (else it is computed again), with its audit entry.
   * With `ifMatch` (If-Match: the revisions the caller read), a current revision outside it throws
   * RolloutPreconditionError: the compare is the script's own, so it is atomic with the write.
   */
  async update(
    model: string,
    action: RolloutAction,
    actor: RolloutActor,
    reason: string | null,
    change: (current: Rollout) => Rollout,
    options: UpdateOptions = {},
  ): Promise<Rollout> {
    for (let attempt = 0; attempt < UPDATE_ATTEMPTS; attempt++) {
      const current = await this.fresh(model);
      if (options.ifMatch && !options.ifMatch.includes(current.revision)) throw new RolloutPreconditionError(current.revision);
      const next = change(current);
      const written = await this.redis.rolloutUpdate(
        this.keys.rollout(model),
        this.keys.rolloutAudit(model),
        current.revision,
        JSON.stringify(next),
        this.keys.rolloutChannel(),
        model,
        AUDIT_MAX_LEN,
        'at',
        next.updatedAt,
        'action',
        action,
        'tenant',
        actor.tenant,
        'keyId',
        actor.keyId,
        'from',
        JSON.stringify(current),
        'to',
        JSON.stringify(next),
        'reason',
        reason ?? '',
        'gate',
        options.gate ? JSON.stringify(options.gate) : '',
      );
      this.cache.delete(model);
      if (written === 1) return next;
    }
    throw new RolloutError('the rollout kept changing under this request; try again');
  }

  /** The audit trail of a model's rollout, newest first. */
  async history(model: string, count: number): Promise<RolloutAuditEntry[]> {
    const entries = (await this.redis.xrevrange(this.keys.rolloutAudit(model), '+', '-', 'COUNT', count)) as [string, string[]][];
    return entries.map(([id, fields]) => {
      const f: Record<string, string> = {};
      for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i] as string] = fields[i + 1] as string;
      return {
        id,
        at: f.at ?? '',
        action: (f.action ?? 'put') as RolloutAction,
        actor: { tenant: f.tenant ?? '', keyId: f.keyId ?? '' },
        from: JSON.parse(f.from ?? 'null') as Rollout,
        to: JSON.parse(f.to ?? 'null') as Rollout,
        reason: f.reason ? f.reason : null,
        gate: f.gate ? (JSON.parse(f.gate) as QualityGateOutcome) : null,
      };
    });
  }
}
