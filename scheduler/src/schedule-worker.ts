import { UnrecoverableError, WaitingError, Worker, type Job } from 'bullmq';
import {
  jobDispatcher,
  JobName,
  queuePrefix,
  QueueName,
  type Config,
  type JobHandlers,
  type Logger,
  type RedisClient,
  type RunScheduleData,
} from '@onnx-batch/shared';
import type { ScheduleRunner } from './schedule-runner';
import { TickInterrupted } from './tick-interrupted';

export type ScheduleWorkerConfig = Pick<
  Config,
  | 'REDIS_PREFIX'
  | 'REDIS_CLUSTER_NODES'
  | 'SCHEDULER_CONCURRENCY'
  | 'SCHEDULER_LOCK_DURATION_MS'
  | 'SCHEDULER_STALLED_INTERVAL_MS'
  | 'SCHEDULER_MAX_STALLED_COUNT'
>;

/**
 * The tick of a scheduler's job. BullMQ names each one `repeat:<scheduler id>:<tick ms>`, one
 * per tick whatever the number of scheduler processes, so the id is where the tick is read from.
 */
export function tickOf(job: Job): number {
  const match = /:(\d+)$/.exec(job.id ?? '');
  if (!match) throw new UnrecoverableError(`job ${job.id ?? '?'} is not a scheduler tick`);
  return Number(match[1]);
}

/**
 * Consumes the `schedules` queue. BullMQ hands each tick's job to exactly one scheduler process
 * and keeps it locked while the tick runs, for hours if need be (SCHEDULER_LOCK_DURATION_MS,
 * renewed every half of it). A scheduler that dies mid-tick loses its lock and another one (or
 * the same, restarted) takes the tick over; one stopped by SIGTERM hands its ticks back at once,
 * without spending an attempt or a stall. Either way the tick resumes idempotently.
 */
export class ScheduleWorker {
  private readonly worker: Worker;
  private readonly stopping = new AbortController();

  constructor(runner: ScheduleRunner, connection: RedisClient, config: ScheduleWorkerConfig, logger: Logger) {
    const handlers: JobHandlers<'scheduler'> = {
      [JobName.RunSchedule]: async (job, token) => {
        const data = job.data;
        const stop = this.stopping.signal;
        // Back to waiting as it was (attempts and stall count untouched), for the next scheduler.
        const handBack = async (): Promise<never> => {
          if (token === undefined) throw new TickInterrupted();
          await job.moveToWait(token);
          throw new WaitingError();
        };
        // A fetch already under way when closing began can still hand this process a tick (even
        // the one it just handed back): it goes straight back.
        if (stop.aborted) return handBack();
        try {
          return await runner.run(data.tenant, data.name, tickOf(job), stop);
        } catch (error) {
          if (!(error instanceof TickInterrupted)) throw error;
          logger.info('schedule tick interrupted by shutdown; handed back to the queue', {
            tenant: data.tenant,
            schedule: data.name,
            tick: job.id,
          });
          return handBack();
        }
      },
    };
    const dispatch = jobDispatcher('scheduler', handlers, logger);
    this.worker = new Worker(QueueName.Schedules, dispatch, {
      connection,
      prefix: queuePrefix(config),
      concurrency: config.SCHEDULER_CONCURRENCY,
      lockDuration: config.SCHEDULER_LOCK_DURATION_MS,
      stalledInterval: config.SCHEDULER_STALLED_INTERVAL_MS,
      maxStalledCount: config.SCHEDULER_MAX_STALLED_COUNT,
      autorun: false,
    });
    this.worker.on('error', (error) => logger.warn('schedule worker error', { error: error.message }));
    this.worker.on('failed', (job: Job<RunScheduleData> | undefined, error) => {
      if (job)
        logger.warn('schedule tick attempt failed', {
          tenant: job.data.tenant,
          schedule: job.data.name,
          tick: job.id,
          attempt: job.attemptsMade,
          error: error.message,
        });
    });
  }

  start(): void {
    void this.worker.run();
  }

  /**
   * Stops taking ticks and interrupts the ones in hand at their next safe point (a file being
   * written is finished first); they go back to the queue. Resolves once every one has.
   */
  async close(): Promise<void> {
    const closed = this.worker.close();
    this.stopping.abort();
    await closed;
  }
}
