import type { Cluster, Redis } from 'ioredis';
import { RECORD_WEBHOOK } from '../lua/record-webhook';
import type { RedisClient } from '../redis';
import type { RedisKeys } from '../redis-keys';

/** Where a job's webhook delivery stands (fields `webhook*` of the job hash). */
export interface WebhookState {
  status: 'retrying' | 'delivered' | 'failed';
  /** Delivery attempts made so far. */
  attempts: number;
  /** When the last attempt ended (ISO 8601). */
  at: string;
  /** Why the last attempt failed; null once delivered. */
  error: string | null;
}

type ScriptedRedis = (Redis | Cluster) & { recordWebhook(job: string, ...argv: string[]): Promise<number> };

/** Where each job's webhook delivery stands, kept on the job's own hash (and expiring with it). */
export class WebhookStates {
  private readonly redis: ScriptedRedis;

  constructor(
    redis: RedisClient,
    private readonly keys: RedisKeys,
  ) {
    redis.defineCommand('recordWebhook', { numberOfKeys: 1, lua: RECORD_WEBHOOK });
    this.redis = redis as ScriptedRedis;
  }

  /** Records where a job's webhook delivery stands; false when the job is gone. */
  async record(id: string, state: WebhookState): Promise<boolean> {
    const reply = await this.redis.recordWebhook(
      this.keys.job(id),
      'webhookStatus',
      state.status,
      'webhookAttempts',
      String(state.attempts),
      'webhookAt',
      state.at,
      'webhookError',
      state.error ?? '',
    );
    return reply === 1;
  }

  /** Where a job's webhook delivery stands; null when none was attempted (or the job is gone). */
  async state(id: string): Promise<WebhookState | null> {
    const [status, attempts, at, error] = await this.redis.hmget(
      this.keys.job(id),
      'webhookStatus',
      'webhookAttempts',
      'webhookAt',
      'webhookError',
    );
    if (status !== 'retrying' && status !== 'delivered' && status !== 'failed') return null;
    return { status, attempts: Number(attempts ?? 0), at: at ?? '', error: error ? error : null };
  }
}
