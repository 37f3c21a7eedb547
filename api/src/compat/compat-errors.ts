import type { ServerResponse } from 'node:http';
import type { ErrorRequestHandler } from 'express';
import type { Problem } from '@onnx-batch/contracts';
import type { Logger } from '@onnx-batch/shared';
import { answerError } from '../http/problem';

/** The `type` of an error of the Batch API's shape, by HTTP status (what its clients switch on). */
function errorType(status: number): string {
  if (status === 401) return 'authentication_error';
  if (status === 403) return 'permission_error';
  if (status === 404) return 'not_found_error';
  if (status === 409) return 'conflict_error';
  if (status === 429) return 'rate_limit_error';
  if (status >= 500) return 'server_error';
  return 'invalid_request_error';
}

/**
 * Writes a problem in the shape the Batch API's clients read, `{"error": {message, type, param,
 * code}}`, with the same status: the official SDKs raise their typed errors (BadRequestError,
 * NotFoundError…) with our message. `param` is the first field the problem names; `code` is our
 * catalogue's code.
 */
export function writeCompatError(res: ServerResponse, problem: Problem): void {
  const errors = problem.errors as { field?: string; line?: number; row?: number }[] | undefined;
  const param = errors?.[0]?.field ?? null;
  const body = JSON.stringify({ error: { message: problem.detail, type: errorType(problem.status), param, code: problem.code } });
  res.statusCode = problem.status;
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(body));
  res.end(body);
}

/** Answers every error of the Batch API's routes (the key check and rate limit before them included) in their shape. */
export function compatErrorHandler(logger: Logger): ErrorRequestHandler {
  return (error: unknown, req, res, _next) =>
    answerError(logger, error, { req, res, requestId: req.requestId, target: req.originalUrl }, writeCompatError);
}
