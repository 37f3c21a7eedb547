import type { FeatureSpec, JobStatus, JobStatusDocument } from '@onnx-batch/contracts';

export type { JobListAnswer, JobStatus, JobStatusDocument } from '@onnx-batch/contracts';
export type {
  AutoRollbackRule,
  Evaluation,
  EvaluationList,
  EvaluationReport,
  MetricComparison,
  QualityGateOutcome,
  Rollout,
  RolloutAction,
  RolloutAuditEntry,
  RolloutHistory,
  RolloutReport,
  RolloutSpec,
  RolloutState,
  ShadowReport,
  CanaryReport,
} from '@onnx-batch/contracts';

/** What a submit answers (202, or 200 when an Idempotency-Key replays an earlier submit). */
export interface SubmitAnswer {
  jobId: string;
  status: JobStatus;
  /** Path of the job's status document, e.g. `/v1/batch-result/<id>`. */
  resultUrl: string;
}

/** The filters and place of a page of `GET /v1/jobs`. */
export interface JobListQuery {
  /** Only jobs in one of these states. */
  status?: readonly JobStatus[];
  model?: string;
  /** RFC 3339 timestamps: only jobs created after / before them. */
  createdAfter?: string;
  createdBefore?: string;
  /** Jobs per page, 1–1000 (server default 100). */
  limit?: number;
  /** The `next` cursor of a page, or its last job id. */
  after?: string;
}

/** `GET /v1/batch-result/:id`: the status document, with results inline only for small finished jobs. */
export interface JobStatusAnswer extends JobStatusDocument {
  results: ResultRow[] | null;
}

export type RowId = string | number;

/** The result of one row, as the manifest's `result.kind` shapes it; `id` echoes the row's id. */
export type ResultRow = ClassificationResult | RegressionResult | MultiRegressionResult | TensorResult | EmbeddingResult | RowFailure;

export interface ClassificationResult {
  id?: RowId;
  label: string;
  confidence: number;
  probabilities: Record<string, number>;
}

export interface RegressionResult {
  id?: RowId;
  value: number;
}

export interface MultiRegressionResult {
  id?: RowId;
  values: Record<string, number>;
}

export interface TensorResult {
  id?: RowId;
  outputs: Record<string, unknown>;
}

/** An embedding model's result: the row's vector (`result.dimensions` floats). */
export interface EmbeddingResult {
  id?: RowId;
  embedding: number[];
}

/** A row that failed inside a completed job. */
export interface RowFailure {
  id?: RowId;
  error: { code: string; message: string };
}

export function isRowFailure(result: ResultRow): result is RowFailure {
  return 'error' in result;
}

/** `GET /v1/models`. */
export interface ModelList {
  models: ModelInfo[];
  /** Model directories the server refused to load, and why. */
  problems?: unknown[];
}

export interface ModelInfo {
  name: string;
  defaultVersion: string;
  versions: ModelVersionInfo[];
}

export interface ModelVersionInfo {
  name: string;
  version: string;
  task: 'classification' | 'regression' | 'tensor' | 'embedding';
  description: string | null;
  labels: string[] | null;
  /** An embedding model's vector length (null for other tasks). */
  dimensions?: number | null;
  accuracy: number | null;
  evaluation?: string | null;
  features: FeatureSpec[];
  inputSchema?: unknown;
  chunkSize?: number | null;
}

export type { JobQuality, LabelsAnswer, ModelQuality, QualitySeries } from '@onnx-batch/contracts';

/** The window of GET /v1/models/{name}/quality. */
export interface ModelQualityQuery {
  version?: string;
  arm?: 'default' | 'canary' | 'pinned' | 'shadow';
  /** RFC 3339. */
  from?: string;
  to?: string;
  bucket?: 'hour' | 'day';
}
