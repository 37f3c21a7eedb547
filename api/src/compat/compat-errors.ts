import type { ServerResponse } from 'node:http';
import type { ErrorRequestHandler } from 'express';
import type { ErrorCode, Problem } from '@onnx-batch/contracts';
import type { Logger } from '@onnx-batch/shared';
import { answerError } from '../http/problem';

/**
 * OpenAI's error body: `{"error": {"message", "type", "param", "code"}}`, with the HTTP status of
 * our problem, so that OpenAI's clients raise their typed errors (they choose the class by status:
 * 400 BadRequestError, 401 AuthenticationError, 403 PermissionDeniedError, 404 NotFoundError,
 * 409 ConflictError, 429 RateLimitError, ≥ 500 InternalServerError).
 */
export interface CompatErrorBody {
  error: {
    message: string;
    /** `invalid_request_error` (4xx), `rate_limit_error` (429), `server_error` (5xx). */
    type: string;
    /** The request field at fault (`model`, `input`, `input[3]`, `dimensions`…), else null. */
    param: string | null;
    /** OpenAI's code where there is one (`model_not_found`, `invalid_api_key`, `rate_limit_exceeded`), else our catalogue's. */
    code: string | null;
  };
}

/** Our codes that have an OpenAI counterpart. */
const COMPAT_CODES: Partial<Record<ErrorCode, string>> = {
  OB_ERR_MODEL_NOT_FOUND: 'model_not_found',
  OB_ERR_VERSION_NOT_FOUND: 'model_not_found',
  OB_ERR_UNAUTHORIZED: 'invalid_api_key',
  OB_ERR_RATE_LIMITED: 'rate_limit_exceeded',
};

/** The field a problem names: a `field` extension, or the first of its `errors`. */
function paramOf(problem: Problem): string | null {
  if (typeof problem.field === 'string') return problem.field;
  const first = problem.errors?.[0];
  if (first?.field !== undefined) return first.field;
  if (problem.code === 'OB_ERR_MODEL_NOT_FOUND' || problem.code === 'OB_ERR_VERSION_NOT_FOUND') return 'model';
  return null;
}

function typeOf(status: number): string {
  if (status === 429) return 'rate_limit_error';
  return status >= 500 ? 'server_error' : 'invalid_request_error';
}

/** A problem (RFC 9457, as the rest of the API answers) in OpenAI's shape; its status is compatStatus(problem.status). */
export function compatError(problem: Problem): CompatErrorBody {
  const first = problem.errors?.[0];
  // A problem listing field errors says what is wrong in them; a lone one reads best in the message itself.
  const message =
    first && problem.errors?.length === 1 && !problem.detail.includes(first.message)
      ? `${problem.detail}: ${first.message}`
      : problem.detail;
  return {
    error: {
      message,
      type: typeOf(problem.status),
      param: paramOf(problem),
      code: COMPAT_CODES[problem.code] ?? problem.code,
    },
  };
}

/**
 * The HTTP status of a problem on an OpenAI-compatible route: the problem's own, except 413 (too
 * many inputs, a body past the limit), which OpenAI answers 400 and its clients raise as
 * BadRequestError (they have no class for 413). The `code` still says which (OB_ERR_TOO_MANY_ROWS,
 * OB_ERR_PAYLOAD_TOO_LARGE). HTTP's own answers keep theirs (405 with Allow, 415, 406).
 */
export function compatStatus(status: number): number {
  return status === 413 ? 400 : status;
}

/** Writes a problem as OpenAI's JSON error body (the writer answerError takes). */
export function writeCompatError(res: ServerResponse, problem: Problem): void {
  const body = JSON.stringify(compatError(problem));
  res.statusCode = compatStatus(problem.status);
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(body));
  res.end(body);
}

/**
 * Express error middleware for OpenAI-compatible routes: mount it on their paths before the
 * API's problem handler (`app.use('/v1/embeddings', compatErrorHandler(logger))`). Everything the
 * problem handler maps — our ProblemErrors, domain errors, body-parser's errors, the key guard's
 * 401/403, the rate limit's 429 (with Retry-After) — is answered the same way and with the same
 * status (but see compatStatus), only in OpenAI's shape; internal errors are logged and answered
 * 500 `server_error`.
 */
export function compatErrorHandler(logger: Logger): ErrorRequestHandler {
  return (error: unknown, req, res, _next) =>
    answerError(logger, error, { req, res, requestId: req.requestId, target: req.originalUrl }, writeCompatError);
}
