import type { Cluster, Redis } from 'ioredis';
import { decodeResultChunk, type ResultChunk } from '../codec/result-chunk';
import { openAtRest, sealAtRest, type AtRestCipher } from '../crypto/at-rest';
import { BEGIN_CHUNK } from '../lua/begin-chunk';
import { CANCEL_JOB } from '../lua/cancel-job';
import { COMMIT_JOB } from '../lua/commit-job';
import { COMPLETE_CHUNK } from '../lua/complete-chunk';
import { REMOVE_JOB } from '../lua/remove-job';
import { isCluster, type RedisClient } from '../redis';
import { jobTag, RedisKeys, type IdempotencyClaimName } from '../redis-keys';
import type { ReplicaWait } from '../replica-wait';
import type { Problem, RouteArm } from '@onnx-batch/contracts';
import { deserialiseRecord, routeOf, serialiseRecord, type JobRecord } from './job-record';
import { createdMs, JobList } from './job-list';
import { Outbox } from './outbox';
import { inputPlace, StagedInputs } from './staged-inputs';
import { TenantLimits } from './tenant-limits';
import { WebhookStates } from './webhook-states';

export type BeginChunkResult =
  | { state: 'missing' | 'cancelled' | 'done' | 'noinput' }
  | {
      state: 'running';
      input: Buffer;
      model: string;
      version: string;
      route: RouteArm;
      rolloutRevision: number;
      /** What keeping the chunk's predictions for labels needs (quality/prediction-log.ts). */
      job: { tenant: string; chunkSize: number; total: number; chunks: number };
    };

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
  commitJob(
    job: string,
    outbox: string,
    claim: string,
    active: string,
    list: string,
    expiring: string,
    ...argv: (string | number | Buffer)[]
  ): Promise<string[]>;
  removeJob(job: string, outbox: string, id: string, chunks: number): Promise<number>;
  completeChunk(job: string, output: string, input: string, ...argv: (string | number | Buffer)[]): Promise<(string | number)[]>;
  cancelJob(job: string, ...argv: (string | number)[]): Promise<number>;
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
   * `listed`: the job is in its tenant's job list (false: listing it after the commit failed, on a cluster; the
   * recovery sweep lists it when its outbox entry is left behind).
   */
  | { state: 'committed'; countedActive: boolean; listed: boolean; replicas?: { acknowledged: number; wanted: number } }
  /** The tenant's active set is full; nothing was written (prune it, then try again or refuse). */
  | { state: 'limit' }
  /** The Idempotency-Key already names an existing job; nothing was written. */
  | { state: 'claimed'; jobId: string; bodyHash: string }
  /** A staged input expired or was evicted before the commit; nothing was written. */
  | { state: 'lost'; chunk: number };

/** The place of a chunk's results, authenticated with them when encrypted (see crypto/at-rest.ts). */
const outputPlace = (id: string, chunk: number): string => `${id}:out:${chunk}`;

/**
 * A job's life in Redis: commit, the start and results of each chunk, cancel, delete, reads. The
 * only code that knows how a job is laid out (see redis-keys.ts); the parts that are not the job's
 * own life have their own objects: staged inputs of an upload, the outbox, tenants' limits and
 * webhook states.
 */
export class JobStore {
  readonly keys: RedisKeys;
  readonly staging: StagedInputs;
  readonly outbox: Outbox;
  readonly tenants: TenantLimits;
  readonly list: JobList;
  readonly webhooks: WebhookStates;
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
    redis.defineCommand('commitJob', { numberOfKeys: 6, lua: COMMIT_JOB });
    redis.defineCommand('removeJob', { numberOfKeys: 2, lua: REMOVE_JOB });
    this.redis = redis as ScriptedRedis;
    replicaWait?.redis.defineCommand('commitJob', { numberOfKeys: 6, lua: COMMIT_JOB });
    this.committer = (replicaWait?.redis ?? redis) as ScriptedRedis;
    // One Redis node holds every key (not a cluster): the commit script also checks and counts the
    // tenant's unfinished jobs, in the same step. On a cluster that set lives in another slot.
    this.singleNode = !isCluster(redis);
    this.staging = new StagedInputs(redis, this.keys, cipher);
    this.outbox = new Outbox(redis, this.keys);
    this.tenants = new TenantLimits(redis, this.keys, ttlSeconds);
    this.list = new JobList(redis, this.keys);
    this.webhooks = new WebhookStates(redis, this.keys);
  }

  readonly singleNode: boolean;

  /**
   * Makes a staged job real, atomically (one Lua script, see lua/commit-job.ts): claims its
   * Idempotency-Key, checks every staged input still exists, writes the record and the job's
   * outbox entry, and lists it for its tenant (on a cluster, where the list is in another slot,
   * right after: see `listed`). The last chunk's input may come along (`lastInput`), saving a round trip (a
   * 1-row job is one script). Nothing is written unless the answer is `committed`. With a
   * ReplicaWait, a commit is answered once enough replicas have it, or its timeout passed.
   */
  async commit(record: JobRecord, options: CommitOptions = {}): Promise<CommitOutcome> {
    const key = this.keys.job(record.id);
    const staged = options.lastInput ? record.chunks - 1 : record.chunks;
    const claimKey = options.idempotency ? this.keys.idempotency(options.idempotency.claim) : key;
    const claimValue = options.idempotency ? `${key} ${record.id} ${options.idempotency.bodyHash}` : '';
    const last = options.lastInput ? sealAtRest(this.cipher, options.lastInput, inputPlace(record.id, staged)) : '';
    const fields = Object.entries(serialiseRecord(record)).flat();
    const limit = this.singleNode ? (options.activeLimit ?? 0) : 0;
    const active = limit > 0 ? this.keys.tenantActive(record.tenant) : key;
    const list = this.singleNode ? this.keys.tenantJobs(record.tenant) : key;
    const expiring = this.singleNode ? this.keys.tenantJobsExpiring(record.tenant) : key;
    const reply = await this.committer.commitJob(
      key,
      this.keys.outbox(jobTag(record.id)),
      claimKey,
      active,
      list,
      expiring,
      staged,
      last,
      claimValue,
      Date.now(),
      record.id,
      limit,
      this.ttlSeconds,
      createdMs(record.createdAt),
      this.singleNode ? '1' : '0',
      ...fields,
    );
    const state = String(reply[0]);
    if (state === 'committed') {
      const countedActive = limit > 0;
      const listed =
        this.singleNode ||
        (await this.list.add(record).then(
          () => true,
          () => false,
        ));
      if (!this.replicaWait) return { state, countedActive, listed };
      return { state, countedActive, listed, replicas: { acknowledged: await this.replicaWait.wait(), wanted: this.replicaWait.replicas } };
    }
    if (state === 'limit') return { state };
    if (state === 'lost') return { state, chunk: Number(reply[1]) };
    const claim = String(reply[1]);
    const first = claim.indexOf(' ');
    const second = claim.indexOf(' ', first + 1);
    return { state: 'claimed', jobId: claim.slice(first + 1, second), bodyHash: claim.slice(second + 1) };
  }

  /**
   * Removes every key of a job now: its record, inputs, results, idempotency claim, outbox entry
   * and its entries in the tenant's job list (on a cluster those go after, when `tenant` is given).
   */
  async remove(id: string, chunks: number, tenant?: string): Promise<void> {
    await this.redis.removeJob(this.keys.job(id), this.keys.outbox(jobTag(id)), id, chunks);
    if (!this.singleNode && tenant !== undefined) await this.list.forget(tenant, id);
  }

  async get(id: string): Promise<JobRecord | null> {
    const hash = await this.redis.hgetall(this.keys.job(id));
    return hash.id ? deserialiseRecord(hash) : null;
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
      job: {
        tenant: reply[6]?.toString() ?? '',
        chunkSize: Number(reply[7]?.toString() ?? 0),
        total: Number(reply[8]?.toString() ?? 0),
        chunks: Number(reply[9]?.toString() ?? 0),
      },
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
      now.getTime(),
    );
    const outcome = COMPLETE_OUTCOMES[String(reply[0])] ?? 'gone';
    if (outcome !== 'finished') return { outcome, record: null };
    const hash: Record<string, string> = {};
    for (let i = 1; i + 1 < reply.length; i += 2) hash[String(reply[i])] = String(reply[i + 1]);
    const record = deserialiseRecord(hash);
    if (!this.singleNode) await this.listExpiring(record.tenant, id, now);
    return { outcome, record };
  }

  /** Cancels an unfinished job: 'cancelled', 'finished' (too late; unchanged) or 'gone'. */
  async cancel(id: string, now: Date): Promise<'cancelled' | 'finished' | 'gone'> {
    const reply = await this.redis.cancelJob(
      this.keys.job(id),
      now.toISOString(),
      this.ttlSeconds,
      this.keys.finishedChannel(),
      id,
      now.getTime(),
    );
    if (reply === 1 && !this.singleNode) {
      const tenant = await this.redis.hget(this.keys.job(id), 'tenant');
      if (tenant !== null) await this.listExpiring(tenant, id, now);
    }
    return reply === 1 ? 'cancelled' : reply === 0 ? 'finished' : 'gone';
  }

  /**
   * On a cluster, where the finish scripts cannot reach the tenant's list: the job's entries go
   * when its keys expire. A failure here only leaves them until a list request finds the job gone.
   */
  private async listExpiring(tenant: string, id: string, now: Date): Promise<void> {
    await this.list.expiring(tenant, id, now.getTime() + this.ttlSeconds * 1000).catch(() => undefined);
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
}
