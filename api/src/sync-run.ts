import type { Response } from 'express';
import { isFinished, ProblemError } from '@onnx-batch/contracts';
import {
  finishedOrGone,
  type Config,
  type JobEvents,
  type JobRecord,
  type JobStore,
  type JobSubmitter,
  type ModelSelection,
} from '@onnx-batch/shared';

/**
 * A synchronous answer over the queue: the rows become an ordinary job, the request waits for it
 * (SYNC_TIMEOUT_MS) and reads its results from the job store. The sync predict facade
 * (routes/model-routes.ts) and POST /v1/embeddings (routes/embeddings-routes.ts) both run here.
 */
export interface SyncRunDeps {
  config: Pick<Config, 'SYNC_MAX_ROWS' | 'SYNC_TIMEOUT_MS'>;
  store: JobStore;
  submitter: JobSubmitter;
  events: JobEvents;
}

/** Throws OB_ERR_TOO_MANY_ROWS when a synchronous request holds more than SYNC_MAX_ROWS rows. */
export function checkSyncRows(config: Pick<Config, 'SYNC_MAX_ROWS'>, rows: number, field?: string): void {
  if (rows > config.SYNC_MAX_ROWS) {
    throw new ProblemError(
      'OB_ERR_TOO_MANY_ROWS',
      `synchronous predict takes at most ${config.SYNC_MAX_ROWS} rows; submit larger batches to /v1/batch-predict`,
      field === undefined ? undefined : { field },
    );
  }
}

/**
 * Submits `rows` (validated and staged as any submit is), waits for the job and answers its
 * finished record; the job id goes to `res.locals.jobId` for the access log. Throws OB_ERR_TIMEOUT
 * (naming the job to poll) when it did not finish within SYNC_TIMEOUT_MS.
 */
export async function runSynchronously(
  deps: SyncRunDeps,
  res: Response,
  job: { model: ModelSelection; rows: unknown[]; tenant: string; priority: number },
): Promise<JobRecord> {
  const { config, store, submitter, events } = deps;
  const { record } = await submitter.submit({
    model: job.model,
    rows: job.rows,
    tenant: job.tenant,
    priority: job.priority,
    callbackUrl: null,
    rowLocation: 'row',
  });
  res.locals.jobId = record.id;
  await events.waitFor(record.id, config.SYNC_TIMEOUT_MS, finishedOrGone(store, record.id));
  const finished = await store.get(record.id);
  if (!finished || !isFinished(finished.status)) {
    throw new ProblemError(
      'OB_ERR_TIMEOUT',
      `the job did not finish within ${config.SYNC_TIMEOUT_MS} ms; poll /v1/batch-result/${record.id}`,
      {
        jobId: record.id,
        resultUrl: `/v1/batch-result/${record.id}`,
      },
    );
  }
  return finished;
}
