/**
 * Job contracts shared by the API (which enqueues) and the worker (which processes):
 * queue names, job names and the payload of each. Job data holds pointers only, never rows
 * or results: those live under the keys of `redis-keys.ts`.
 */
export enum QueueName {
  /** One BullMQ job per chunk of a batch. */
  Chunks = 'chunks',
  /** Parent job of a multi-chunk batch; runs once every chunk has finished. */
  Batches = 'batches',
}

export enum JobName {
  RunChunk = 'run-chunk',
  FinalizeBatch = 'finalize-batch',
}

export interface RunChunkData {
  jobId: string;
  chunk: number;
}

export interface FinalizeBatchData {
  jobId: string;
}

export interface JobDataOf {
  [JobName.RunChunk]: RunChunkData;
  [JobName.FinalizeBatch]: FinalizeBatchData;
}

export const QUEUE_OF: { readonly [N in JobName]: QueueName } = {
  [JobName.RunChunk]: QueueName.Chunks,
  [JobName.FinalizeBatch]: QueueName.Batches,
};

/** BullMQ job id of a chunk: deterministic, so a chunk can never be queued twice. */
export function chunkJobId(jobId: string, chunk: number): string {
  return `${jobId}.${chunk}`;
}

export const JOB_STATUSES = ['queued', 'running', 'completed', 'failed', 'cancelled'] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

export function isFinished(status: JobStatus): boolean {
  return status === 'completed' || status === 'failed' || status === 'cancelled';
}
