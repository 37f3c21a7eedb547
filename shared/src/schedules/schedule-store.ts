import type { RedisClient } from '../redis';
import type { RunSummary } from './run-record';
import type { ScheduleDefinition } from './schedule';
import { ScheduleKeys } from './schedule-keys';

/** Runs kept in a schedule's history (newest first). */
export const MAX_RUN_HISTORY = 100;

/** Schedule definitions and run history in Redis (layout: schedule-keys.ts). */
export class ScheduleStore {
  readonly keys: ScheduleKeys;

  constructor(
    private readonly redis: RedisClient,
    prefix: string,
  ) {
    this.keys = new ScheduleKeys(prefix);
  }

  /** Writes a new definition; false when the tenant already has a schedule of that name. */
  async create(definition: ScheduleDefinition): Promise<boolean> {
    const { tenant, name } = definition;
    const created = await this.redis.hsetnx(this.keys.definitions(tenant), name, JSON.stringify(definition));
    if (created !== 1) return false;
    // A schedule of the same name deleted while one of its runs was finishing may have left history.
    await this.redis.del(this.keys.runIndex(tenant, name), this.keys.runRecords(tenant, name));
    return true;
  }

  async replace(definition: ScheduleDefinition): Promise<void> {
    await this.redis.hset(this.keys.definitions(definition.tenant), definition.name, JSON.stringify(definition));
  }

  async get(tenant: string, name: string): Promise<ScheduleDefinition | null> {
    const text = await this.redis.hget(this.keys.definitions(tenant), name);
    return text === null ? null : (JSON.parse(text) as ScheduleDefinition);
  }

  async list(tenant: string): Promise<ScheduleDefinition[]> {
    const all = await this.redis.hgetall(this.keys.definitions(tenant));
    return Object.values(all)
      .map((text) => JSON.parse(text) as ScheduleDefinition)
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Removes a definition and its history; false when there was none. */
  async remove(tenant: string, name: string): Promise<boolean> {
    const replies = await this.redis
      .multi()
      .hdel(this.keys.definitions(tenant), name)
      .del(this.keys.runIndex(tenant, name), this.keys.runRecords(tenant, name))
      .exec();
    return replies?.[0]?.[1] === 1;
  }

  /**
   * Records (or updates) a run in the history: keyed by run id, so recording a retried tick
   * again overwrites its entry instead of adding one. Nothing is recorded for a schedule that
   * was deleted meanwhile.
   */
  async recordRun(tenant: string, name: string, run: RunSummary): Promise<void> {
    if ((await this.redis.hexists(this.keys.definitions(tenant), name)) === 0) return;
    const index = this.keys.runIndex(tenant, name);
    const records = this.keys.runRecords(tenant, name);
    await this.redis.multi().zadd(index, Date.parse(run.tick), run.runId).hset(records, run.runId, JSON.stringify(run)).exec();
    const old = await this.redis.zrange(index, '0', String(-(MAX_RUN_HISTORY + 1)));
    if (old.length > 0)
      await this.redis
        .multi()
        .zrem(index, ...old)
        .hdel(records, ...old)
        .exec();
  }

  /** The newest runs first, at most MAX_RUN_HISTORY. */
  async runs(tenant: string, name: string): Promise<RunSummary[]> {
    const ids = await this.redis.zrevrange(this.keys.runIndex(tenant, name), 0, MAX_RUN_HISTORY - 1);
    if (ids.length === 0) return [];
    const texts = await this.redis.hmget(this.keys.runRecords(tenant, name), ...ids);
    return texts.flatMap((text) => (text === null ? [] : [JSON.parse(text) as RunSummary]));
  }
}
