import type { Queue } from 'bullmq';
import { connectRedis, createQueue, QueueName, type Config, type JobStore, type Logger, type ModelRepository, type RedisClient, type RunScheduleData } from '@onnx-batch/shared';
import type { JobEvents } from '../job-events';
import type { JobSubmitter } from '../job-submitter';
import type { ModelRouter } from '../model-router';
import { ScheduleRoot } from './schedule-root';
import { ScheduleRunner } from './schedule-runner';
import { ScheduleService } from './schedule-service';
import { ScheduleStore } from './schedule-store';
import { ScheduleWorker } from './schedule-worker';

export interface SchedulesDeps {
  config: Config;
  logger: Logger;
  redis: RedisClient;
  repository: ModelRepository;
  jobs: JobStore;
  submitter: JobSubmitter;
  events: JobEvents;
  router: ModelRouter;
}

/** Built-in schedules of one API process: the service behind the routes, and the tick consumer. */
export interface Schedules {
  readonly service: ScheduleService;
  /** Stops taking ticks and lets the ones in hand finish; then closes its connections. */
  close(): Promise<void>;
}

/**
 * Starts schedules when SCHEDULES_ROOT is set (null otherwise: the routes then answer 404).
 * Fails start-up when the root is not a usable directory.
 */
export async function startSchedules(deps: SchedulesDeps): Promise<Schedules | null> {
  const { config, logger } = deps;
  if (!config.SCHEDULES_ROOT) return null;
  const root = await ScheduleRoot.open(config.SCHEDULES_ROOT);
  const store = new ScheduleStore(deps.redis, config.REDIS_PREFIX);
  const queue = createQueue(QueueName.Schedules, deps.redis, config) as Queue<RunScheduleData>;
  queue.on('error', (error: Error) => logger.warn('schedule queue error', { error: error.message }));
  const blocking = connectRedis(config);
  blocking.on('error', (error: Error) => logger.warn('redis connection error', { error: error.message }));
  const runner = new ScheduleRunner({ config, schedules: store, jobs: deps.jobs, submitter: deps.submitter, events: deps.events, repository: deps.repository, router: deps.router, root, logger });
  const worker = new ScheduleWorker(runner, blocking, config, logger);
  worker.start();
  logger.info('schedule runner started', { root: root.real });
  return {
    service: new ScheduleService(store, queue, root, deps.repository, logger),
    async close() {
      await worker.close();
      await queue.close();
      await blocking.quit().catch(() => blocking.disconnect());
    },
  };
}
