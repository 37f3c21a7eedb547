import type { Config } from '../config';
import { ProblemError } from '@onnx-batch/contracts';
import type { JobRecord } from '../jobs/job-record';
import type { JobStore } from '../jobs/job-store';
import type { Logger } from '../logger';
import type { IdempotencyClaimName } from '../redis-keys';

/** Commit attempts when the job an Idempotency-Key named vanishes between the commit and the read. */
const COMMIT_ATTEMPTS = 3;

export interface CommitRequest {
  record: JobRecord;
  /** The last chunk's input, written by the commit itself. */
  lastInput: Buffer | undefined;
  /** The Idempotency-Key's claim and the body's hash, when the request carried a key. */
  idempotency?: { claim: IdempotencyClaimName; bodyHash: string } | undefined;
}

/** A job committed now (`created`) or earlier under the same Idempotency-Key; `listed` false: not in its tenant's list yet. */
export interface CommittedJob {
  record: JobRecord;
  created: boolean;
  listed?: boolean;
}

/**
 * Makes a staged job real in one atomic step (JobStore.commit): claims its Idempotency-Key,
 * checks its staged chunks are all there, checks and counts the tenant's unfinished jobs. Answers
 * the job committed, or the job an earlier submit with the same key and body made; throws a
 * problem for anything a client must hear (a conflicting key, a lost chunk, the tenant's limit).
 */
export class JobCommitter {
  constructor(
    private readonly store: JobStore,
    private readonly config: Pick<Config, 'MAX_ACTIVE_JOBS_PER_TENANT'>,
    private readonly logger: Logger,
  ) {}

  async commit(request: CommitRequest): Promise<CommittedJob> {
    const { record, lastInput, idempotency } = request;
    const id = record.id;
    let pruned = false;
    for (let attempt = 1; ; attempt++) {
      const outcome = await this.store.commit(record, { lastInput, idempotency, activeLimit: this.config.MAX_ACTIVE_JOBS_PER_TENANT });
      switch (outcome.state) {
        case 'committed': {
          // Answered 202 all the same: the job is committed on the primary and will run; only a
          // fail-over before a replica catches up could lose it (docs/operations.md, Sentinel).
          const replicas = outcome.replicas;
          if (replicas && replicas.acknowledged < replicas.wanted) {
            this.logger.warn('job committed but not yet on enough Redis replicas', {
              jobId: id,
              acknowledged: replicas.acknowledged,
              wanted: replicas.wanted,
            });
          }
          if (!outcome.countedActive)
            this.store.tenants
              .add(record.tenant, id)
              .catch((error: unknown) => this.logger.warn('could not count an active job', { jobId: id, error: String(error) }));
          if (!outcome.listed) this.logger.warn('job committed but not listed yet; the recovery sweep will list it', { jobId: id });
          return { record, created: true, listed: outcome.listed };
        }
        case 'limit':
          // The set also holds jobs that finished since it was last pruned: prune, then try once more.
          if (pruned || (await this.store.tenants.activeJobs(record.tenant)) >= this.config.MAX_ACTIVE_JOBS_PER_TENANT)
            throw tooManyActiveJobs(this.config.MAX_ACTIVE_JOBS_PER_TENANT);
          pruned = true;
          break;
        case 'lost':
          throw new ProblemError(
            'OB_ERR_STAGING_LOST',
            `chunk ${outcome.chunk} of this upload expired or was evicted from Redis before the job could be committed; nothing ` +
              `was queued: submit it again`,
            { retryAfter: 1 },
          );
        case 'claimed': {
          if (outcome.bodyHash !== idempotency?.bodyHash) {
            throw new ProblemError(
              'OB_ERR_IDEMPOTENCY_CONFLICT',
              `this Idempotency-Key was used for job ${outcome.jobId} with a different body`,
              { jobId: outcome.jobId },
            );
          }
          const existing = await this.store.get(outcome.jobId);
          if (existing) {
            await this.store.remove(id, record.chunks);
            return { record: existing, created: false };
          }
          // The job the key named was deleted just now: the key is free, commit this one.
          if (attempt >= COMMIT_ATTEMPTS) throw new Error('the job named by this Idempotency-Key keeps vanishing');
          break;
        }
      }
    }
  }
}

export function tooManyActiveJobs(limit: number): ProblemError {
  return new ProblemError('OB_ERR_TOO_MANY_ACTIVE_JOBS', `this tenant already has ${limit} unfinished jobs; wait for some to finish`, {
    retryAfter: 5,
  });
}
