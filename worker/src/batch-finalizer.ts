import type { Job } from 'bullmq';
import { isFinished } from '@onnx-batch/contracts';
import { type FinalizeBatchData, type JobRecord, type JobStore, type Logger } from '@onnx-batch/shared';
import type { ChunkProcessor } from './chunk-processor';

/**
 * The parent of a multi-chunk batch: runs once every chunk job has finished. The job is
 * normally already finished by its last chunk's results; when a chunk job ended without
 * recording its rows (it failed for good before it could), those rows are recorded as failed
 * here, so a batch can never stay `running` forever.
 */
export class BatchFinalizer {
  constructor(
    private readonly store: JobStore,
    private readonly chunks: ChunkProcessor,
    private readonly logger: Logger,
    /** Told of the finished job (queues its webhook; a no-op when its last chunk already did). */
    private readonly notifyFinished: (record: JobRecord) => Promise<void> = () => Promise.resolve(),
  ) {}

  process(job: Job<FinalizeBatchData>): Promise<{ status: string }> {
    return this.finalize(job.data.jobId);
  }

  /** Records the rows of chunks that ended without results as failed, so the job ends; idempotent. */
  async finalize(jobId: string): Promise<{ status: string }> {
    const record = await this.store.get(jobId);
    if (!record) return { status: 'gone' };
    if (!isFinished(record.status)) {
      const missing = await this.store.chunksWithoutResults(jobId, record.chunks);
      for (const chunk of missing) {
        this.logger.error('chunk ended without results; its rows are marked failed', { jobId, chunk });
        await this.chunks.recordChunkFailure(jobId, chunk, 'the chunk job ended without recording results');
      }
    }
    const final = (await this.store.get(jobId)) ?? record;
    if (isFinished(final.status)) await this.notifyFinished(final);
    const durationMs = final.finishedAt ? Date.parse(final.finishedAt) - Date.parse(final.createdAt) : null;
    this.logger.info('batch finalized', {
      jobId,
      status: final.status,
      rows: final.total,
      failedRows: final.failed,
      chunks: final.chunks,
      durationMs,
    });
    return { status: final.status };
  }
}
