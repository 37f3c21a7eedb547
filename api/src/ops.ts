import type { Queue } from 'bullmq';
import type { RedisClient } from '@onnx-batch/shared';
import { createQueue, QueueName, type Config, type JobSubmitter, type Logger, type StorageGuard } from '@onnx-batch/shared';
import { ApiMetrics } from './metrics';
import { registerStorageGauges } from './storage-metrics';

/** What the API process adds for operators: its metrics and the queues they and Bull Board read. */
export interface ApiOps {
  readonly metrics: ApiMetrics;
  /** The BullMQ queues of every QueueName (each shard of the chunk queues), sharing the API's Redis connection. */
  readonly queues: readonly Queue[];
  close(): Promise<void>;
}

/**
 * Builds the API's metrics over every queue of the contract, listening to the submitter for jobs
 * accepted (cancels are told by the routes). `existing` queues are reused, not closed here.
 */
export function createApiOps(deps: {
  config: Config;
  logger: Logger;
  redis: RedisClient;
  submitter: JobSubmitter;
  storage: StorageGuard;
  existing?: readonly Queue[];
}): ApiOps {
  const existing = deps.existing ?? [];
  const created: Queue[] = [];
  for (const name of Object.values(QueueName)) {
    if (existing.some((q) => (q.name as QueueName) === name)) continue;
    const queue = createQueue(name, deps.redis, deps.config);
    queue.on('error', (error: Error) => deps.logger.warn('queue error', { queue: name, error: error.message }));
    created.push(queue);
  }
  // Every shard of the chunk queues is there (QUEUE_SHARDS): metrics add them up by queue name.
  const queues = [...existing, ...created];
  const metrics = new ApiMetrics(queues, deps.logger);
  deps.submitter.onAccepted(metrics.jobSubmitted);
  registerStorageGauges(metrics.registry, deps.storage);
  return {
    metrics,
    queues,
    async close() {
      metrics.close();
      await Promise.all(created.map((q) => q.close()));
    },
  };
}
