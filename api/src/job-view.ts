import type { Config, JobRecord, JobStore, Problem } from '@onnx-batch/shared';

/** The status document of a job, as `GET /v1/batch-result/:id` answers it (results aside). */
export interface JobView {
  jobId: string;
  status: JobRecord['status'];
  model: { name: string; version: string };
  progress: { done: number; total: number; failed: number };
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  resultsUrl: string;
  error: Problem | null;
}

export function jobView(record: JobRecord, basePath: string): JobView {
  return {
    jobId: record.id,
    status: record.status,
    model: { name: record.model, version: record.version },
    progress: { done: record.done, total: record.total, failed: record.failed },
    createdAt: record.createdAt,
    startedAt: record.startedAt,
    finishedAt: record.finishedAt,
    resultsUrl: `${basePath}/batch-result/${record.id}/results`,
    error: record.error,
  };
}

/**
 * The status document with the results inline when the job is finished and small enough.
 * Results are spliced in as stored (one JSON line per row) without parsing them again.
 */
export async function renderJob(
  record: JobRecord,
  store: JobStore,
  basePath: string,
  config: Pick<Config, 'INLINE_RESULTS_LIMIT'>,
): Promise<string> {
  const view = JSON.stringify(jobView(record, basePath));
  const finished = record.status === 'completed' || (record.status === 'failed' && record.chunksDone > 0);
  if (!finished || record.total > config.INLINE_RESULTS_LIMIT) return `${view.slice(0, -1)},"results":null}`;
  const chunks = await store.readResults(record.id, 0, record.chunks);
  const parts: string[] = [];
  for (const chunk of chunks) if (chunk) parts.push(chunk.replaceAll('\n', ','));
  return `${view.slice(0, -1)},"results":[${parts.join(',')}]}`;
}
