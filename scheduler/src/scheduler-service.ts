import {
  AtRestCipher,
  connectRedis,
  JobEvents,
  JobStore,
  JobSubmitter,
  ModelRepository,
  ModelRouter,
  onnxFileReader,
  QueueShards,
  replicaWaitFor,
  RolloutStore,
  ScheduleRoot,
  ScheduleStore,
  ShardedEnqueuer,
  StorageGuard,
  type Config,
  type Logger,
} from '@onnx-batch/shared';
import { ScheduleRunner } from './schedule-runner';
import { ScheduleWorker } from './schedule-worker';

export interface SchedulerService {
  /** Hands the ticks in hand back (a file being written is finished first), then closes every connection. */
  close(): Promise<void>;
}

/**
 * Starts a scheduler process: it consumes the `schedules` queue and runs each tick (read the
 * input files, submit each as a job, wait, write results and the run summary). It submits as the
 * API does, through the JobSubmitter, and serves no HTTP. Without SCHEDULES_ROOT it idles with a
 * warning (schedules are off; the deployment still runs one); a root that is not a usable
 * directory fails start-up naming it.
 */
export async function startSchedulerService(config: Config, logger: Logger): Promise<SchedulerService> {
  if (!config.SCHEDULES_ROOT) return idle(logger);
  const root = await ScheduleRoot.open(config.SCHEDULES_ROOT);
  const repository = await ModelRepository.open(config.MODELS_DIR, onnxFileReader);
  repository.watch(config.MODEL_RELOAD_INTERVAL_MS, (error) => logger.error('model repository rescan failed', { error: String(error) }));

  const redis = connectRedis(config);
  const subscriber = connectRedis(config);
  const blocking = connectRedis(config);
  const replicaWait = replicaWaitFor(config);
  const connections = [redis, subscriber, blocking, ...(replicaWait ? [replicaWait.redis] : [])];
  for (const connection of connections)
    connection.on('error', (error: Error) => logger.warn('redis connection error', { error: error.message }));
  const jobs = new JobStore(redis, config.REDIS_PREFIX, config.RESULT_TTL_SECONDS, AtRestCipher.fromConfig(config), replicaWait);
  const queues = QueueShards.open(redis, config);
  queues.onError((error: Error) => logger.warn('queue error', { error: error.message }));
  const events = new JobEvents(subscriber, jobs.keys.finishedChannel(), logger);
  const router = new ModelRouter(repository, new RolloutStore(redis, jobs.keys, subscriber));
  // A tick meeting an evicting or full Redis fails with a domain error and is retried later (schedule-runner.ts).
  const storage = StorageGuard.fromConfig(redis, config, logger, true);
  storage.start();
  const submitter = new JobSubmitter(jobs, new ShardedEnqueuer(queues, config), config, logger, { admission: storage });
  const schedules = new ScheduleStore(redis, config.REDIS_PREFIX);
  const runner = new ScheduleRunner({ config, schedules, jobs, submitter, events, repository, router, root, logger });
  const worker = new ScheduleWorker(runner, blocking, config, logger);
  worker.start();
  logger.info('scheduler started', {
    root: root.real,
    concurrency: config.SCHEDULER_CONCURRENCY,
    lockDurationMs: config.SCHEDULER_LOCK_DURATION_MS,
    shutdownGraceMs: config.SCHEDULER_SHUTDOWN_GRACE_MS,
  });

  return {
    async close() {
      await worker.close();
      storage.close();
      await queues.close();
      await events.close();
      repository.close();
      await Promise.all(connections.filter((c) => c !== subscriber).map((c) => c.quit().catch(() => c.disconnect())));
    },
  };
}

/** A scheduler with schedules off: nothing to run, but it stays up (and says so) until stopped. */
function idle(logger: Logger): SchedulerService {
  logger.warn(
    'SCHEDULES_ROOT is not set: this scheduler runs no schedule ticks. Set it, to the same directory as the API, to run schedules.',
  );
  logger.info('scheduler started', { root: null });
  const keepAlive = setInterval(() => undefined, 2 ** 31 - 1);
  return {
    close() {
      clearInterval(keepAlive);
      return Promise.resolve();
    },
  };
}
