import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { ErrorRequestHandler, RequestHandler } from 'express';
import { makeProblem, PROBLEM_CONTENT_TYPE, ProblemError, type ErrorCode, type Problem } from '@onnx-batch/contracts';
import { type Logger } from '@onnx-batch/shared';
import { problemOfDomainError } from './domain-problems';

/** Writes a problem+json answer with node's own response API (Express and the fast poll path both answer through it). */
function writeProblem(res: ServerResponse, problem: Problem): void {
  const body = JSON.stringify(problem);
  res.statusCode = problem.status;
  res.setHeader('Content-Type', `${PROBLEM_CONTENT_TYPE}; charset=utf-8`);
  res.setHeader('Content-Length', Buffer.byteLength(body));
  res.end(body);
}

/** How an error's problem is written: problem+json here; the Batch API's surface writes its own shape (compat/compat-errors.ts). */
export type ProblemWriter = (res: ServerResponse, problem: Problem) => void;

function sendProblem(res: ServerResponse, error: ProblemError, instance: string, write: ProblemWriter): void {
  const retryAfter = error.extensions.retryAfter;
  if (typeof retryAfter === 'number') res.setHeader('Retry-After', String(retryAfter));
  write(res, error.toProblem(instance));
}

/** body-parser's error types, mapped to our catalogue. */
const BODY_ERRORS: Record<string, ErrorCode> = {
  'entity.parse.failed': 'OB_ERR_MALFORMED_JSON',
  'entity.too.large': 'OB_ERR_PAYLOAD_TOO_LARGE',
  'encoding.unsupported': 'OB_ERR_UNSUPPORTED_MEDIA_TYPE',
  'charset.unsupported': 'OB_ERR_UNSUPPORTED_MEDIA_TYPE',
  'request.aborted': 'OB_ERR_INVALID_REQUEST',
  'request.size.invalid': 'OB_ERR_INVALID_REQUEST',
};

interface BodyParserError extends Error {
  type?: string;
  status?: number;
  limit?: number;
}

/** How long a connection refused mid-upload goes on reading (and dropping) the body after the answer. */
const LINGER_MS = 5000;

/**
 * Node closes a `Connection: close` answer's socket as soon as the answer is written. When the
 * client is still uploading, the kernel then answers its next bytes with a reset, which can destroy
 * the answer before the client has read it (RFC 9112 §9.6 asks for a lingering close). This socket
 * half-closes instead, drops what still arrives, and closes once the client stops sending or after
 * LINGER_MS.
 */
function closeLingering(socket: Socket): void {
  socket.destroySoon = () => {
    socket.end();
    socket.resume();
    const timer = setTimeout(() => socket.destroy(), LINGER_MS);
    socket.once('end', () => socket.destroy());
    socket.once('close', () => clearTimeout(timer));
  };
}

/** What answering an error needs of its request: the Express path and the fast poll path both have these. */
export interface ErrorContext {
  req: IncomingMessage;
  res: ServerResponse;
  requestId: string;
  /** The request target as it arrived (`instance` of the problem). */
  target: string;
}

/** Turns anything thrown into a problem+json answer; internals are logged, never sent. */
export function answerError(
  logger: Logger,
  error: unknown,
  { req, res, requestId, target }: ErrorContext,
  write: ProblemWriter = writeProblem,
): void {
  const instance = target.slice(0, 512);
  // The body was not read to its end (refused early): the connection cannot carry another request.
  if (!req.complete && !res.headersSent) {
    res.setHeader('Connection', 'close');
    // A request a failed pipeline has destroyed no longer holds its socket; the response still does.
    const socket = req.socket ?? res.socket;
    if (socket) closeLingering(socket);
  }
  if (res.headersSent) {
    logger.warn('error after the answer had started', { requestId, error: String(error) });
    res.destroy();
    return;
  }
  const known = error instanceof ProblemError ? error : problemOfDomainError(error);
  if (known) {
    sendProblem(res, known, instance, write);
    return;
  }
  const bodyError = error as BodyParserError;
  const code = bodyError.type ? BODY_ERRORS[bodyError.type] : undefined;
  if (code) {
    const detail =
      code === 'OB_ERR_MALFORMED_JSON'
        ? `request body is not valid JSON: ${bodyError.message}`
        : code === 'OB_ERR_PAYLOAD_TOO_LARGE'
          ? `request body is larger than the limit of ${bodyError.limit ?? '?'} bytes; stream large batches as ` +
            'application/x-ndjson, text/csv, Arrow or Parquet'
          : bodyError.message;
    sendProblem(res, new ProblemError(code, detail), instance, write);
    return;
  }
  // Other client errors raised by Express and body-parser (a path parameter that is not valid
  // percent-encoding, a body that does not match its Content-Encoding…) carry a 4xx status.
  const status = (error as { status?: unknown }).status;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    const zlibCode = (error as { code?: unknown }).code;
    if (typeof zlibCode === 'string' && zlibCode.startsWith('Z_')) {
      // body-parser inflating a gzip body that is corrupt or cut short.
      sendProblem(
        res,
        new ProblemError('OB_ERR_INVALID_REQUEST', `the request body is not valid gzip (${(error as Error).message.slice(0, 200)})`),
        instance,
        write,
      );
      return;
    }
    const fallback: ErrorCode =
      status === 413 ? 'OB_ERR_PAYLOAD_TOO_LARGE' : status === 415 ? 'OB_ERR_UNSUPPORTED_MEDIA_TYPE' : 'OB_ERR_INVALID_REQUEST';
    sendProblem(
      res,
      new ProblemError(fallback, error instanceof Error ? error.message.slice(0, 200) : 'the request is malformed'),
      instance,
      write,
    );
    return;
  }
  logger.error('request failed', { requestId, error: error instanceof Error ? error.stack : String(error) });
  write(res, makeProblem('OB_ERR_INTERNAL', 'the request could not be completed; it has been logged', { instance, requestId }));
}

export function problemHandler(logger: Logger): ErrorRequestHandler {
  return (error: unknown, req, res, _next) => answerError(logger, error, { req, res, requestId: req.requestId, target: req.originalUrl });
}

export const notFoundHandler: RequestHandler = (req) => {
  throw new ProblemError('OB_ERR_NOT_FOUND', `no route ${req.method} ${req.path.slice(0, 256)}`);
};
