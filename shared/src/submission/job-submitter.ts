import type { Config } from '../config';
import type { JobRecord } from '../jobs/job-record';
import type { JobStore } from '../jobs/job-store';
import type { Logger } from '../logger';
import { idempotencyClaimName, newJobId } from '../redis-keys';
import type { JobEnqueuer } from './chunk-enqueuer';
import type { JobAdmission } from './job-admission';
import { JobCommitter, tooManyActiveJobs, type CommittedJob } from './job-committer';
import type { ModelSelection } from './model-router';
import { RowStager, type RowsToStage } from './row-stager';

export type SubmitRequest = RowsToStage & SubmitEnvelope;

interface SubmitEnvelope {
  /** The model asked for; its version is chosen (by the rollout) once the job has an id. */
  model: ModelSelection;
  tenant: string;
  priority: number;
  callbackUrl: string | null;
  /** An Idempotency-Key (hashed) and the hash of the body, known once the body has been read. */
  idempotency?: { keyHash: string; bodyHash: () => string };
}

export interface SubmitterOptions {
  hooks?: SubmitterHooks | undefined;
  admission?: JobAdmission | undefined;
}

/** Points tests can hook into to crash the process at the worst moment (see test/reliability). */
export interface SubmitterHooks {
  /** Called after a job is committed and before it is queued. */
  afterCommit?: (jobId: string) => void;
}

/**
 * Submits a batch in four steps, each in its own file, once Redis is known to have room for it
 * (JobAdmission): route (pick the version by job id, model-router.ts), stage (validate, encode,
 * write chunk by chunk, row-stager.ts), commit (one atomic step with the Idempotency-Key and the
 * tenant's limit, job-committer.ts), enqueue (chunk-enqueuer.ts). Anything staged for a refused batch is deleted, so nothing of it can run.
 * The API submits uploads through it, the scheduler the files of a schedule's tick.
 *
 * A 202 is a promise that every row runs: staged inputs are kept alive while the upload is
 * still arriving; the commit checks atomically that every one of them still exists; a committed
 * job sits in its outbox until it is known to be queued, so a crash between commit and enqueue
 * is repaired by the workers' recovery sweep.
 */
export class JobSubmitter {
  private readonly accepted = new Set<(record: JobRecord) => void>();
  private readonly stager: RowStager;
  private readonly committer: JobCommitter;

  constructor(
    private readonly store: JobStore,
    private readonly enqueuer: JobEnqueuer,
    private readonly config: Pick<Config, 'CHUNK_SIZE' | 'MAX_ROWS_PER_JOB' | 'STAGING_TTL_SECONDS' | 'MAX_ACTIVE_JOBS_PER_TENANT'>,
    private readonly logger: Logger,
    private readonly options: SubmitterOptions = {},
  ) {
    this.stager = new RowStager(store, config, logger, options.admission);
    this.committer = new JobCommitter(store, config, logger);
  }

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
    await this.options.admission?.admit();
    // A streamed upload may be long: refuse it before reading when the tenant is at its limit.
    // (The commit checks the limit again, atomically; a JSON body is already read.)
    const streamed = 'columns' in request || request.rowLocation !== 'row';
    if (
      (streamed || !this.store.singleNode) &&
      !(await this.store.tenants.belowActiveLimit(request.tenant, this.config.MAX_ACTIVE_JOBS_PER_TENANT))
    ) {
      throw tooManyActiveJobs(this.config.MAX_ACTIVE_JOBS_PER_TENANT);
    }
    const claim = request.idempotency ? idempotencyClaimName(request.tenant, request.idempotency.keyHash) : undefined;
    const id = newJobId(claim);
    const routed = request.model.choose(id);
    const written = { chunks: 0 };
    let outcome: CommittedJob;
    try {
      const staged = await this.stager.stage(id, routed.model, request, written);
      const { manifest } = routed.model;
      const record: JobRecord = {
        id,
        tenant: request.tenant,
        model: manifest.name,
        version: manifest.version,
        route: routed.arm,
        rolloutRevision: routed.revision,
        status: 'queued',
        total: staged.rows,
        done: 0,
        failed: 0,
        chunks: staged.chunks,
        chunksDone: 0,
        chunkSize: staged.chunkSize,
        priority: request.priority,
        callbackUrl: request.callbackUrl,
        createdAt: new Date().toISOString(),
        startedAt: null,
        finishedAt: null,
        error: null,
        ...('columns' in request && request.passthrough?.length ? { passthrough: request.passthrough } : {}),
      };
      const idempotency = claim && request.idempotency ? { claim, bodyHash: request.idempotency.bodyHash() } : undefined;
      outcome = await this.committer.commit({ record, lastInput: staged.lastInput, idempotency });
    } catch (error) {
      await this.store
        .remove(id, written.chunks)
        .catch((e: unknown) => this.logger.warn('could not remove a rejected job', { jobId: id, error: String(e) }));
      throw error;
    }
    return outcome.created ? this.enqueueCommitted(outcome.record, outcome.listed !== false) : outcome;
  }

  /**
   * Queues a committed job. From the commit on the job will run whatever happens next (its
   * outbox entry outlives a crash here), so the answer is 202 even when queueing fails now.
   */
  private async enqueueCommitted(record: JobRecord, listed: boolean): Promise<{ record: JobRecord; created: boolean }> {
    const id = record.id;
    this.options.hooks?.afterCommit?.(id);
    const warn = (message: string) => (error: unknown) => this.logger.warn(message, { jobId: id, error: String(error) });
    try {
      await this.enqueuer.enqueue(record);
      // A job not listed yet (a cluster's list was out of reach) keeps its outbox entry: the sweep lists it.
      if (listed) this.store.outbox.markQueued(id).catch(warn('could not clear an outbox entry; the recovery sweep will'));
    } catch (error) {
      warn("job committed but not queued yet; the workers' recovery sweep will queue it")(error);
    }
    this.logger.info('job queued', {
      jobId: id,
      model: record.model,
      version: record.version,
      rows: record.total,
      chunks: record.chunks,
      tenant: record.tenant,
    });
    for (const listener of this.accepted) listener(record);
    return { record, created: true };
  }
}
