import type { JobRecord } from '../job-store';
import type { Problem } from '../errors';

/**
 * The status document of a job, as `GET /v1/batch-result/:id` answers it without results, and
 * as a webhook delivers it.
 */
export interface JobStatusDocument {
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

export function jobStatusDocument(record: JobRecord, basePath: string): JobStatusDocument {
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
