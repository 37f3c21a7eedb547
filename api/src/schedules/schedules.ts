import type { Queue } from 'bullmq';
import {
  createQueue,
  QueueName,
  ScheduleRoot,
  ScheduleStore,
  type Config,
  type Logger,
  type ModelRepository,
  type RedisClient,
  type RunScheduleData,
} from '@onnx-batch/shared';
import { ScheduleService } from './schedule-service';

export interface SchedulesDeps {
  config: Config;
  logger: Logger;
  redis: RedisClient;
  repository: ModelRepository;
}

/**
 * The API's side of built-in schedules: the service behind the `/v1/schedules` routes, which
 * writes definitions and BullMQ job schedulers. Ticks run in scheduler processes
 * (scheduler/src/scheduler-service.ts), never in the API: a tick can take hours and must not
 * end with an API deploy.
 */
export interface Schedules {
  readonly service: ScheduleService;
  close(): Promise<void>;
}

/**
 * Starts the schedule routes' service when SCHEDULES_ROOT is set (null otherwise: the routes
 * then answer 404). Fails start-up when the root is not a usable directory.
 */
export async function startSchedules(deps: SchedulesDeps): Promise<Schedules | null> {
  const { config, logger } = deps;
  if (!config.SCHEDULES_ROOT) return null;
  const root = await ScheduleRoot.open(config.SCHEDULES_ROOT);
  const store = new ScheduleStore(deps.redis, config.REDIS_PREFIX);
  const queue = createQueue(QueueName.Schedules, deps.redis, config) as Queue<RunScheduleData>;
  queue.on('error', (error: Error) => logger.warn('schedule queue error', { error: error.message }));
  logger.info('schedules enabled; scheduler processes run their ticks', { root: root.real });
  return {
    service: new ScheduleService(store, queue, root, deps.repository, logger),
    async close() {
      await queue.close();
    },
  };
}
