import { newJobId, type JobRecord } from '@onnx-batch/shared';

/**
 * The record of a queued one-row, one-chunk iris job, as the API would commit it; `fields`
 * override any part. Committed straight into a JobStore (no BullMQ job), it never runs.
 */
export function queuedJobRecord(fields: Partial<JobRecord> & Pick<JobRecord, 'tenant'>): JobRecord {
  return {
    id: newJobId(),
    model: 'iris',
    version: '1',
    route: 'pinned',
    rolloutRevision: 0,
    status: 'queued',
    total: 1,
    done: 0,
    failed: 0,
    chunks: 1,
    chunksDone: 0,
    chunkSize: 1,
    priority: 100,
    callbackUrl: null,
    createdAt: new Date().toISOString(),
    startedAt: null,
    finishedAt: null,
    error: null,
    ...fields,
  };
}
