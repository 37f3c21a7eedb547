import { randomUUID } from 'node:crypto';
import type { Job } from 'bullmq';
import {
  isJobNamed,
  JobName,
  parseChunkJobId,
  type Config,
  type JobStore,
  type Logger,
  type QueueShards,
  type RedisClient,
  type RunChunkData,
  type RunChunkGroupData,
} from '@onnx-batch/shared';
import type { BatchFinalizer } from './batch-finalizer';
import type { ChunkProcessor } from './chunk-processor';
import type { RolloutGuard } from './rollout-guard';

/** Failed BullMQ jobs the sweep looks back over: a worker that died mid-handler is caught within this. */
const FAILED_LOOKBACK_MS = 15 * 60 * 1000;
/** Outbox entries handled per tag and sweep (a backlog drains over a few sweeps). */
const OUTBOX_BATCH = 100;

export interface ReconcilerDeps {
  store: JobStore;
  redis: RedisClient;
  /** The chunk queues (and their flows' parents), every shard. */
  queues: QueueShards;
  processor: ChunkProcessor;
  finalizer: BatchFinalizer;
  /** Judges rollouts' auto-rollback rules on the same cadence, by the same one worker. */
  guard?: RolloutGuard;
  config: Pick<Config, 'RECOVERY_INTERVAL_MS' | 'JOB_ATTEMPTS' | 'JOB_BACKOFF_MS'>;
  logger: Logger;
}

/**
 * Keeps the promise of a 202 when a process dies at the worst moment:
 *
 * - a chunk (or finalize) job that BullMQ fails outside the processor — it stalled more than
 *   MAX_STALLED_COUNT times, or lost its lock — has its rows recorded as failed, so its job ends
 *   (a one-chunk job has no finalizer that would otherwise notice). `onFailed` does this at once
 *   from the worker's `failed` event; the sweep catches the ones whose worker died before it could;
 * - a job an API committed but did not queue (it crashed in between) sits in its outbox; the
 *   sweep queues it (BullMQ ids are derived from the job id, so this never runs a job twice).
 *
 * One worker at a time sweeps (a lock in Redis); every step is idempotent, so two at once would
 * only repeat work.
 */
export class Reconciler {
  private readonly owner = randomUUID();
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  /** Until when this worker last looked at failed jobs: later sweeps look back only a little before it. */
  private failedSweptUntil = 0;

  constructor(private readonly deps: ReconcilerDeps) {}

  start(): void {
    this.timer = setInterval(() => {
      this.running ??= this.sweep()
        .catch((error: unknown) => {
          this.deps.logger.warn('recovery sweep failed', { error: String(error) });
        })
        .finally(() => {
          this.running = null;
        });
    }, this.deps.config.RECOVERY_INTERVAL_MS);
    this.timer.unref();
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
  }

  /** A BullMQ job failed (maybe only this attempt): when it failed for good, make sure its job can end. */
  async onFailed(job: Job, reason: string): Promise<void> {
    if (!(await job.isFailed())) return; // it will be retried
    if (isJobNamed(job, JobName.RunChunk) || isJobNamed(job, JobName.RunChunkGroup)) {
      for (const { jobId, chunk } of membersOf(job.data)) await this.failChunk(jobId, chunk, reason);
    } else if (isJobNamed(job, JobName.FinalizeBatch)) {
      await this.deps.finalizer.finalize(job.data.jobId);
    }
  }

  /** One sweep, if this worker holds the lock. */
  async sweep(now = Date.now()): Promise<void> {
    const { redis, store, config } = this.deps;
    const lock = store.keys.reconcilerLock();
    const held = await redis.set(lock, this.owner, 'PX', config.RECOVERY_INTERVAL_MS * 2, 'NX');
    if (held !== 'OK' && (await redis.get(lock)) !== this.owner) return;
    await redis.pexpire(lock, config.RECOVERY_INTERVAL_MS * 2);
    await this.queueOrphans(now - config.RECOVERY_INTERVAL_MS);
    await this.failAbandonedChunks(now);
    await this.deps.guard?.check();
  }

  /** Committed jobs still in their outbox after the grace period: list them (idempotent) and queue them unless they are. */
  private async queueOrphans(before: number): Promise<void> {
    const { store, queues, config, logger } = this.deps;
    for (const id of await store.outbox.staleEntries(before, OUTBOX_BATCH)) {
      const record = await store.get(id);
      if (record && record.status === 'queued' && !(await queues.isEnqueued(record))) {
        await queues.enqueue(record, config);
        logger.warn('queued a job its API committed but did not queue (it stopped in between)', { jobId: id, chunks: record.chunks });
      }
      // On a cluster the API lists a job right after its commit and leaves the entry here when it could not.
      if (record && !store.singleNode) await store.list.add(record);
      await store.outbox.markQueued(id);
    }
  }

  /** Chunk and finalize jobs that failed for good recently: their rows are recorded (a no-op when they were). */
  private async failAbandonedChunks(now: number): Promise<void> {
    const { redis, queues } = this.deps;
    const overlap = this.deps.config.RECOVERY_INTERVAL_MS * 2;
    const since = String(Math.max(now - FAILED_LOOKBACK_MS, this.failedSweptUntil - overlap));
    this.failedSweptUntil = now;
    const failedIds = (queue: { keys: { failed?: string } }): Promise<string[]> =>
      redis.zrangebyscore(queue.keys.failed ?? '', since, '+inf');
    const reason = 'the chunk job failed for good (found by the recovery sweep)';
    const batchIds: string[] = [];
    for (const shard of queues.all) {
      for (const bullId of await failedIds(shard.chunks)) {
        const parsed = parseChunkJobId(bullId);
        if (parsed) {
          await this.failChunk(parsed.jobId, parsed.chunk, reason);
        } else {
          const group = await shard.chunks.getJob(bullId); // a group of one-chunk jobs: its members are in its data
          for (const { jobId, chunk } of group ? membersOf(group.data) : []) await this.failChunk(jobId, chunk, reason);
        }
      }
      batchIds.push(...(await failedIds(shard.batches)));
    }
    for (const jobId of batchIds) await this.deps.finalizer.finalize(jobId);
  }

  private async failChunk(jobId: string, chunk: number, reason: string): Promise<void> {
    const outcome = await this.deps.processor.recordChunkFailure(jobId, chunk, reason);
    if (outcome.outcome === 'recorded' || outcome.outcome === 'finished') {
      this.deps.logger.error('chunk job failed outside its processor; its rows are marked failed', {
        jobId,
        chunk,
        reason,
        outcome: outcome.outcome,
      });
    }
  }
}

/** The chunks a chunk job or a group of one-chunk jobs names. */
function membersOf(data: RunChunkData | RunChunkGroupData): RunChunkData[] {
  return 'chunks' in data ? data.chunks : [data];
}
