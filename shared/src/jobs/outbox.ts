import { isCluster, type RedisClient } from '../redis';
import { jobTag, type RedisKeys } from '../redis-keys';

/**
 * Committed jobs not yet known to be queued, one sorted set per job tag (the commit script adds
 * a job in the same step as its record; see ADR 0004). The API removes a job once BullMQ has it;
 * the workers' recovery sweep queues entries left behind.
 */
export class Outbox {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
  ) {}

  /** The job is known to be queued: its entry can go. */
  async markQueued(id: string): Promise<void> {
    await this.redis.zrem(this.keys.outbox(jobTag(id)), id);
  }

  /** Entries committed before `before` (ms), at most `limit` per tag: jobs an API may have left unqueued. */
  async staleEntries(before: number, limit: number): Promise<string[]> {
    if (isCluster(this.redis)) {
      // A cluster pipeline must stay on one node: one command per outbox (each in its own slot).
      const replies = await Promise.all(
        this.keys
          .outboxes()
          .map((outbox) => this.redis.zrangebyscore(outbox, '-inf', String(before), 'LIMIT', 0, limit).catch(() => [] as string[])),
      );
      return replies.flat();
    }
    const pipeline = this.redis.pipeline();
    for (const outbox of this.keys.outboxes()) pipeline.zrangebyscore(outbox, '-inf', String(before), 'LIMIT', 0, limit);
    const replies = (await pipeline.exec()) ?? [];
    return replies.flatMap(([error, ids]) => (error ? [] : (ids as string[])));
  }
}
