import type { Problem } from './errors';
import type { JobStatus } from './job-status';
import type { RouteArm } from './rollout';

/**
 * The status document of a job, as `GET /v1/batch-result/:id` answers it without results, and
 * as a webhook delivers it.
 */
export interface JobStatusDocument {
  jobId: string;
  status: JobStatus;
  /** The version that served the job, and how it was chosen (`pinned` by the client, or by the rollout: `default`, `canary`). */
  model: { name: string; version: string; route: RouteArm };
  progress: { done: number; total: number; failed: number };
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  resultsUrl: string;
  error: Problem | null;
}

/** The fields of a job's record its status document is made of (the server's job record has these and more). */
export interface JobStatusFields {
  id: string;
  status: JobStatus;
  model: string;
  version: string;
  route: RouteArm;
  done: number;
  total: number;
  failed: number;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  error: Problem | null;
}

export function jobStatusDocument(record: JobStatusFields, basePath: string): JobStatusDocument {
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

/** One page of `GET /v1/jobs`: a tenant's jobs, newest first, as their status documents. */
export interface JobListAnswer {
  data: JobStatusDocument[];
  /** More jobs may follow (`next`); a sparse filter may answer a short, even empty, page with has_more true. */
  has_more: boolean;
  first_id: string | null;
  last_id: string | null;
  /** URL (path and query) of the next page, with the same filters; null on the last. */
  next: string | null;
}
