import { UnrecoverableError, type Job } from 'bullmq';
import { jobNamesFor, type JobDataOf, type JobName, type JobNameFor, type ProcessKind } from './contracts';
import type { Logger } from './logger';

/** The handler of one job name: it receives a job carrying that name's data. `token` is BullMQ's lock token (for `moveToWait`). */
export type JobHandler<N extends JobName> = (job: Job<JobDataOf[N]>, token: string | undefined) => Promise<unknown>;

/** A handler for each job name of the queues a kind of process consumes, and for nothing else. */
export type JobHandlers<K extends ProcessKind> = { [N in JobNameFor<K>]: JobHandler<N> };

/** What a BullMQ Worker runs for every job it takes. */
export type JobProcessor = (job: Job, token?: string) => Promise<unknown>;

/**
 * The one dispatch of every kind of process: hands each job to the handler of its name. Made at
 * start-up, it throws unless `handlers` has exactly the job names of the queues `kind` consumes
 * (CONSUMER_OF): a forgotten handler stops the process from starting rather than failing jobs later.
 *
 * A job whose name has no handler (a job type enqueued by a newer API than this process, or a
 * stray job) is logged and fails for good (UnrecoverableError): running it again on the same
 * code cannot help, and its BullMQ job keeps the reason. So a new job type reaches its consumers'
 * processes before the processes that enqueue it.
 */
export function jobDispatcher<K extends ProcessKind>(kind: K, handlers: JobHandlers<K>, logger: Logger): JobProcessor {
  const expected: string[] = jobNamesFor(kind);
  const given = Object.keys(handlers);
  const missing = expected.filter((name) => typeof (handlers as Record<string, unknown>)[name] !== 'function');
  const unexpected = given.filter((name) => !expected.includes(name));
  if (missing.length > 0 || unexpected.length > 0) {
    const problems = [
      ...missing.map((name) => `no handler for '${name}'`),
      ...unexpected.map((name) => `a handler for '${name}', which is not a job of its queues`),
    ];
    throw new Error(
      `the ${kind} process's job handlers are wrong: ${problems.join('; ')} (its job names: ${expected.join(', ') || 'none'})`,
    );
  }
  // A Map, not the object: a job named `constructor` or `__proto__` must not find Object's members.
  // Each handler is stored under its own name, so the job it is handed carries that name's data.
  const byName = new Map(Object.entries(handlers) as [string, JobProcessor][]);
  return async (job, token) => {
    const handler = byName.get(job.name);
    if (!handler) {
      const reason = `job name '${job.name}' has no handler in ${kind} processes (they handle ${expected.join(', ') || 'none'})`;
      logger.error('job of an unknown name failed for good', { queue: job.queueName, jobName: job.name, bullId: job.id, reason });
      throw new UnrecoverableError(reason);
    }
    return handler(job, token);
  };
}

/** Whether a job has `name`, and so carries that name's data. */
export function isJobNamed<N extends JobName>(job: Job, name: N): job is Job<JobDataOf[N]> {
  return job.name === name;
}
