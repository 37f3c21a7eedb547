import { UnrecoverableError, Worker, type Job } from 'bullmq';
import { JobName, jobNamesFor, queuePrefix, QueueName, type Config, type JobNameFor, type Logger, type RedisClient, type RunScheduleData } from '@onnx-batch/shared';
import type { ScheduleRunner } from './schedule-runner';

/** Ticks one API process runs at once (a tick mostly waits for its jobs). */
export const SCHEDULE_CONCURRENCY = 4;

/** One handler per job name of the queues API processes consume (the worker has the others). */
type Handlers = { [N in JobNameFor<'api'>]: (job: Job) => Promise<unknown> };

/**
 * The tick of a scheduler's job. BullMQ names each one `repeat:<scheduler id>:<tick ms>`, one
 * per tick whatever the number of API processes, so the id is where the tick is read from.
 */
export function tickOf(job: Job): number {
  const match = /:(\d+)$/.exec(job.id ?? '');
  if (!match) throw new UnrecoverableError(`job ${job.id ?? '?'} is not a scheduler tick`);
  return Number(match[1]);
}

/**
 * Consumes the `schedules` queue in API processes (the exception to "only workers consume":
 * a tick only reads files, submits and waits, like a client; docs/schedules.md). BullMQ hands
 * each tick's job to exactly one of the API processes; one that dies mid-run loses its lock
 * and another re-runs the tick, idempotently.
 */
export class ScheduleWorker {
  private readonly worker: Worker;

  constructor(runner: ScheduleRunner, connection: RedisClient, config: Pick<Config, 'REDIS_PREFIX' | 'REDIS_CLUSTER_NODES' | 'LOCK_DURATION_MS' | 'STALLED_INTERVAL_MS'>, logger: Logger) {
    const handlers: Handlers = {
      [JobName.RunSchedule]: async (job) => {
        const data = (job as Job<RunScheduleData>).data;
        return runner.run(data.tenant, data.name, tickOf(job));
      },
    };
    for (const name of jobNamesFor('api')) {
      if (typeof handlers[name] !== 'function') throw new Error(`no handler for job name '${name}'`);
    }
    const dispatch = async (job: Job): Promise<unknown> => {
      const handler = handlers[job.name as JobNameFor<'api'>] as Handlers[JobNameFor<'api'>] | undefined;
      if (!handler) throw new UnrecoverableError(`no handler for job name '${job.name}'`);
      return handler(job);
    };
    this.worker = new Worker(QueueName.Schedules, dispatch, {
      connection,
      prefix: queuePrefix(config),
      concurrency: SCHEDULE_CONCURRENCY,
      lockDuration: config.LOCK_DURATION_MS,
      stalledInterval: config.STALLED_INTERVAL_MS,
      autorun: false,
    });
    this.worker.on('error', (error) => logger.warn('schedule worker error', { error: error.message }));
    this.worker.on('failed', (job: Job<RunScheduleData> | undefined, error) => {
      if (job) logger.warn('schedule tick attempt failed', { tenant: job.data.tenant, schedule: job.data.name, tick: job.id, attempt: job.attemptsMade, error: error.message });
    });
  }

  start(): void {
    void this.worker.run();
  }

  /** Lets the ticks in hand finish, then stops. */
  close(): Promise<void> {
    return this.worker.close();
  }
}
