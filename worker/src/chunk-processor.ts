import { UnrecoverableError, type Job } from 'bullmq';
import { isFinished, makeProblem, type RouteArm } from '@onnx-batch/contracts';
import {
  decodeChunk,
  decodeResultChunk,
  qualityKindOf,
  DecryptionError,
  encodeResultChunk,
  isOutOfMemoryError,
  failedResultChunk,
  ModelNotFoundError,
  peekRows,
  VersionNotFoundError,
  rowDigests,
  type PredictionCache,
  type CompletedChunk,
  type JobRecord,
  type JobStore,
  type Logger,
  type ModelRepository,
  type ModelVersion,
  type QualityStore,
  type RunChunkData,
  type RunChunkGroupData,
} from '@onnx-batch/shared';
import type { InferencePool } from './inference-pool';
import type { ChunkOutcome } from './inference-protocol';

export type ChunkResult = { outcome: string };

/** What the processor knows of a chunk it has begun. */
export interface ChunkContext {
  jobId: string;
  chunk: number;
  model: string;
  version: string;
  route: RouteArm;
  rolloutRevision: number;
}

/**
 * What happens to chunks and jobs, for those who watch (metrics, rollout statistics, shadow
 * runs): told explicitly by the processor, never by patching the store. A listener must not
 * throw (its errors are logged and dropped: watching never fails a chunk).
 */
export interface ChunkListener {
  /** Before the run: answers an extra run of this chunk on another version (shadow), with a copy of the input kept for it. */
  shadowFor?(context: ChunkContext): Promise<ModelVersion | null>;
  /** A chunk's results were recorded, once (a duplicate re-run is not told). `shadowInput` is set when shadowFor asked for it. */
  chunkRecorded?(context: ChunkContext, outcome: ChunkOutcome, shadow: { model: ModelVersion; input: Buffer } | null): void;
  /** A chunk whose rows could not be run was recorded as failed rows. */
  chunkFailed?(record: JobRecord, rows: number): void;
  /** A job finished (its final record). */
  jobFinished?(record: JobRecord): void;
}

/** What a ChunkProcessor works with. */
export interface ChunkProcessorDeps {
  store: JobStore;
  repository: ModelRepository;
  pool: InferencePool;
  logger: Logger;
  /** Told of each job this processor finished (queues its webhook); idempotent. */
  notifyFinished?: (record: JobRecord) => Promise<void>;
  listeners?: readonly ChunkListener[];
  /** Filled with the results of small chunks of the models it is on for. */
  cache?: PredictionCache | null;
  /**
   * Where a write Redis refused at maxmemory waits for room (StorageGuard): a full Redis delays a
   * chunk, it never fails it or marks its rows failed. Without it such a write fails the attempt.
   */
  storage?: { waitForRoom(signal?: AbortSignal): Promise<void> } | null;
  /** Aborted when the worker shuts down: a chunk still waiting for room is then handed back (a failed attempt). */
  closing?: AbortSignal;
  hooks?: ChunkProcessorHooks;
  /** Keeps each chunk's predictions of a classifier or regression model for ground-truth labels (quality/quality-store.ts). */
  quality?: QualityStore | null;
}

/** Points tests hook into to make Redis full at the worst moment (test/reliability/redis-memory.test.ts). */
export interface ChunkProcessorHooks {
  /** Called when a chunk job is taken, before its chunk is begun in Redis. */
  beforeBegin?: (jobId: string, chunk: number) => Promise<void>;
}

/**
 * Runs one chunk: reads its input, runs it through an inference thread, and records its
 * results exactly once. Throwing hands the chunk back to BullMQ for a retry with backoff;
 * on the last attempt the chunk's rows are recorded as failed instead, so the job still
 * finishes and says which rows failed and why.
 */
export class ChunkProcessor {
  private readonly store: JobStore;
  private readonly repository: ModelRepository;
  private readonly pool: InferencePool;
  private readonly logger: Logger;
  private readonly notifyFinished: (record: JobRecord) => Promise<void>;
  private readonly listeners: readonly ChunkListener[];
  private readonly cache: PredictionCache | null;
  private readonly storage: ChunkProcessorDeps['storage'];
  private readonly closing: AbortSignal | undefined;
  private readonly hooks: ChunkProcessorHooks;
  private readonly quality: QualityStore | null;

  constructor(deps: ChunkProcessorDeps) {
    this.store = deps.store;
    this.repository = deps.repository;
    this.pool = deps.pool;
    this.logger = deps.logger;
    this.notifyFinished = deps.notifyFinished ?? (() => Promise.resolve());
    this.listeners = deps.listeners ?? [];
    this.cache = deps.cache ?? null;
    this.storage = deps.storage ?? null;
    this.closing = deps.closing;
    this.hooks = deps.hooks ?? {};
    this.quality = deps.quality ?? null;
  }

  async process(job: Job<RunChunkData>): Promise<ChunkResult> {
    const { jobId, chunk } = job.data;
    const log = this.logger.child({ jobId, chunk, attempt: job.attemptsMade + 1 });
    try {
      return await this.run(jobId, chunk, log);
    } catch (error) {
      const final = error instanceof UnrecoverableError || job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
      if (!final) {
        log.warn('chunk failed; it will be retried', { error: (error as Error).message });
        throw error;
      }
      log.error('chunk failed for good; its rows are marked failed', { error: (error as Error).message });
      return this.recordChunkFailure(jobId, chunk, (error as Error).message);
    }
  }

  /**
   * A group of one-chunk jobs queued together (see shared/src/submission/chunk-enqueuer.ts): each runs as a
   * chunk of its own, all at once (the inference pool joins them into one batch). A member that
   * fails in a way a retry may fix makes the group retry; members already done are then skipped.
   * On the last attempt a failing member's rows are recorded as failed, as for a lone chunk.
   */
  async processGroup(job: Job<RunChunkGroupData>): Promise<ChunkResult> {
    const final = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
    const settled = await Promise.allSettled(
      job.data.chunks.map(({ jobId, chunk }) => this.run(jobId, chunk, this.logger.child({ jobId, chunk, group: job.id }))),
    );
    const failures: string[] = [];
    for (const [i, result] of settled.entries()) {
      if (result.status === 'fulfilled') continue;
      const member = job.data.chunks[i] as RunChunkData;
      const message = result.reason instanceof Error ? result.reason.message : String(result.reason);
      if (final || result.reason instanceof UnrecoverableError) {
        this.logger.error('chunk failed for good; its rows are marked failed', {
          jobId: member.jobId,
          chunk: member.chunk,
          group: job.id,
          error: message,
        });
        await this.recordChunkFailure(member.jobId, member.chunk, message);
      } else {
        failures.push(`${member.jobId}.${member.chunk}: ${message}`);
      }
    }
    if (failures.length > 0)
      throw new Error(`${failures.length} of ${settled.length} chunks of the group failed; it will be retried (${failures[0] ?? ''})`);
    return { outcome: `group of ${settled.length}` };
  }

  private async run(jobId: string, chunk: number, log: Logger): Promise<ChunkResult> {
    await this.hooks.beforeBegin?.(jobId, chunk);
    const begun = await this.whenStored('beginning the chunk', log, () => this.store.beginChunk(jobId, chunk, new Date())).catch(
      (error: unknown) => {
        // Input encrypted under another key (or not at all): no retry can read it.
        throw error instanceof DecryptionError ? new UnrecoverableError(error.message) : error;
      },
    );
    // A re-run of a chunk whose results exist may follow a crash before its job's webhook was queued.
    if (begun.state === 'done') await this.announceIfFinished(jobId);
    if (begun.state !== 'running') {
      // Deleted, cancelled, already done by an earlier attempt: nothing to run.
      if (begun.state === 'noinput') throw new UnrecoverableError('the chunk input is gone (expired or deleted)');
      log.debug('chunk skipped', { state: begun.state });
      return { outcome: begun.state };
    }
    const model = await this.resolveModel(begun.model, begun.version);
    const context: ChunkContext = {
      jobId,
      chunk,
      model: begun.model,
      version: begun.version,
      route: begun.route,
      rolloutRevision: begun.rolloutRevision,
    };
    const shadow = await this.shadowFor(context);
    // The pool moves the input to its thread: a shadow run needs a copy of its own.
    const shadowRun = shadow ? { model: shadow, input: Buffer.from(begun.input) } : null;
    // Rows of a small chunk of a cached model: their digests, taken before the pool moves the input away.
    const caching = this.cache?.enabledFor(begun.model) === true && peekRows(begun.input) <= (this.cache?.maxRows ?? 0);
    const digests = caching ? rowDigests(model.manifest, decodeChunk(begun.input)) : null;
    const outcome = await this.pool.run(model, begun.input);
    // Kept before the results are recorded: a crash in between re-runs the chunk, which keeps them
    // again (once); after, a recorded chunk without kept predictions could never be labelled.
    await this.keepPredictions(model, begun, jobId, chunk, outcome, log);
    const failure = makeProblem('OB_ERR_INFERENCE_FAILED', outcome.firstError ?? 'every row failed');
    const completed = await this.whenStored('recording its results', log, () =>
      this.store.completeChunk(jobId, chunk, outcome.results, outcome.rows, outcome.failedRows, failure, new Date()),
    );
    log.debug('chunk done', {
      rows: outcome.rows,
      failedRows: outcome.failedRows,
      inferenceMs: outcome.inferenceMs,
      batchRows: outcome.batchRows,
      recorded: completed.outcome,
    });
    if (completed.outcome === 'recorded' || completed.outcome === 'finished')
      this.tell((l) => l.chunkRecorded?.(context, outcome, shadowRun));
    if (digests && outcome.output) {
      await this.cache
        ?.set(begun.model, begun.version, digests, outcome.output.data, outcome.output.width)
        .catch((error: unknown) => log.warn('could not fill the prediction cache', { error: String(error) }));
    }
    await this.finished(completed, log);
    return { outcome: completed.outcome };
  }

  private async keepPredictions(
    model: ModelVersion,
    begun: Extract<Awaited<ReturnType<JobStore['beginChunk']>>, { state: 'running' }>,
    jobId: string,
    chunk: number,
    outcome: ChunkOutcome,
    log: Logger,
  ): Promise<void> {
    const kind = qualityKindOf(model.manifest);
    if (!this.quality || !outcome.output || !kind) return;
    const quality = this.quality;
    const output = outcome.output;
    const ids = decodeResultChunk(Buffer.from(outcome.results.buffer, outcome.results.byteOffset, outcome.results.byteLength)).ids;
    await this.whenStored('keeping its predictions for labels', log, () =>
      quality.recordChunk({
        pointer: {
          jobId,
          tenant: begun.job.tenant,
          model: begun.model,
          version: begun.version,
          arm: begun.route,
          kind,
          labels: kind === 'classification' ? [...(model.manifest.result.labels ?? [])] : [],
          total: begun.job.total,
          chunkSize: begun.job.chunkSize,
          chunks: begun.job.chunks,
        },
        chunk,
        rows: outcome.rows,
        values: output.data,
        width: output.width,
        ids,
      }),
    );
  }

  private async shadowFor(context: ChunkContext): Promise<ModelVersion | null> {
    for (const listener of this.listeners) {
      const shadow = await listener.shadowFor?.(context).catch(() => null);
      if (shadow) return shadow;
    }
    return null;
  }

  /** The job's model version; a version added after start-up is picked up by a rescan. */
  private async resolveModel(name: string, version: string): Promise<ModelVersion> {
    try {
      return this.repository.resolve(name, version);
    } catch (error) {
      if (!(error instanceof ModelNotFoundError || error instanceof VersionNotFoundError)) throw error;
      await this.repository.refresh();
      try {
        return this.repository.resolve(name, version);
      } catch (again) {
        throw new UnrecoverableError(again instanceof Error ? again.message : String(again));
      }
    }
  }

  /** Records every row of a chunk as failed with the reason (the chunk cannot be run). */
  async recordChunkFailure(jobId: string, chunk: number, reason: string): Promise<ChunkResult> {
    const log = this.logger.child({ jobId, chunk });
    const record = await this.store.get(jobId);
    if (!record) return { outcome: 'gone' };
    const rows = Math.max(0, Math.min(record.chunkSize, record.total - chunk * record.chunkSize));
    const message = `the chunk holding this row could not be run: ${reason}`;
    const results = encodeResultChunk(
      failedResultChunk(this.repository.find(record.model, record.version)?.manifest ?? null, rows, {
        code: 'OB_ERR_INFERENCE_FAILED',
        message,
      }),
    );
    const failure = makeProblem('OB_ERR_INFERENCE_FAILED', message);
    const completed = await this.whenStored('recording its failed rows', log, () =>
      this.store.completeChunk(jobId, chunk, results, rows, rows, failure, new Date()),
    );
    if (completed.outcome === 'recorded' || completed.outcome === 'finished') this.tell((l) => l.chunkFailed?.(record, rows));
    await this.finished(completed, log);
    return { outcome: completed.outcome };
  }

  private async finished(completed: CompletedChunk, log: Logger): Promise<void> {
    const record = completed.record;
    if (completed.outcome !== 'finished' || !record) return;
    log.info('job finished', { model: record.model, version: record.version, status: record.status });
    this.tell((l) => l.jobFinished?.(record));
    await this.whenStored('queueing its webhook', log, () => this.notifyFinished(record));
  }

  /**
   * Runs a Redis write, and again once there is room whenever Redis refuses it at maxmemory (an
   * `OOM` reply): the work it records is already done, and a retry through BullMQ would count an
   * attempt and, on the last one, mark the chunk's rows failed. Each write below is idempotent.
   */
  private async whenStored<T>(what: string, log: Logger, write: () => Promise<T>): Promise<T> {
    for (let waited = false; ; waited = true) {
      try {
        return await write();
      } catch (error) {
        if (!this.storage || !isOutOfMemoryError(error)) throw error;
        if (this.closing?.aborted)
          throw new Error(`Redis is full and the worker is shutting down: ${what} is handed back`, { cause: error });
        if (!waited) log.warn(`Redis is full (maxmemory): ${what} waits for room`, { error: (error as Error).message });
        await this.storage.waitForRoom(this.closing);
      }
    }
  }

  /** Tells notifyFinished about a job that has finished (nothing when it is gone or running). */
  private async announceIfFinished(jobId: string): Promise<void> {
    const record = await this.store.get(jobId);
    if (record && isFinished(record.status)) await this.notifyFinished(record);
  }

  private tell(call: (listener: ChunkListener) => void): void {
    for (const listener of this.listeners) {
      try {
        call(listener);
      } catch (error) {
        this.logger.warn('a chunk listener failed', { error: String(error) });
      }
    }
  }
}
