import { FlowProducer, Queue, type ConnectionOptions, type DefaultJobOptions } from 'bullmq';
import type { Config } from './config';
import { chunkJobId, JobName, QueueName, type FinalizeBatchData, type RunChunkData, type RunChunkGroupData } from './contracts';
import type { JobRecord } from './jobs/job-record';

/** Job options every chunk gets: retries with backoff, and no finished job kept in Redis. */
export function chunkJobOptions(config: Pick<Config, 'JOB_ATTEMPTS' | 'JOB_BACKOFF_MS'>): DefaultJobOptions {
  return {
    attempts: config.JOB_ATTEMPTS,
    backoff: { type: 'exponential', delay: config.JOB_BACKOFF_MS },
    // Rows and results never live in BullMQ's keys; once a chunk has run its job is noise.
    removeOnComplete: true,
    removeOnFail: { age: 24 * 3600, count: 1000 },
  };
}

/** Bounds BullMQ's events stream: nothing in onnx-batch reads old events. */
export const EVENTS_MAX_LEN = 1000;

/**
 * BullMQ's key prefix: REDIS_PREFIX, or on Redis Cluster the hash tag `{<REDIS_PREFIX>}` (BullMQ's
 * scripts touch several keys of a queue, and of a flow's parent and children, so they must share
 * one slot). Only BullMQ's keys get it: a job's own keys keep their tag by job id (redis-keys.ts).
 */
export function queuePrefix(config: Pick<Config, 'REDIS_PREFIX' | 'REDIS_CLUSTER_NODES'>): string {
  return config.REDIS_CLUSTER_NODES ? `{${config.REDIS_PREFIX}}` : config.REDIS_PREFIX;
}

export function createQueue(
  name: QueueName,
  connection: ConnectionOptions,
  config: Pick<Config, 'REDIS_PREFIX' | 'REDIS_CLUSTER_NODES' | 'JOB_ATTEMPTS' | 'JOB_BACKOFF_MS'>,
  prefix = queuePrefix(config),
): Queue {
  return new Queue(name, {
    connection,
    prefix,
    defaultJobOptions: chunkJobOptions(config),
    streams: { events: { maxLen: EVENTS_MAX_LEN } },
  });
}

/** Adds a batch as one flow: a parent `finalize-batch` job whose children are its chunks. */
export function createFlowProducer(
  connection: ConnectionOptions,
  config: Pick<Config, 'REDIS_PREFIX' | 'REDIS_CLUSTER_NODES'>,
  prefix = queuePrefix(config),
): FlowProducer {
  return new FlowProducer({ connection, prefix });
}

/** The queue of chunk jobs: single chunks, and groups of one-chunk jobs. */
export type ChunkQueue = Queue<RunChunkData | RunChunkGroupData>;

/** What enqueueJob needs of a job: its id, chunk count and priority. */
export type EnqueuedJob = Pick<JobRecord, 'id' | 'chunks' | 'priority'>;

/**
 * Queues a committed job's chunks. A one-chunk job is a single chunk job: the fast path for tiny
 * interactive requests (the chunk's own completion finishes the job). A bigger batch is a BullMQ
 * flow: its chunks are children of a `finalize-batch` parent that runs once all of them have,
 * and catches any chunk that failed without recording its rows. Children never fail their
 * parent (`ignoreDependencyOnFailure`), so a parent cannot hang in waiting-children.
 *
 * BullMQ job ids are derived from the job id, so queueing a job twice (an API and the recovery
 * sweep both did) adds nothing the second time.
 */
export async function enqueueJob(
  chunks: ChunkQueue,
  flows: FlowProducer,
  job: EnqueuedJob,
  config: Pick<Config, 'JOB_ATTEMPTS' | 'JOB_BACKOFF_MS'>,
): Promise<void> {
  const chunkJob = (chunk: number) => ({
    name: JobName.RunChunk,
    data: { jobId: job.id, chunk } satisfies RunChunkData,
    opts: { jobId: chunkJobId(job.id, chunk), priority: job.priority },
  });
  if (job.chunks === 1) {
    const only = chunkJob(0);
    await chunks.add(JobName.RunChunk, only.data, only.opts);
    return;
  }
  const options = chunkJobOptions(config);
  await flows.add({
    name: JobName.FinalizeBatch,
    queueName: QueueName.Batches,
    data: { jobId: job.id } satisfies FinalizeBatchData,
    opts: { ...options, jobId: job.id, priority: job.priority },
    children: Array.from({ length: job.chunks }, (_, chunk) => {
      const child = chunkJob(chunk);
      return { ...child, queueName: QueueName.Chunks, opts: { ...options, ...child.opts, ignoreDependencyOnFailure: true } };
    }),
  });
}

/** Whether a job's BullMQ job (its only chunk, or its flow's parent) exists in Redis. */
export async function isJobEnqueued(chunks: Queue, batches: Queue, job: EnqueuedJob): Promise<boolean> {
  const found = job.chunks === 1 ? await chunks.getJob(chunkJobId(job.id, 0)) : await batches.getJob(job.id);
  return found !== undefined && found !== null;
}
