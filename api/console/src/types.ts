// Shapes the console reads. The job, rollout and manifest shapes are the contracts' own (types
// only: nothing of them is loaded in the browser); the rest mirror the API's OpenAPI schemas.
export type {
  JobListAnswer,
  JobStatus,
  JobStatusDocument,
  Rollout,
  RolloutHistory,
  RolloutAuditEntry,
  RolloutState,
} from '@onnx-batch/contracts';
import type { JobStatus } from '@onnx-batch/contracts';

export type Role = 'read' | 'submit' | 'admin';

/** Every job state, in the order a job passes them (checked against the contract's type). */
export const JOB_STATES = ['queued', 'running', 'completed', 'failed', 'cancelled'] as const satisfies readonly JobStatus[];
type MissingState = Exclude<JobStatus, (typeof JOB_STATES)[number]>;
export const everyStateListed: MissingState extends never ? true : never = true;

export interface FailedRow {
  index: number;
  id: string | number | null;
  code: string;
  message: string;
}

export interface ModelVersionDoc {
  name: string;
  version: string;
  task: string;
  description: string | null;
  labels: string[] | null;
  accuracy: number | null;
  evaluation: string | null;
  reference: Record<string, unknown> | null;
  createdAt: string;
  driftBaseline: boolean;
  features: { name: string; type: string; description?: string }[];
  inputSchema: unknown;
}

export interface ModelDoc {
  name: string;
  defaultVersion: string;
  versions: ModelVersionDoc[];
}

export type PsiStatus = 'ok' | 'warn' | 'drift' | 'insufficient-data';

export interface DriftBin {
  from?: number | null;
  to?: number | null;
  label?: string;
  reference: number;
  current: number | null;
}

export interface DriftStatistic {
  psi: number | null;
  status: PsiStatus;
  rows: number;
  bins: DriftBin[];
}

export interface DriftReport {
  model: string;
  version: string;
  window: string;
  from: string;
  to: string;
  rows: number;
  status: PsiStatus;
  minRows: number;
  thresholds: { warn: number; drift: number };
  features: Record<string, DriftStatistic>;
  prediction: DriftStatistic | null;
}

export interface ScheduleDoc {
  name: string;
  cron: string;
  timezone: string;
  model: string;
  version: string | null;
  nextRunAt: string | null;
  updatedAt: string;
}

export interface RunDoc {
  runId: string;
  tick: string;
  startedAt: string;
  finishedAt: string | null;
  status: string;
  files: { input: string; jobId: string | null; rows: number; failedRows: number; status: string }[];
  error?: string;
}
