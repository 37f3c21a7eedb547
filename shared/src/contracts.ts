/**
 * Job contracts shared by the processes that enqueue (API, scheduler) and those that consume
 * (worker, scheduler): queue names, job names and the payload of each. Job data holds pointers only, never rows
 * or results: those live under the keys of `redis-keys.ts`.
 */
export enum QueueName {
  /** One BullMQ job per chunk of a batch. */
  Chunks = 'chunks',
  /** Parent job of a multi-chunk batch; runs once every chunk has finished. */
  Batches = 'batches',
  /** One BullMQ job per tick of a schedule (docs/schedules.md); consumed by scheduler processes. */
  Schedules = 'schedules',
  /** One BullMQ job per finished job that has a callback URL: POSTs its status there. */
  Webhooks = 'webhooks',
}

export enum JobName {
  RunChunk = 'run-chunk',
  /** Several one-chunk jobs submitted at the same moment, queued as one BullMQ job (see chunk-enqueuer.ts). */
  RunChunkGroup = 'run-chunk-group',
  FinalizeBatch = 'finalize-batch',
  RunSchedule = 'run-schedule',
  DeliverWebhook = 'deliver-webhook',
}

export interface RunChunkData {
  jobId: string;
  chunk: number;
}

export interface RunChunkGroupData {
  chunks: RunChunkData[];
}

export interface FinalizeBatchData {
  jobId: string;
}

/** One tick of a schedule: which one; the definition is read from Redis when the tick runs. */
export interface RunScheduleData {
  tenant: string;
  name: string;
}

/** A job's webhook: which job; its status document is built from the record at delivery. */
export interface DeliverWebhookData {
  jobId: string;
}

export interface JobDataOf {
  [JobName.RunChunk]: RunChunkData;
  [JobName.RunChunkGroup]: RunChunkGroupData;
  [JobName.FinalizeBatch]: FinalizeBatchData;
  [JobName.RunSchedule]: RunScheduleData;
  [JobName.DeliverWebhook]: DeliverWebhookData;
}

export const QUEUE_OF = {
  [JobName.RunChunk]: QueueName.Chunks,
  [JobName.RunChunkGroup]: QueueName.Chunks,
  [JobName.FinalizeBatch]: QueueName.Batches,
  [JobName.RunSchedule]: QueueName.Schedules,
  [JobName.DeliverWebhook]: QueueName.Webhooks,
} as const satisfies { readonly [N in JobName]: QueueName };

/** The kinds of onnx-batch process, each with its own entry point (`<kind>/src/main.ts`). */
export type ProcessKind = 'api' | 'worker' | 'scheduler';

/**
 * The kind of process that consumes each queue: exactly one per queue. The API consumes none:
 * it answers HTTP and enqueues; long work (inference, schedule ticks) runs in processes of its own.
 */
export const CONSUMER_OF = {
  [QueueName.Chunks]: 'worker',
  [QueueName.Batches]: 'worker',
  [QueueName.Schedules]: 'scheduler',
  [QueueName.Webhooks]: 'worker',
} as const satisfies { readonly [Q in QueueName]: ProcessKind };

/** The job names a kind of process handles (those of the queues it consumes); each checks its handlers at boot. */
export type JobNameFor<C extends ProcessKind> = {
  [N in JobName]: (typeof CONSUMER_OF)[(typeof QUEUE_OF)[N]] extends C ? N : never;
}[JobName];

export function jobNamesFor<C extends ProcessKind>(consumer: C): JobNameFor<C>[] {
  return Object.values(JobName).filter((name): name is JobNameFor<C> => CONSUMER_OF[QUEUE_OF[name]] === consumer);
}

/** BullMQ job id of a chunk: deterministic, so a chunk can never be queued twice. */
export function chunkJobId(jobId: string, chunk: number): string {
  return `${jobId}.${chunk}`;
}

/** BullMQ job id of a group of one-chunk jobs: random (a group is made once, by one API process). */
export function chunkGroupJobId(uuid: string): string {
  return `group.${uuid}`;
}

/** The job and chunk a chunk's BullMQ job id names; null for any other id. */
export function parseChunkJobId(bullId: string): { jobId: string; chunk: number } | null {
  const dot = bullId.lastIndexOf('.');
  const chunk = Number(bullId.slice(dot + 1));
  return dot > 0 && Number.isInteger(chunk) && chunk >= 0 ? { jobId: bullId.slice(0, dot), chunk } : null;
}

/** BullMQ job id of a job's webhook: deterministic, so a job is announced once however often it is enqueued. */
export function webhookJobId(jobId: string): string {
  return `webhook.${jobId}`;
}
