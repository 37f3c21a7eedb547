import { FlowProducer, Queue, type ConnectionOptions, type DefaultJobOptions } from 'bullmq';
import type { Config } from './config';
import { QueueName } from './contracts';

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

export function createQueue(name: QueueName, connection: ConnectionOptions, config: Pick<Config, 'REDIS_PREFIX' | 'JOB_ATTEMPTS' | 'JOB_BACKOFF_MS'>): Queue {
  return new Queue(name, {
    connection,
    prefix: config.REDIS_PREFIX,
    defaultJobOptions: chunkJobOptions(config),
    streams: { events: { maxLen: EVENTS_MAX_LEN } },
  });
}

/** Adds a batch as one flow: a parent `finalize-batch` job whose children are its chunks. */
export function createFlowProducer(connection: ConnectionOptions, config: Pick<Config, 'REDIS_PREFIX'>): FlowProducer {
  return new FlowProducer({ connection, prefix: config.REDIS_PREFIX });
}
