import { randomUUID } from 'node:crypto';
import type { FlowProducer, Queue } from 'bullmq';
import {
  ChunkEncoder,
  chunkJobId,
  chunkJobOptions,
  JobName,
  QueueName,
  ProblemError,
  type Config,
  type FieldError,
  type JobRecord,
  type JobStore,
  type Logger,
  type ModelVersion,
  type RunChunkData,
} from '@onnx-batch/shared';

/** Most row errors reported for one rejected batch; validation stops there. */
export const MAX_REPORTED_ROW_ERRORS = 20;
/** Chunk writes in flight at once while staging (bounds memory and keeps Redis busy). */
const STAGING_WINDOW = 4;

export interface SubmitRequest {
  model: ModelVersion;
  rows: Iterable<unknown> | AsyncIterable<unknown>;
  tenant: string;
  priority: number;
  callbackUrl: string | null;
  /** An Idempotency-Key (hashed) and the hash of the body, known once the body has been read. */
  idempotency?: { keyHash: string; bodyHash: () => string };
  /** How a row is named in errors: by 0-based index (JSON), or by the 1-based line the source is at (streamed input). */
  rowLocation: 'row' | (() => number);
}

/**
 * Validates, encodes and stages a batch chunk by chunk, then commits it: the job record is
 * written and the chunk jobs are queued only once every row has passed. Anything staged for a
 * rejected batch is deleted, so nothing of it can run.
 */
export class JobSubmitter {
  constructor(
    private readonly store: JobStore,
    private readonly chunks: Queue<RunChunkData>,
    private readonly flows: FlowProducer,
    private readonly config: Pick<
      Config,
      'CHUNK_SIZE' | 'MAX_ROWS_PER_JOB' | 'STAGING_TTL_SECONDS' | 'JOB_ATTEMPTS' | 'JOB_BACKOFF_MS' | 'MAX_ACTIVE_JOBS_PER_TENANT'
    >,
    private readonly logger: Logger,
  ) {}

  /**
   * A one-chunk job is a single chunk job: the fast path for tiny interactive requests (the
   * chunk's own completion finishes the job). A bigger batch is a BullMQ flow: its chunks are
   * children of a `finalize-batch` parent that runs once all of them have, and catches any chunk
   * that failed without recording its rows. Children never fail their parent
   * (`ignoreDependencyOnFailure`), so a parent cannot hang in waiting-children.
   */
  private async enqueue(id: string, chunks: number, priority: number): Promise<void> {
    const chunkJob = (chunk: number) => ({
      name: JobName.RunChunk,
      data: { jobId: id, chunk } satisfies RunChunkData,
      opts: { jobId: chunkJobId(id, chunk), priority },
    });
    if (chunks === 1) {
      await this.chunks.add(JobName.RunChunk, { jobId: id, chunk: 0 }, chunkJob(0).opts);
      return;
    }
    const options = chunkJobOptions(this.config);
    await this.flows.add({
      name: JobName.FinalizeBatch,
      queueName: QueueName.Batches,
      data: { jobId: id },
      opts: { ...options, jobId: id, priority },
      children: Array.from({ length: chunks }, (_, chunk) => {
        const job = chunkJob(chunk);
        return { ...job, queueName: QueueName.Chunks, opts: { ...options, ...job.opts, ignoreDependencyOnFailure: true } };
      }),
    });
  }

  /**
   * Validates, stages and commits a batch. Answers the job and whether it is new: a repeated
   * Idempotency-Key with the same body answers the job it created first.
   */
  async submit(request: SubmitRequest): Promise<{ record: JobRecord; created: boolean }> {
    if (!(await this.store.belowActiveLimit(request.tenant, this.config.MAX_ACTIVE_JOBS_PER_TENANT))) {
      throw new ProblemError('OB_ERR_TOO_MANY_ACTIVE_JOBS', `this tenant already has ${this.config.MAX_ACTIVE_JOBS_PER_TENANT} unfinished jobs; wait for some to finish`, {
        retryAfter: 5,
      });
    }
    const { manifest, validator } = request.model;
    const id = randomUUID();
    const chunkSize = manifest.chunkSize ?? this.config.CHUNK_SIZE;
    const encoder = new ChunkEncoder(manifest, chunkSize);
    const errors: FieldError[] = [];
    const inFlight = new Set<Promise<unknown>>();
    let chunks = 0;
    const locate = (index: number): FieldError =>
      request.rowLocation === 'row' ? { row: index, message: '' } : { line: request.rowLocation(), message: '' };

    const stage = async (): Promise<void> => {
      const write = this.store.stageInput(id, chunks++, encoder.finish(), this.config.STAGING_TTL_SECONDS);
      inFlight.add(write);
      void write.finally(() => inFlight.delete(write)).catch(() => undefined);
      if (inFlight.size >= STAGING_WINDOW) await Promise.race(inFlight);
    };

    try {
      let index = 0;
      for await (const row of request.rows) {
        if (index >= this.config.MAX_ROWS_PER_JOB) {
          throw new ProblemError('OB_ERR_TOO_MANY_ROWS', `a job may hold at most ${this.config.MAX_ROWS_PER_JOB} rows`);
        }
        const problem = validator.check(row) ?? (errors.length === 0 ? encoder.add(row) : null);
        if (problem) {
          errors.push({ ...locate(index), ...problem });
          if (errors.length >= MAX_REPORTED_ROW_ERRORS || request.rowLocation !== 'row') break; // streamed: answer now, while the client is still sending
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
      const idempotency = request.idempotency;
      if (idempotency) {
        const bodyHash = idempotency.bodyHash();
        const claimed = await this.store.claimIdempotencyKey(request.tenant, idempotency.keyHash, id, bodyHash);
        if (claimed) {
          await this.store.remove(id, chunks);
          if (claimed.bodyHash !== bodyHash) {
            throw new ProblemError('OB_ERR_IDEMPOTENCY_CONFLICT', `this Idempotency-Key was used for job ${claimed.jobId} with a different body`, { jobId: claimed.jobId });
          }
          const existing = await this.store.get(claimed.jobId);
          if (existing) return { record: existing, created: false };
        }
      }
      try {
        await this.store.commit(record, lastInput);
        await this.store.addActiveJob(request.tenant, id);
        await this.enqueue(id, chunks, request.priority);
      } catch (error) {
        if (idempotency) await this.store.releaseIdempotencyKey(request.tenant, idempotency.keyHash).catch(() => undefined);
        throw error;
      }
      this.logger.info('job queued', { jobId: id, model: manifest.name, version: manifest.version, rows, chunks, tenant: request.tenant });
      return { record, created: true };
    } catch (error) {
      await Promise.allSettled(inFlight);
      await this.store.remove(id, chunks).catch((e: unknown) => this.logger.warn('could not remove a rejected job', { jobId: id, error: String(e) }));
      throw error;
    }
  }
}

function invalidRows(errors: FieldError[]): ProblemError {
  const first = errors[0] as FieldError;
  const where = first.row !== undefined ? `row ${first.row}` : `line ${first.line ?? '?'}`;
  const field = first.field ? `: field '${first.field}'` : ':';
  const more = errors.length > 1 ? ` (and ${errors.length - 1} more error${errors.length > 2 ? 's' : ''})` : '';
  return new ProblemError('OB_ERR_INVALID_ROWS', `${where}${field} ${first.message}${more}; nothing was queued`, { errors });
}
