import { isFinished, type JobStatus } from '@onnx-batch/contracts';
import { isCluster, type RedisClient } from '../redis';
import type { RedisKeys } from '../redis-keys';

/**
 * A tenant's unfinished jobs, for MAX_ACTIVE_JOBS_PER_TENANT: a sorted set of job ids per tenant,
 * pruned lazily of jobs that finished or are gone (only when it looks full, so the usual check is
 * one ZCARD). On a single Redis the commit script adds to it in the same step (lua/commit-job.ts).
 */
export class TenantLimits {
  /** Prunes under way, per tenant: concurrent submits that find the set full share one. */
  private readonly pruning = new Map<string, Promise<number>>();

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
    private readonly ttlSeconds: number,
  ) {}

  /** Whether a tenant has fewer than `limit` unfinished jobs. */
  async belowActiveLimit(tenant: string, limit: number): Promise<boolean> {
    if ((await this.redis.zcard(this.keys.tenantActive(tenant))) < limit) return true;
    return (await this.activeJobs(tenant)) < limit;
  }

  /**
   * Unfinished jobs of a tenant, pruning the ones that finished or are gone. A prune reads the
   * status of every job in the set, so callers at the same time wait for the one under way
   * rather than each reading them all again (32 submits at once would otherwise read 32 × the set).
   */
  activeJobs(tenant: string): Promise<number> {
    const underWay = this.pruning.get(tenant);
    if (underWay) return underWay;
    const prune = this.prune(tenant).finally(() => this.pruning.delete(tenant));
    this.pruning.set(tenant, prune);
    return prune;
  }

  private async prune(tenant: string): Promise<number> {
    const key = this.keys.tenantActive(tenant);
    const ids = await this.redis.zrange(key, '0', '-1');
    if (ids.length === 0) return 0;
    const statuses = await this.jobStatuses(ids);
    const finished = ids.filter((_, i) => {
      const status = statuses[i];
      return status == null || isFinished(status as JobStatus);
    });
    if (finished.length > 0) await this.redis.zrem(key, ...finished);
    return ids.length - finished.length;
  }

  /** Counts a job as unfinished (when the commit could not: a cluster keeps the set in another slot). */
  async add(tenant: string, id: string): Promise<void> {
    const key = this.keys.tenantActive(tenant);
    await this.redis.multi().zadd(key, String(Date.now()), id).expire(key, this.ttlSeconds).exec();
  }

  /** The status of each job (null when it is gone): one pipeline, or on a cluster one command per job (jobs live in many slots). */
  private async jobStatuses(ids: string[]): Promise<(string | null)[]> {
    if (isCluster(this.redis)) return Promise.all(ids.map((id) => this.redis.hget(this.keys.job(id), 'status')));
    const pipeline = this.redis.pipeline();
    for (const id of ids) pipeline.hget(this.keys.job(id), 'status');
    return ((await pipeline.exec()) ?? []).map(([, status]) => status as string | null);
  }
}
