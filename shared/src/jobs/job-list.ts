import type { JobStatus } from '@onnx-batch/contracts';
import { LIST_JOB, PRUNE_LIST } from '../lua/list-job';
import { isCluster, type RedisClient } from '../redis';
import type { RedisKeys } from '../redis-keys';
import { deserialiseRecord, type JobRecord } from './job-record';

/** Index entries one list request looks at, at most, per job it may answer (a sparse filter answers short pages). */
export const EXAMINED_PER_JOB = 10;
/** Expired entries one list request (or a commit) prunes from the tenant's list before walking it. */
const PRUNE_PER_REQUEST = 1000;
const PRUNE_PER_COMMIT = 10;
/** Fewest index entries fetched in one step of a filtered walk. */
const MIN_STEP = 32;

/** A place in a tenant's list: the last entry a page looked at. */
export interface JobListCursor {
  /** Creation time of the job, ms. */
  created: number;
  id: string;
}

export interface JobListQuery {
  tenant: string;
  /** Only jobs in one of these states (null: any). */
  statuses: readonly JobStatus[] | null;
  /** Only jobs of this model (null: any). */
  model: string | null;
  /** Only jobs created strictly after / before these times (ms; null: no bound). */
  createdAfter: number | null;
  createdBefore: number | null;
  /** Most jobs in the page. */
  limit: number;
  /** Continue after this place (null: from the newest). */
  after: JobListCursor | null;
}

export interface JobListPage {
  records: JobRecord[];
  /** More entries follow (they may all turn out filtered out or gone). */
  hasMore: boolean;
  /** Where the next page starts (null when there is none). */
  next: JobListCursor | null;
}

interface ListCommands {
  listJob(jobs: string, expiring: string, created: number, id: string, now: number, most: number): Promise<number>;
  pruneList(jobs: string, expiring: string, now: number, most: number): Promise<number>;
}

type ListRedis = RedisClient & ListCommands;

/**
 * A tenant's jobs, newest first: a sorted set of job ids by creation time (ms) and one of the
 * finished jobs by the time their keys expire, both in the tenant's slot (ADR 0008). On one Redis
 * node the commit, finish and delete scripts keep them in the same step as the job's own keys; on
 * a cluster the job is in another slot and JobStore calls `add`, `expiring` and `forget` right
 * after. Each list request first prunes the entries of expired jobs, then walks the list in
 * bounded steps, reading each job's record: a job that is gone all the same (evicted, or expired
 * before its entry was pruned) is never answered and its entries go.
 */
export class JobList {
  private readonly redis: ListRedis;

  constructor(
    redis: RedisClient,
    private readonly keys: RedisKeys,
  ) {
    redis.defineCommand('listJob', { numberOfKeys: 2, lua: LIST_JOB });
    redis.defineCommand('pruneList', { numberOfKeys: 2, lua: PRUNE_LIST });
    this.redis = redis as ListRedis;
  }

  /** Lists a job (idempotent): where the commit could not (a cluster), and the recovery sweep's repair. */
  async add(record: Pick<JobRecord, 'id' | 'tenant' | 'createdAt'>): Promise<void> {
    const { tenant } = record;
    await this.redis.listJob(
      this.keys.tenantJobs(tenant),
      this.keys.tenantJobsExpiring(tenant),
      createdMs(record.createdAt),
      record.id,
      Date.now(),
      PRUNE_PER_COMMIT,
    );
  }

  /** A listed job finished: its entries go when its keys expire, at `expiresAt` (ms). */
  async expiring(tenant: string, id: string, expiresAt: number): Promise<void> {
    await this.redis.zadd(this.keys.tenantJobsExpiring(tenant), String(expiresAt), id);
  }

  /** The creation time (ms) of a job in the tenant's list; null when it is not in it. */
  async createdOf(tenant: string, id: string): Promise<number | null> {
    const score = await this.redis.zscore(this.keys.tenantJobs(tenant), id);
    return score === null ? null : Number(score);
  }

  /** Drops a job's entries (it was deleted, or is found gone). */
  async forget(tenant: string, ...ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    await this.redis
      .multi()
      .zrem(this.keys.tenantJobs(tenant), ...ids)
      .zrem(this.keys.tenantJobsExpiring(tenant), ...ids)
      .exec();
  }

  /**
   * One page of a tenant's jobs, newest first (ties in the same ms by id, descending). Looks at
   * no more than EXAMINED_PER_JOB × limit entries: with a sparse filter the page may be short,
   * even empty, and still say `hasMore` with a cursor to go on from.
   */
  async page(query: JobListQuery): Promise<JobListPage> {
    const { tenant, limit, after } = query;
    const jobs = this.keys.tenantJobs(tenant);
    await this.redis.pruneList(jobs, this.keys.tenantJobsExpiring(tenant), Date.now(), PRUNE_PER_REQUEST);
    const filtered = query.statuses !== null || query.model !== null;
    const budget = limit * EXAMINED_PER_JOB;
    const upper = Math.min(after?.created ?? Infinity, query.createdBefore === null ? Infinity : query.createdBefore - 1);
    const max = upper === Infinity ? '+inf' : String(upper);
    const min = query.createdAfter === null ? '-inf' : `(${query.createdAfter}`;
    const records: JobRecord[] = [];
    let position = after;
    let examined = 0;
    let offset = 0;
    let exhausted = false;
    let unconsumed = false;
    while (records.length < limit && examined < budget && !exhausted) {
      const wanted = limit - records.length;
      const step = Math.min(budget - examined, filtered ? Math.max(wanted * 2, MIN_STEP) : wanted);
      const entries = pairs(await this.redis.zrange(jobs, max, min, 'BYSCORE', 'REV', 'LIMIT', offset, step, 'WITHSCORES'));
      offset += entries.length;
      exhausted = entries.length < step;
      // Entries of the cursor's own ms it already passed (ids at or above its id) come first: skip them.
      const fresh = entries.filter((e) => !(after && e.created === after.created && e.id >= after.id));
      const found = await this.records(fresh.map((e) => e.id));
      const gone: string[] = [];
      for (let i = 0; i < fresh.length; i++) {
        if (records.length >= limit || examined >= budget) {
          unconsumed = true;
          break;
        }
        const entry = fresh[i] as { created: number; id: string };
        const record = found[i] ?? null;
        examined++;
        position = entry;
        if (!record) gone.push(entry.id);
        else if (record.tenant === tenant && matches(record, query)) records.push(record);
      }
      await this.forget(tenant, ...gone);
    }
    const hasMore =
      unconsumed || (!exhausted && (await this.redis.zrange(jobs, max, min, 'BYSCORE', 'REV', 'LIMIT', offset, 1)).length > 0);
    return { records, hasMore, next: hasMore ? position : null };
  }

  /** The records of jobs (null where gone): one pipeline, or on a cluster one command per job (jobs live in many slots). */
  private async records(ids: string[]): Promise<(JobRecord | null)[]> {
    const toRecord = (hash: Record<string, string> | null | undefined): JobRecord | null => (hash?.id ? deserialiseRecord(hash) : null);
    if (ids.length === 0) return [];
    if (isCluster(this.redis)) return Promise.all(ids.map(async (id) => toRecord(await this.redis.hgetall(this.keys.job(id)))));
    const pipeline = this.redis.pipeline();
    for (const id of ids) pipeline.hgetall(this.keys.job(id));
    const replies = (await pipeline.exec()) ?? [];
    return replies.map(([error, hash]) => {
      if (error) throw error;
      return toRecord(hash as Record<string, string>);
    });
  }
}

/** A job's creation time in ms, its score in the list. */
export function createdMs(createdAt: string): number {
  const ms = Date.parse(createdAt);
  return Number.isFinite(ms) ? ms : 0;
}

function matches(record: JobRecord, query: JobListQuery): boolean {
  if (query.statuses !== null && !query.statuses.includes(record.status)) return false;
  return query.model === null || record.model === query.model;
}

function pairs(reply: string[]): JobListCursor[] {
  const out: JobListCursor[] = [];
  for (let i = 0; i + 1 < reply.length; i += 2) out.push({ id: reply[i] as string, created: Number(reply[i + 1]) });
  return out;
}
