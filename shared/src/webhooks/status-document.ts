import type { JobRecord } from '../jobs/job-record';
import type { Problem } from '../errors';

/**
 * The status document of a job, as `GET /v1/batch-result/:id` answers it without results, and
 * as a webhook delivers it.
 */
export interface JobStatusDocument {
  jobId: string;
  status: JobRecord['status'];
  /** The version that served the job, and how it was chosen (`pinned` by the client, or by the rollout: `default`, `canary`). */
  model: { name: string; version: string; route: JobRecord['route'] };
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
    model: { name: record.model, version: record.version, route: record.route },
    progress: { done: record.done, total: record.total, failed: record.failed },
    createdAt: record.createdAt,
    startedAt: record.startedAt,
    finishedAt: record.finishedAt,
    resultsUrl: `${basePath}/batch-result/${record.id}/results`,
    error: record.error,
  };
}
