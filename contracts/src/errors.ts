/**
 * The error catalogue: every error a client can see, with a stable code, an HTTP status and a
 * title. Answers render as RFC 9457 `application/problem+json`; `docs/errors.md` lists every code
 * (a test checks it).
 */
export const ERRORS = {
  OB_ERR_MALFORMED_JSON: { status: 400, title: 'Malformed JSON' },
  OB_ERR_INVALID_REQUEST: { status: 400, title: 'Invalid request' },
  OB_ERR_INVALID_ROWS: { status: 400, title: 'Invalid input rows' },
  OB_ERR_INVALID_LABELS: { status: 400, title: 'Invalid labels' },
  OB_ERR_UNAUTHORIZED: { status: 401, title: 'Unauthorized' },
  OB_ERR_FORBIDDEN: { status: 403, title: 'Forbidden' },
  OB_ERR_NOT_FOUND: { status: 404, title: 'Not found' },
  OB_ERR_MODEL_NOT_FOUND: { status: 404, title: 'Model not found' },
  OB_ERR_VERSION_NOT_FOUND: { status: 404, title: 'Model version not found' },
  OB_ERR_JOB_NOT_FOUND: { status: 404, title: 'Job not found' },
  OB_ERR_SCHEDULE_NOT_FOUND: { status: 404, title: 'Schedule not found' },
  OB_ERR_BASELINE_NOT_FOUND: { status: 404, title: 'Model version has no baseline' },
  OB_ERR_PREDICTIONS_NOT_KEPT: { status: 404, title: 'No predictions kept for labels' },
  OB_ERR_EVALUATION_NOT_FOUND: { status: 404, title: 'Evaluation not found' },
  OB_ERR_SCHEDULE_EXISTS: { status: 409, title: 'Schedule already exists' },
  OB_ERR_METHOD_NOT_ALLOWED: { status: 405, title: 'Method not allowed' },
  OB_ERR_NOT_ACCEPTABLE: { status: 406, title: 'Not acceptable' },
  OB_ERR_JOB_NOT_FINISHED: { status: 409, title: 'Job not finished' },
  OB_ERR_JOB_FINISHED: { status: 409, title: 'Job already finished' },
  OB_ERR_PAYLOAD_TOO_LARGE: { status: 413, title: 'Payload too large' },
  OB_ERR_TOO_MANY_ROWS: { status: 413, title: 'Too many rows' },
  OB_ERR_UNSUPPORTED_MEDIA_TYPE: { status: 415, title: 'Unsupported media type' },
  OB_ERR_IDEMPOTENCY_CONFLICT: { status: 409, title: 'Idempotency key reused with a different body' },
  OB_ERR_RATE_LIMITED: { status: 429, title: 'Too many requests' },
  OB_ERR_TOO_MANY_ACTIVE_JOBS: { status: 429, title: 'Too many unfinished jobs' },
  OB_ERR_INTERNAL: { status: 500, title: 'Internal error' },
  OB_ERR_NOT_READY: { status: 503, title: 'Service not ready' },
  OB_ERR_STAGING_LOST: { status: 503, title: 'Staged upload lost' },
  OB_ERR_REDIS_EVICTING: { status: 503, title: 'Redis may evict accepted jobs' },
  OB_ERR_STORAGE_FULL: { status: 507, title: 'Storage full' },
  OB_ERR_TIMEOUT: { status: 504, title: 'Timed out waiting for the result' },
  OB_ERR_INFERENCE_FAILED: { status: 500, title: 'Inference failed' },
  OB_ERR_DECRYPTION_FAILED: { status: 500, title: 'Stored data could not be decrypted' },
  OB_ERR_JOB_CANCELLED: { status: 409, title: 'Job cancelled' },
  OB_ERR_ROLLOUT_CONFLICT: { status: 409, title: 'Rollout change refused' },
  OB_ERR_LABELS_CONFLICT: { status: 409, title: 'Labels changed concurrently' },
  OB_ERR_QUALITY_GATE: { status: 409, title: 'Quality gate not passed' },
  OB_ERR_PRECONDITION_FAILED: { status: 412, title: 'Precondition failed' },
} as const satisfies Record<string, { status: number; title: string }>;

export type ErrorCode = keyof typeof ERRORS;

/** One offending field of one row (row index 0-based; line 1-based for streamed input). */
export interface FieldError {
  row?: number;
  line?: number;
  field?: string;
  message: string;
}

/** RFC 9457 problem details, as sent to clients and stored for failed jobs. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: ErrorCode;
  instance?: string;
  errors?: FieldError[];
  jobId?: string;
  [extension: string]: unknown;
}

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

export function problemType(code: ErrorCode): string {
  return `urn:onnx-batch:problem:${code
    .toLowerCase()
    .replace(/^ob_err_/, '')
    .replace(/_/g, '-')}`;
}

/** An error a client caused or can act on; the API renders it as problem+json. */
export class ProblemError extends Error {
  override name = 'ProblemError';
  readonly code: ErrorCode;
  readonly status: number;
  readonly extensions: Record<string, unknown>;

  constructor(code: ErrorCode, detail: string, extensions: Record<string, unknown> = {}) {
    super(detail);
    this.code = code;
    this.status = ERRORS[code].status;
    this.extensions = extensions;
  }

  toProblem(instance?: string): Problem {
    return makeProblem(this.code, this.message, { ...this.extensions, ...(instance ? { instance } : {}) });
  }
}

export function makeProblem(code: ErrorCode, detail: string, extensions: Record<string, unknown> = {}): Problem {
  return { type: problemType(code), title: ERRORS[code].title, status: ERRORS[code].status, detail, code, ...extensions };
}
