import type { Cluster, Redis } from 'ioredis';
import type { JobStatus } from './contracts';
import { JOB_STATUSES } from './contracts';
import { openAtRest, sealAtRest, type AtRestCipher } from './crypto/at-rest';
import { decodeResultChunk, type ResultChunk } from './codec/result-chunk';
import type { Problem } from './errors';
import type { RouteArm } from './rollouts/rollout';
import { BEGIN_CHUNK } from './lua/begin-chunk';
import { CANCEL_JOB } from './lua/cancel-job';
import { COMMIT_JOB } from './lua/commit-job';
import { COMPLETE_CHUNK } from './lua/complete-chunk';
import { RECORD_WEBHOOK } from './lua/record-webhook';
import { REMOVE_JOB } from './lua/remove-job';
import { isCluster, type RedisClient } from './redis';
import { jobTag, RedisKeys, type IdempotencyClaimName } from './redis-keys';
import type { ReplicaWait } from './replica-wait';

/** The job record as stored in its hash. */
export interface JobRecord {
  id: string;
  tenant: string;
  model: string;
  version: string;
  /** How the version was chosen: named by the client (`pinned`), or by the model's rollout (`default`, `canary`). */
  route: RouteArm;
  /** The rollout revision that routed the job (0: none); canary and shadow statistics are kept per revision. */
  rolloutRevision: number;
  status: JobStatus;
  total: number;
  done: number;
  failed: number;
  chunks: number;
  chunksDone: number;
  chunkSize: number;
  priority: number;
  /** Where the job's status is POSTed when it finishes (checked against SSRF at submit). */
  callbackUrl: string | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  error: Problem | null;
}

export type BeginChunkResult =
  | { state: 'missing' | 'cancelled' | 'done' | 'noinput' }
  | { state: 'running'; input: Buffer; model: string; version: string; route: RouteArm; rolloutRevision: number };

export type CompleteChunkOutcome = 'gone' | 'cancelled' | 'duplicate' | 'recorded' | 'finished';

/** What recording a chunk did; `record` is the job's final record when the chunk finished it. */
export interface CompletedChunk {
  outcome: CompleteChunkOutcome;
  record: JobRecord | null;
}

const COMPLETE_OUTCOMES: Record<string, CompleteChunkOutcome> = {
  '-1': 'gone',
  '-2': 'cancelled',
  '0': 'duplicate',
  '1': 'recorded',
  '2': 'finished',
};

interface ScriptedCommands {
  beginChunkBuffer(job: string, input: string, output: string, now: string, chunk: number): Promise<(Buffer | null)[]>;
  commitJob(job: string, outbox: string, claim: string, active: string, ...argv: (string | number | Buffer)[]): Promise<string[]>;
  removeJob(job: string, outbox: string, id: string, chunks: number): Promise<number>;
  completeChunk(job: string, output: string, input: string, ...argv: (string | number | Buffer)[]): Promise<(string | number)[]>;
  cancelJob(job: string, ...argv: (string | number)[]): Promise<number>;
  recordWebhook(job: string, ...argv: string[]): Promise<number>;
}

type ScriptedRedis = (Redis | Cluster) & ScriptedCommands;

export interface CommitOptions {
  /** The last chunk's encoded input, written by the commit itself (it was not staged). */
  lastInput?: Buffer | undefined;
  /** The Idempotency-Key the job is submitted under: its claim, and the hash of the request body. */
  idempotency?: { claim: IdempotencyClaimName; bodyHash: string } | undefined;
  /** Refuse (`limit`) when the tenant already has this many unfinished jobs, and count this one (single node only). */
  activeLimit?: number;
}

export type CommitOutcome =
  /**
   * `countedActive`: the job was added to its tenant's active set by the commit itself.
   * `replicas`: when commits wait for replicas (REDIS_WAIT_REPLICAS), how many acknowledged it, of how many wanted.
   */
  | { state: 'committed'; countedActive: boolean; replicas?: { acknowledged: number; wanted: number } }
  /** The tenant's active set is full; nothing was written (prune it, then try again or refuse). */
  | { state: 'limit' }
  /** The Idempotency-Key already names an existing job; nothing was written. */
  | { state: 'claimed'; jobId: string; bodyHash: string }
  /** A staged input expired or was evicted before the commit; nothing was written. */
  | { state: 'lost'; chunk: number };

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

/** The place of a chunk's input / results, authenticated with it when encrypted (see crypto/at-rest.ts). */
const inputPlace = (id: string, chunk: number): string => `${id}:in:${chunk}`;
const outputPlace = (id: string, chunk: number): string => `${id}:out:${chunk}`;

/**
 * Reads and writes job records, chunk inputs and chunk results: the only code that knows how a
 * job is laid out in Redis (see redis-keys.ts).
 */
export class JobStore {
  readonly keys: RedisKeys;
  private readonly redis: ScriptedRedis;

  /** The connection commits run on: the store's own, or the one replicas are waited for on. */
  private readonly committer: ScriptedRedis;

  constructor(
    redis: RedisClient,
    prefix: string,
    private readonly ttlSeconds: number,
    /** Encrypts chunk inputs and results at rest (ENCRYPTION_KEY); null stores them in clear. */
    private readonly cipher: AtRestCipher | null = null,
    /** Commits wait for replicas (REDIS_WAIT_REPLICAS): they run on this WAIT's own connection. */
    private readonly replicaWait: ReplicaWait | null = null,
  ) {
    this.keys = new RedisKeys(prefix);
    redis.defineCommand('beginChunk', { numberOfKeys: 3, lua: BEGIN_CHUNK });
    redis.defineCommand('completeChunk', { numberOfKeys: 3, lua: COMPLETE_CHUNK });
    redis.defineCommand('cancelJob', { numberOfKeys: 1, lua: CANCEL_JOB });
    redis.defineCommand('recordWebhook', { numberOfKeys: 1, lua: RECORD_WEBHOOK });
    redis.defineCommand('commitJob', { numberOfKeys: 4, lua: COMMIT_JOB });
    redis.defineCommand('removeJob', { numberOfKeys: 2, lua: REMOVE_JOB });
    this.redis = redis as ScriptedRedis;
    replicaWait?.redis.defineCommand('commitJob', { numberOfKeys: 4, lua: COMMIT_JOB });
    this.committer = (replicaWait?.redis ?? redis) as ScriptedRedis;
    // One Redis node holds every key (not a cluster): the commit script also checks and counts the
    // tenant's unfinished jobs, in the same step. On a cluster that set lives in another slot.
    this.singleNode = !isCluster(redis);
  }

  readonly singleNode: boolean;

  /** Writes one chunk's encoded input; it lives `ttlSeconds` unless the job commits (or is kept alive). */
  stageInput(id: string, chunk: number, input: Buffer, ttlSeconds: number): Promise<unknown> {
    return this.redis.set(this.keys.input(id, chunk), sealAtRest(this.cipher, input, inputPlace(id, chunk)), 'EX', ttlSeconds);
  }

  /** Gives staged inputs [0, chunks) another `ttlSeconds`: an upload still arriving keeps what it staged. */
  async keepStagedAlive(id: string, chunks: number, ttlSeconds: number): Promise<void> {
    for (let from = 0; from < chunks; from += 1000) {
      const pipeline = this.redis.pipeline();
      for (let chunk = from; chunk < Math.min(chunks, from + 1000); chunk++) pipeline.expire(this.keys.input(id, chunk), ttlSeconds);
      await pipeline.exec();
    }
  }

  /**
   * Makes a staged job real, atomically (one Lua script, see lua/commit-job.ts): claims its
   * Idempotency-Key, checks every staged input still exists, writes the record and the job's
   * outbox entry. The last chunk's input may come along (`lastInput`), saving a round trip (a
   * 1-row job is one script). Nothing is written unless the answer is `committed`. With a
   * ReplicaWait, a commit is answered once enough replicas have it, or its timeout passed.
   */
  async commit(record: JobRecord, options: CommitOptions = {}): Promise<CommitOutcome> {
    const key = this.keys.job(record.id);
    const staged = options.lastInput ? record.chunks - 1 : record.chunks;
    const claimKey = options.idempotency ? this.keys.idempotency(options.idempotency.claim) : key;
    const claimValue = options.idempotency ? `${key} ${record.id} ${options.idempotency.bodyHash}` : '';
    const last = options.lastInput ? sealAtRest(this.cipher, options.lastInput, inputPlace(record.id, staged)) : '';
    const fields = Object.entries(serialise(record)).flat();
    const limit = this.singleNode ? (options.activeLimit ?? 0) : 0;
    const active = limit > 0 ? this.keys.tenantActive(record.tenant) : key;
    const reply = await this.committer.commitJob(key, this.keys.outbox(jobTag(record.id)), claimKey, active, staged, last, claimValue, Date.now(), record.id, limit, this.ttlSeconds, ...fields);
    const state = String(reply[0]);
    if (state === 'committed') {
      const countedActive = limit > 0;
      if (!this.replicaWait) return { state, countedActive };
      return { state, countedActive, replicas: { acknowledged: await this.replicaWait.wait(), wanted: this.replicaWait.replicas } };
    }
    if (state === 'limit') return { state };
    if (state === 'lost') return { state, chunk: Number(reply[1]) };
    const claim = String(reply[1]);
    const first = claim.indexOf(' ');
    const second = claim.indexOf(' ', first + 1);
    return { state: 'claimed', jobId: claim.slice(first + 1, second), bodyHash: claim.slice(second + 1) };
  }

  /** The job is known to be queued: its outbox entry can go. */
  async markQueued(id: string): Promise<void> {
    await this.redis.zrem(this.keys.outbox(jobTag(id)), id);
  }

  /** Outbox entries committed before `before` (ms), at most `limit` per tag: jobs an API may have left unqueued. */
  async staleOutboxEntries(before: number, limit: number): Promise<string[]> {
    if (isCluster(this.redis)) {
      // A cluster pipeline must stay on one node: one command per outbox (each in its own slot).
      const replies = await Promise.all(
        this.keys.outboxes().map((outbox) => this.redis.zrangebyscore(outbox, '-inf', String(before), 'LIMIT', 0, limit).catch(() => [] as string[])),
      );
      return replies.flat();
    }
    const pipeline = this.redis.pipeline();
    for (const outbox of this.keys.outboxes()) pipeline.zrangebyscore(outbox, '-inf', String(before), 'LIMIT', 0, limit);
    const replies = (await pipeline.exec()) ?? [];
    return replies.flatMap(([error, ids]) => (error ? [] : (ids as string[])));
  }

  /**
   * Whether a tenant has fewer than `limit` unfinished jobs. The set is pruned of jobs that
   * finished or are gone only when it looks full, so the usual check is one ZCARD.
   */
  async belowActiveLimit(tenant: string, limit: number): Promise<boolean> {
    if ((await this.redis.zcard(this.keys.tenantActive(tenant))) < limit) return true;
    return (await this.activeJobs(tenant)) < limit;
  }

  /** Unfinished jobs of a tenant, pruning the ones that finished or are gone. */
  async activeJobs(tenant: string): Promise<number> {
    const key = this.keys.tenantActive(tenant);
    const ids = await this.redis.zrange(key, '0', '-1');
    if (ids.length === 0) return 0;
    const statuses = await this.jobStatuses(ids);
    const finished = ids.filter((_, i) => {
      const status = statuses[i];
      return status === null || status === undefined || status === 'completed' || status === 'failed' || status === 'cancelled';
    });
    if (finished.length > 0) await this.redis.zrem(key, ...finished);
    return ids.length - finished.length;
  }

  /** The status of each job (null when it is gone): one pipeline, or on a cluster one command per job (jobs live in many slots). */
  private async jobStatuses(ids: string[]): Promise<(string | null)[]> {
    if (isCluster(this.redis)) return Promise.all(ids.map((id) => this.redis.hget(this.keys.job(id), 'status')));
    const pipeline = this.redis.pipeline();
    for (const id of ids) pipeline.hget(this.keys.job(id), 'status');
    return ((await pipeline.exec()) ?? []).map(([, status]) => status as string | null);
  }

  async addActiveJob(tenant: string, id: string): Promise<void> {
    const key = this.keys.tenantActive(tenant);
    await this.redis.multi().zadd(key, String(Date.now()), id).expire(key, this.ttlSeconds).exec();
  }

  /** Removes every key of a job now: its record, inputs, results, idempotency claim and outbox entry. */
  async remove(id: string, chunks: number): Promise<void> {
    await this.redis.removeJob(this.keys.job(id), this.keys.outbox(jobTag(id)), id, chunks);
  }

  async get(id: string): Promise<JobRecord | null> {
    const hash = await this.redis.hgetall(this.keys.job(id));
    return hash.id ? deserialise(hash) : null;
  }

  async beginChunk(id: string, chunk: number, now: Date): Promise<BeginChunkResult> {
    const reply = await this.redis.beginChunkBuffer(
      this.keys.job(id),
      this.keys.input(id, chunk),
      this.keys.output(id, chunk),
      now.toISOString(),
      chunk,
    );
    const state = reply[0]?.toString() ?? 'missing';
    if (state !== 'running') return { state: state as 'missing' | 'cancelled' | 'done' | 'noinput' };
    return {
      state,
      input: openAtRest(this.cipher, reply[1] as Buffer, inputPlace(id, chunk)),
      model: (reply[2] as Buffer).toString(),
      version: (reply[3] as Buffer).toString(),
      route: routeOf(reply[4]?.toString()),
      rolloutRevision: Number(reply[5]?.toString() ?? 0),
    };
  }

  /**
   * Records a chunk's results once (idempotent) and finishes the job after its last chunk;
   * then the job's final record comes along (no second read).
   */
  async completeChunk(
    id: string,
    chunk: number,
    /** The chunk's results as encodeResultChunk wrote them. */
    results: Uint8Array,
    rows: number,
    failedRows: number,
    failureIfAllFailed: Problem,
    now: Date,
  ): Promise<CompletedChunk> {
    const reply = await this.redis.completeChunk(
      this.keys.job(id),
      this.keys.output(id, chunk),
      this.keys.input(id, chunk),
      sealAtRest(this.cipher, Buffer.from(results.buffer, results.byteOffset, results.byteLength), outputPlace(id, chunk)),
      rows,
      failedRows,
      now.toISOString(),
      this.ttlSeconds,
      JSON.stringify(failureIfAllFailed),
      this.keys.finishedChannel(),
      id,
      chunk,
    );
    const outcome = COMPLETE_OUTCOMES[String(reply[0])] ?? 'gone';
    if (outcome !== 'finished') return { outcome, record: null };
    const hash: Record<string, string> = {};
    for (let i = 1; i + 1 < reply.length; i += 2) hash[String(reply[i])] = String(reply[i + 1]);
    return { outcome, record: deserialise(hash) };
  }

  /** Cancels an unfinished job: 'cancelled', 'finished' (too late; unchanged) or 'gone'. */
  async cancel(id: string, now: Date): Promise<'cancelled' | 'finished' | 'gone'> {
    const reply = await this.redis.cancelJob(this.keys.job(id), now.toISOString(), this.ttlSeconds, this.keys.finishedChannel(), id);
    return reply === 1 ? 'cancelled' : reply === 0 ? 'finished' : 'gone';
  }

  /** Chunks of a job that have no results recorded. */
  async chunksWithoutResults(id: string, chunks: number): Promise<number[]> {
    const pipeline = this.redis.pipeline();
    for (let chunk = 0; chunk < chunks; chunk++) pipeline.exists(this.keys.output(id, chunk));
    const replies = (await pipeline.exec()) ?? [];
    return replies.flatMap(([, exists], chunk) => (exists === 1 ? [] : [chunk]));
  }

  /**
   * Results of chunks [from, to), decoded (render them with renderResultLines or
   * renderResultCsvRows); null where a chunk has none. Throws a DecryptionError when stored
   * results cannot be opened (see crypto/at-rest.ts).
   */
  async readResults(id: string, from: number, to: number): Promise<(ResultChunk | null)[]> {
    if (to <= from) return [];
    const keys: string[] = [];
    for (let chunk = from; chunk < to; chunk++) keys.push(this.keys.output(id, chunk));
    const values = await this.redis.mgetBuffer(...keys);
    return values.map((value, i) => (value === null ? null : decodeResultChunk(openAtRest(this.cipher, value, outputPlace(id, from + i)))));
  }

  /** Records where a job's webhook delivery stands; false when the job is gone. */
  async recordWebhook(id: string, state: WebhookState): Promise<boolean> {
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
  async webhookState(id: string): Promise<WebhookState | null> {
    const [status, attempts, at, error] = await this.redis.hmget(this.keys.job(id), 'webhookStatus', 'webhookAttempts', 'webhookAt', 'webhookError');
    if (status !== 'retrying' && status !== 'delivered' && status !== 'failed') return null;
    return { status, attempts: Number(attempts ?? 0), at: at ?? '', error: error ? error : null };
  }
}

function routeOf(value: string | undefined): RouteArm {
  return value === 'default' || value === 'canary' ? value : 'pinned';
}

function serialise(record: JobRecord): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(record)) {
    if (v === null || v === undefined) continue;
    out[k] = typeof v === 'object' ? JSON.stringify(v) : String(v);
  }
  return out;
}

function deserialise(hash: Record<string, string>): JobRecord {
  const status = hash.status as JobStatus;
  return {
    id: hash.id ?? '',
    tenant: hash.tenant ?? '',
    model: hash.model ?? '',
    version: hash.version ?? '',
    route: routeOf(hash.route),
    rolloutRevision: Number(hash.rolloutRevision ?? 0),
    status: JOB_STATUSES.includes(status) ? status : 'queued',
    total: Number(hash.total ?? 0),
    done: Number(hash.done ?? 0),
    failed: Number(hash.failed ?? 0),
    chunks: Number(hash.chunks ?? 0),
    chunksDone: Number(hash.chunksDone ?? 0),
    chunkSize: Number(hash.chunkSize ?? 0),
    priority: Number(hash.priority ?? 0),
    callbackUrl: hash.callbackUrl ?? null,
    createdAt: hash.createdAt ?? '',
    startedAt: hash.startedAt ?? null,
    finishedAt: hash.finishedAt ?? null,
    error: hash.error ? (JSON.parse(hash.error) as Problem) : null,
  };
}
