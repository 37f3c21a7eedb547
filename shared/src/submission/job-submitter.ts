import { ChunkEncoder } from '../codec/chunk-codec';
import type { Config } from '../config';
import { ProblemError, type FieldError } from '@onnx-batch/contracts';
import type { JobRecord } from '../jobs/job-record';
import type { JobStore } from '../jobs/job-store';
import type { Logger } from '../logger';
import { idempotencyClaimName, newJobId } from '../redis-keys';
import type { JobEnqueuer } from './chunk-enqueuer';
import type { ModelSelection } from './model-router';

/** Most row errors reported for one rejected JSON batch; validation stops there. */
export const MAX_REPORTED_ROW_ERRORS = 20;
/**
 * Chunk writes in flight at once while staging: enough to keep Redis busy while the next chunk is
 * encoded, few enough to bound an upload's memory to a handful of chunks. Not a setting: it trades
 * nothing an operator could tune for (a larger window only holds more memory per upload).
 */
const STAGING_WINDOW = 4;
/** Commit attempts when the job an Idempotency-Key named vanishes between the commit and the read. */
const COMMIT_ATTEMPTS = 3;

export interface SubmitRequest {
  /** The model asked for; its version is chosen (by the rollout) once the job has an id. */
  model: ModelSelection;
  rows: Iterable<unknown> | AsyncIterable<unknown>;
  tenant: string;
  priority: number;
  callbackUrl: string | null;
  /** An Idempotency-Key (hashed) and the hash of the body, known once the body has been read. */
  idempotency?: { keyHash: string; bodyHash: () => string };
  /**
   * How a row is named in errors: by 0-based index (JSON, up to MAX_REPORTED_ROW_ERRORS errors are
   * reported), or by the 1-based line the source is at (streamed input: the first error ends the
   * upload at once, so a client still sending hears about it).
   */
  rowLocation: 'row' | (() => number);
}

/** Points tests can hook into to crash the process at the worst moment (see test/reliability). */
export interface SubmitterHooks {
  /** Called after a job is committed and before it is queued. */
  afterCommit?: (jobId: string) => void;
}

/**
 * Validates, encodes and stages a batch chunk by chunk, then commits it: the job record is
 * written and the chunk jobs are queued only once every row has passed. Anything staged for a
 * rejected batch is deleted, so nothing of it can run.
 * The API submits uploads through it, the scheduler the files of a schedule's tick.
 *
 * A 202 is a promise that every row runs: staged inputs are kept alive while the upload is
 * still arriving; the commit checks atomically that every one of them still exists (and claims
 * the Idempotency-Key in the same step); a committed job sits in its outbox until it is known to
 * be queued, so a crash between commit and enqueue is repaired by the workers' recovery sweep.
 */
export class JobSubmitter {
  private readonly accepted = new Set<(record: JobRecord) => void>();

  constructor(
    private readonly store: JobStore,
    private readonly enqueuer: JobEnqueuer,
    private readonly config: Pick<Config, 'CHUNK_SIZE' | 'MAX_ROWS_PER_JOB' | 'STAGING_TTL_SECONDS' | 'MAX_ACTIVE_JOBS_PER_TENANT'>,
    private readonly logger: Logger,
    private readonly hooks: SubmitterHooks = {},
  ) {}

  /** Tells `listener` of every job accepted (a new one, not an idempotent replay); answers how to stop. */
  onAccepted(listener: (record: JobRecord) => void): () => void {
    this.accepted.add(listener);
    return () => this.accepted.delete(listener);
  }

  /**
   * Validates, stages and commits a batch. Answers the job and whether it is new: a repeated
   * Idempotency-Key with the same body answers the job it created first.
   */
  async submit(request: SubmitRequest): Promise<{ record: JobRecord; created: boolean }> {
    // A streamed upload may be long: refuse it before reading when the tenant is at its limit.
    // (The commit checks the limit again, atomically; a JSON body is already read.)
    const streamed = request.rowLocation !== 'row';
    if ((streamed || !this.store.singleNode) && !(await this.store.tenants.belowActiveLimit(request.tenant, this.config.MAX_ACTIVE_JOBS_PER_TENANT))) {
      throw this.tooManyActiveJobs();
    }
    const claim = request.idempotency ? idempotencyClaimName(request.tenant, request.idempotency.keyHash) : undefined;
    const id = newJobId(claim);
    const routed = request.model.choose(id);
    const { manifest, validator } = routed.model;
    const chunkSize = manifest.chunkSize ?? this.config.CHUNK_SIZE;
    const encoder = new ChunkEncoder(manifest, chunkSize);
    const errors: FieldError[] = [];
    const maxErrors = request.rowLocation === 'row' ? MAX_REPORTED_ROW_ERRORS : 1;
    const inFlight = new Set<Promise<unknown>>();
    let chunks = 0;
    const locate = (index: number): FieldError =>
      request.rowLocation === 'row' ? { row: index, message: '' } : { line: request.rowLocation(), message: '' };

    const stage = async (): Promise<void> => {
      const write = this.store.staging.stage(id, chunks++, encoder.finish(), this.config.STAGING_TTL_SECONDS);
      inFlight.add(write);
      void write.finally(() => inFlight.delete(write)).catch(() => undefined);
      if (inFlight.size >= STAGING_WINDOW) await Promise.race(inFlight);
    };
    const keepAlive = this.keepStagedAlive(id, () => chunks);
    let committed: JobRecord;

    try {
      let index = 0;
      for await (const row of request.rows) {
        if (index >= this.config.MAX_ROWS_PER_JOB) {
          throw new ProblemError('OB_ERR_TOO_MANY_ROWS', `a job may hold at most ${this.config.MAX_ROWS_PER_JOB} rows`);
        }
        const problem = validator.check(row) ?? (errors.length === 0 ? encoder.add(row) : null);
        if (problem) {
          errors.push({ ...locate(index), ...problem });
          if (errors.length >= maxErrors) break; // streamed: answer now, while the client is still sending
        } else if (errors.length === 0 && encoder.full) {
          await stage();
        }
        index++;
      }
      const rows = index;
      if (errors.length > 0) throw invalidRows(errors);
      if (rows === 0) throw new ProblemError('OB_ERR_INVALID_REQUEST', 'the batch holds no rows', { errors: [{ field: 'inputs', message: 'must not be empty' }] });
      const lastInput = encoder.rows > 0 ? encoder.finish() : undefined;
      if (lastInput) chunks++;
      await Promise.all(inFlight);

      const record: JobRecord = {
        id,
        tenant: request.tenant,
        model: manifest.name,
        version: manifest.version,
        route: routed.arm,
        rolloutRevision: routed.revision,
        status: 'queued',
        total: rows,
        done: 0,
        failed: 0,
        chunks,
        chunksDone: 0,
        chunkSize,
        priority: request.priority,
        callbackUrl: request.callbackUrl,
        createdAt: new Date().toISOString(),
        startedAt: null,
        finishedAt: null,
        error: null,
      };
      const idempotency = claim && request.idempotency ? { claim, bodyHash: request.idempotency.bodyHash() } : undefined;
      let pruned = false;
      for (let attempt = 1; ; attempt++) {
        const outcome = await this.store.commit(record, { lastInput, idempotency, activeLimit: this.config.MAX_ACTIVE_JOBS_PER_TENANT });
        if (outcome.state === 'committed') {
          // Answered 202 all the same: the job is committed on the primary and will run; only a
          // fail-over before a replica catches up could lose it (docs/operations.md, Sentinel).
          const replicas = outcome.replicas;
          if (replicas && replicas.acknowledged < replicas.wanted) {
            this.logger.warn('job committed but not yet on enough Redis replicas', { jobId: id, acknowledged: replicas.acknowledged, wanted: replicas.wanted });
          }
          if (!outcome.countedActive) this.store.tenants.add(record.tenant, id).catch((error: unknown) => this.logger.warn('could not count an active job', { jobId: id, error: String(error) }));
          break;
        }
        if (outcome.state === 'limit') {
          // The set also holds jobs that finished since it was last pruned: prune, then try once more.
          if (pruned || (await this.store.tenants.activeJobs(request.tenant)) >= this.config.MAX_ACTIVE_JOBS_PER_TENANT) throw this.tooManyActiveJobs();
          pruned = true;
          continue;
        }
        if (outcome.state === 'lost') {
          throw new ProblemError(
            'OB_ERR_STAGING_LOST',
            `chunk ${outcome.chunk} of this upload expired or was evicted from Redis before the job could be committed; nothing was queued: submit it again`,
            { retryAfter: 1 },
          );
        }
        if (outcome.bodyHash !== idempotency?.bodyHash) {
          throw new ProblemError('OB_ERR_IDEMPOTENCY_CONFLICT', `this Idempotency-Key was used for job ${outcome.jobId} with a different body`, { jobId: outcome.jobId });
        }
        const existing = await this.store.get(outcome.jobId);
        if (existing) {
          await this.store.remove(id, chunks);
          return { record: existing, created: false };
        }
        // The job the key named was deleted just now: the key is free, commit this one.
        if (attempt >= COMMIT_ATTEMPTS) throw new Error('the job named by this Idempotency-Key keeps vanishing');
      }
      committed = record;
    } catch (error) {
      keepAlive.stop();
      await Promise.allSettled(inFlight);
      await this.store.remove(id, chunks).catch((e: unknown) => this.logger.warn('could not remove a rejected job', { jobId: id, error: String(e) }));
      throw error;
    } finally {
      keepAlive.stop();
    }
    return this.enqueueCommitted(committed);
  }

  /**
   * Queues a committed job. From the commit on the job will run whatever happens next (its
   * outbox entry outlives a crash here), so the answer is 202 even when queueing fails now.
   */
  private async enqueueCommitted(record: JobRecord): Promise<{ record: JobRecord; created: boolean }> {
    const id = record.id;
    this.hooks.afterCommit?.(id);
    const warn = (message: string) => (error: unknown) => this.logger.warn(message, { jobId: id, error: String(error) });
    try {
      await this.enqueuer.enqueue(record);
      this.store.outbox.markQueued(id).catch(warn('could not clear an outbox entry; the recovery sweep will'));
    } catch (error) {
      warn("job committed but not queued yet; the workers' recovery sweep will queue it")(error);
    }
    this.logger.info('job queued', { jobId: id, model: record.model, version: record.version, rows: record.total, chunks: record.chunks, tenant: record.tenant });
    for (const listener of this.accepted) listener(record);
    return { record, created: true };
  }

  private tooManyActiveJobs(): ProblemError {
    return new ProblemError('OB_ERR_TOO_MANY_ACTIVE_JOBS', `this tenant already has ${this.config.MAX_ACTIVE_JOBS_PER_TENANT} unfinished jobs; wait for some to finish`, { retryAfter: 5 });
  }

  /**
   * Renews the TTL of the chunks staged so far every third of STAGING_TTL_SECONDS, so an upload
   * that pauses (a slow or flaky client) keeps what it staged for as long as it is arriving.
   */
  private keepStagedAlive(id: string, staged: () => number): { stop: () => void } {
    const ttl = this.config.STAGING_TTL_SECONDS;
    const timer = setInterval(() => {
      this.store.staging.keepAlive(id, staged(), ttl).catch((error: unknown) => this.logger.warn('could not renew staged inputs', { jobId: id, error: String(error) }));
    }, (ttl * 1000) / 3);
    timer.unref();
    return { stop: () => clearInterval(timer) };
  }
}

function invalidRows(errors: FieldError[]): ProblemError {
  const first = errors[0] as FieldError;
  const where = first.row !== undefined ? `row ${first.row}` : `line ${first.line ?? '?'}`;
  const field = first.field ? `: field '${first.field}'` : ':';
  const more = errors.length > 1 ? ` (and ${errors.length - 1} more error${errors.length > 2 ? 's' : ''})` : '';
  return new ProblemError('OB_ERR_INVALID_ROWS', `${where}${field} ${first.message}${more}; nothing was queued`, { errors });
}
