import { Queue, type ConnectionOptions, type DefaultJobOptions } from 'bullmq';
import type { Config } from '../config';
import { isFinished } from '@onnx-batch/contracts';
import { JobName, QueueName, webhookJobId, type DeliverWebhookData } from '../contracts';
import type { JobRecord } from '../jobs/job-record';
import { EVENTS_MAX_LEN, queuePrefix } from '../queues';

type WebhookConfig = Pick<
  Config,
  'REDIS_PREFIX' | 'REDIS_CLUSTER_NODES' | 'WEBHOOK_ATTEMPTS' | 'WEBHOOK_BACKOFF_MS' | 'RESULT_TTL_SECONDS'
>;

/**
 * Options of every webhook job: WEBHOOK_ATTEMPTS attempts with exponential backoff from
 * WEBHOOK_BACKOFF_MS. Finished webhook jobs are kept as long as a finished job is: a later
 * enqueue of the same job id is then a no-op, so a job is announced once even when both its
 * last chunk and its finalize-batch parent (or a retry of either) enqueue it.
 */
export function webhookJobOptions(config: Omit<WebhookConfig, 'REDIS_PREFIX' | 'REDIS_CLUSTER_NODES'>): DefaultJobOptions {
  return {
    attempts: config.WEBHOOK_ATTEMPTS,
    backoff: { type: 'exponential', delay: config.WEBHOOK_BACKOFF_MS },
    removeOnComplete: { age: config.RESULT_TTL_SECONDS },
    removeOnFail: { age: config.RESULT_TTL_SECONDS },
  };
}

/** The webhooks queue, with webhookJobOptions as its defaults (enqueueWebhook relies on them). */
export function createWebhookQueue(connection: ConnectionOptions, config: WebhookConfig): Queue<DeliverWebhookData> {
  return new Queue<DeliverWebhookData>(QueueName.Webhooks, {
    connection,
    prefix: queuePrefix(config),
    defaultJobOptions: webhookJobOptions(config),
    streams: { events: { maxLen: EVENTS_MAX_LEN } },
  });
}

/**
 * Queues the webhook of a finished job that has a callback URL (a no-op otherwise, and when it
 * was queued before). Answers whether the job has a webhook. The payload is built from the
 * record when it is delivered: job data holds the job id only.
 */
export async function enqueueWebhook(queue: Queue<DeliverWebhookData>, record: JobRecord): Promise<boolean> {
  if (!record.callbackUrl || !isFinished(record.status)) return false;
  await queue.add(JobName.DeliverWebhook, { jobId: record.id }, { jobId: webhookJobId(record.id) });
  return true;
}
