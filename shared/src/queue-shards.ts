import type { ConnectionOptions, FlowProducer, Queue } from 'bullmq';
import type { Config } from './config';
import { QueueName, type FinalizeBatchData } from './contracts';
import { createFlowProducer, createQueue, enqueueJob, isJobEnqueued, queuePrefix, type ChunkQueue, type EnqueuedJob } from './queues';
import { jobTag } from './redis-keys';

type ShardConfig = Pick<Config, 'REDIS_PREFIX' | 'REDIS_CLUSTER_NODES' | 'QUEUE_SHARDS' | 'JOB_ATTEMPTS' | 'JOB_BACKOFF_MS'>;

/** One shard of the chunk queues: a `chunks` queue, the `batches` queue of its flows' parents, and the producer of those flows. */
export interface QueueShard {
  readonly index: number;
  /** BullMQ prefix of the shard's queues. */
  readonly prefix: string;
  readonly chunks: ChunkQueue;
  readonly batches: Queue<FinalizeBatchData>;
  readonly flows: FlowProducer;
}

/**
 * BullMQ prefix of shard `index`. One shard: the queue prefix (REDIS_PREFIX, `{REDIS_PREFIX}` on a
 * cluster). More: `<REDIS_PREFIX>-s<index>`, braced on a cluster so each shard has its own slot.
 */
export function shardPrefix(config: Pick<Config, 'REDIS_PREFIX' | 'REDIS_CLUSTER_NODES' | 'QUEUE_SHARDS'>, index: number): string {
  if (config.QUEUE_SHARDS <= 1) return queuePrefix(config);
  const name = `${config.REDIS_PREFIX}-s${index}`;
  return config.REDIS_CLUSTER_NODES ? `{${name}}` : name;
}

/** The shard of a job: by its id's tag, so the API and the recovery sweep always pick the same one. */
export function shardOf(jobId: string, shards: number): number {
  return Number.parseInt(jobTag(jobId), 16) % shards;
}

/**
 * The chunk queues, QUEUE_SHARDS of them. A job's chunks, and a multi-chunk job's whole flow
 * (BullMQ flows cannot span slots), go to the job's shard; workers consume every shard.
 */
export class QueueShards {
  private constructor(readonly all: readonly QueueShard[]) {}

  static open(connection: ConnectionOptions, config: ShardConfig): QueueShards {
    return new QueueShards(
      Array.from({ length: config.QUEUE_SHARDS }, (_, index) => {
        const prefix = shardPrefix(config, index);
        return {
          index,
          prefix,
          chunks: createQueue(QueueName.Chunks, connection, config, prefix) as ChunkQueue,
          batches: createQueue(QueueName.Batches, connection, config, prefix) as Queue<FinalizeBatchData>,
          flows: createFlowProducer(connection, config, prefix),
        };
      }),
    );
  }

  forJob(jobId: string): QueueShard {
    return this.all[shardOf(jobId, this.all.length)] as QueueShard;
  }

  /** Every queue of every shard (chunks and batches). */
  queues(): Queue[] {
    return this.all.flatMap((shard) => [shard.chunks as Queue, shard.batches as Queue]);
  }

  /** Queues a committed job on its shard (see enqueueJob). */
  enqueue(job: EnqueuedJob, config: Pick<Config, 'JOB_ATTEMPTS' | 'JOB_BACKOFF_MS'>): Promise<void> {
    const shard = this.forJob(job.id);
    return enqueueJob(shard.chunks, shard.flows, job, config);
  }

  isEnqueued(job: EnqueuedJob): Promise<boolean> {
    const shard = this.forJob(job.id);
    return isJobEnqueued(shard.chunks, shard.batches, job);
  }

  onError(listener: (error: Error) => void): void {
    for (const shard of this.all) {
      shard.chunks.on('error', listener);
      shard.batches.on('error', listener);
      shard.flows.on('error', listener);
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.all.flatMap((shard) => [shard.chunks.close(), shard.batches.close(), shard.flows.close()]));
  }
}
