import { randomUUID } from 'node:crypto';
import type { FlowProducer } from 'bullmq';
import type { Config } from '../config';
import { chunkGroupJobId, JobName, type RunChunkGroupData } from '../contracts';
import type { QueueShards } from '../queue-shards';
import { enqueueJob, type ChunkQueue, type EnqueuedJob } from '../queues';

/** Most one-chunk jobs one group carries. */
export const MAX_GROUP = 64;

/** Queues committed jobs (the submitter's view). */
export interface JobEnqueuer {
  enqueue(job: EnqueuedJob): Promise<void>;
}

interface Waiting {
  job: EnqueuedJob;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/**
 * Queues committed jobs. A BullMQ job costs ~50 Redis commands from add to finish whatever it
 * carries, which for a 1-row job is most of the work; so one-chunk jobs that are committed
 * while a queueing is already under way wait for it and then go as ONE BullMQ job
 * (`run-chunk-group`, up to MAX_GROUP of the same priority). A lone job never waits: it is
 * queued at once as its own chunk job. Multi-chunk jobs are flows, as before (shared/queues.ts).
 */
export class ChunkEnqueuer implements JobEnqueuer {
  private readonly waiting = new Map<number, Waiting[]>();
  private busy = false;

  constructor(
    private readonly chunks: ChunkQueue,
    private readonly flows: FlowProducer,
    private readonly config: Pick<Config, 'JOB_ATTEMPTS' | 'JOB_BACKOFF_MS'>,
  ) {}

  enqueue(job: EnqueuedJob): Promise<void> {
    if (job.chunks > 1) return enqueueJob(this.chunks, this.flows, job, this.config);
    return new Promise<void>((resolve, reject) => {
      const queue = this.waiting.get(job.priority) ?? [];
      queue.push({ job, resolve, reject });
      this.waiting.set(job.priority, queue);
      this.drain();
    });
  }

  /** Queues what waits, one group at a time (the most urgent priority first). */
  private drain(): void {
    if (this.busy) return;
    const priority = Math.min(...this.waiting.keys());
    const queue = this.waiting.get(priority);
    if (!queue) return;
    const group = queue.splice(0, MAX_GROUP);
    if (queue.length === 0) this.waiting.delete(priority);
    this.busy = true;
    this.add(group, priority)
      .then(
        () => {
          for (const w of group) w.resolve();
        },
        (error: unknown) => {
          for (const w of group) w.reject(error);
        },
      )
      .finally(() => {
        this.busy = false;
        this.drain();
      });
  }

  private async add(group: Waiting[], priority: number): Promise<void> {
    const [only] = group;
    if (group.length === 1 && only) {
      await enqueueJob(this.chunks, this.flows, only.job, this.config);
      return;
    }
    const data: RunChunkGroupData = { chunks: group.map((w) => ({ jobId: w.job.id, chunk: 0 })) };
    await this.chunks.add(JobName.RunChunkGroup, data, { jobId: chunkGroupJobId(randomUUID()), priority });
  }
}

/** One ChunkEnqueuer per queue shard (QUEUE_SHARDS): a job goes to its shard, groups form within one. */
export class ShardedEnqueuer implements JobEnqueuer {
  private readonly shards: ChunkEnqueuer[];

  constructor(
    private readonly queues: QueueShards,
    config: Pick<Config, 'JOB_ATTEMPTS' | 'JOB_BACKOFF_MS'>,
  ) {
    this.shards = queues.all.map((shard) => new ChunkEnqueuer(shard.chunks, shard.flows, config));
  }

  enqueue(job: EnqueuedJob): Promise<void> {
    return (this.shards[this.queues.forJob(job.id).index] as ChunkEnqueuer).enqueue(job);
  }
}
