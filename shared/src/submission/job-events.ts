import { isFinished } from '@onnx-batch/contracts';
import type { JobRecord } from '../jobs/job-record';
import type { Logger } from '../logger';
import type { RedisClient } from '../redis';

/**
 * Tells waiters when a job finishes. Workers publish the id of each finished job on one channel;
 * one subscriber connection per process fans it out, so a long poll, the synchronous facade (API)
 * or a schedule's tick (scheduler) goes on the moment the last chunk lands, with no polling delay.
 */
export class JobEvents {
  private readonly waiters = new Map<string, Set<() => void>>();

  constructor(
    private readonly subscriber: RedisClient,
    private readonly channel: string,
    logger: Logger,
  ) {
    subscriber.on('message', (from: string, jobId: string) => {
      if (from !== channel) return; // the connection carries other channels too
      const waiting = this.waiters.get(jobId);
      if (!waiting) return;
      this.waiters.delete(jobId);
      for (const wake of waiting) wake();
    });
    subscriber.subscribe(channel).catch((error: unknown) => logger.error('cannot subscribe to job events', { error: String(error) }));
  }

  /**
   * Resolves when the job is announced finished, after `timeoutMs`, or when `signal` aborts,
   * whichever comes first. Callers re-read the job afterwards; `isFinished` is checked after
   * subscribing so a job that finished in between is not missed.
   */
  async waitFor(jobId: string, timeoutMs: number, isFinished: () => Promise<boolean>, signal?: AbortSignal): Promise<void> {
    let wake: () => void = () => undefined;
    const woken = new Promise<void>((resolve) => {
      wake = resolve;
    });
    const set = this.waiters.get(jobId) ?? new Set();
    set.add(wake);
    this.waiters.set(jobId, set);
    const timer = setTimeout(wake, timeoutMs);
    signal?.addEventListener('abort', wake, { once: true });
    try {
      if (signal?.aborted || (await isFinished())) return;
      await woken;
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', wake);
      set.delete(wake);
      if (set.size === 0 && this.waiters.get(jobId) === set) this.waiters.delete(jobId);
    }
  }

  async close(): Promise<void> {
    await this.subscriber.quit().catch(() => this.subscriber.disconnect());
  }
}

/** The check `JobEvents.waitFor` wants for a stored job: it has finished, or it is gone. */
export function finishedOrGone(jobs: { get(id: string): Promise<JobRecord | null> }, jobId: string): () => Promise<boolean> {
  return async () => {
    const now = await jobs.get(jobId);
    return now === null || isFinished(now.status);
  };
}
