import type { Worker } from 'bullmq';
import type { Logger, StorageGuard } from '@onnx-batch/shared';

/**
 * Stops a worker process taking new jobs while Redis is at maxmemory. BullMQ answers a fetch that
 * Redis refuses (`OOM`) by emitting an error and fetching again at once, so a full Redis would
 * spin every worker at full CPU and flood its log. On the first refusal every BullMQ worker of the
 * process pauses (chunks in hand go on, waiting for room to record their results, see
 * ChunkProcessor); once the StorageGuard sees room again they resume. Logged once each way.
 */
export class PauseWhileFull {
  private pausing: Promise<void> | null = null;

  constructor(
    private readonly workers: readonly Worker[],
    private readonly storage: Pick<StorageGuard, 'waitForRoom'>,
    private readonly closing: AbortSignal,
    private readonly logger: Logger,
  ) {}

  /** Redis refused a write of a BullMQ worker at maxmemory. */
  outOfMemory(): void {
    if (this.pausing || this.closing.aborted) return;
    this.pausing = this.pauseUntilRoom().finally(() => {
      this.pausing = null;
    });
  }

  /** Resolves once a pause under way has ended (at close, a pause ends without resuming). */
  async settled(): Promise<void> {
    await this.pausing;
  }

  private async pauseUntilRoom(): Promise<void> {
    const started = Date.now();
    this.logger.warn('Redis is full (maxmemory): this worker takes no new jobs until there is room; chunks in hand wait to record results');
    await Promise.all(this.workers.map((w) => w.pause(true)));
    await this.storage.waitForRoom(this.closing);
    if (this.closing.aborted) return;
    await Promise.all(this.workers.map((w) => w.resume()));
    this.logger.info('Redis has room again: this worker takes jobs again', { pausedMs: Date.now() - started });
  }
}
