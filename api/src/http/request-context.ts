import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RequestHandler } from 'express';
import type { Logger } from '@onnx-batch/shared';

declare module 'express-serve-static-core' {
  interface Request {
    requestId: string;
  }
}

/** An incoming X-Request-Id is honoured when it is a sane token; otherwise one is made. */
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * Gives a request its id (echoed in X-Request-Id) and logs one line when its answer ends;
 * `jobId` is asked then. Answers the id. Express and the fast poll path both start here.
 */
export function beginRequest(logger: Logger, req: IncomingMessage, res: ServerResponse, jobId: () => unknown): string {
  const incoming = req.headers['x-request-id'];
  const requestId = typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID();
  res.setHeader('X-Request-Id', requestId);
  // Building the line costs more than the rest of a poll: skip it when info is not logged.
  if (!logger.isInfoEnabled()) return requestId;
  const started = process.hrtime.bigint();
  const target = req.url ?? '';
  res.on('finish', () => {
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    const job = jobId();
    logger.info('request', {
      requestId,
      method: req.method,
      path: (target.split('?')[0] ?? '').slice(0, 256),
      status: res.statusCode,
      durationMs: Math.round(ms * 100) / 100,
      ...(typeof job === 'string' ? { jobId: job } : {}),
    });
  });
  return requestId;
}

/** beginRequest as the first Express middleware. */
export function requestContext(logger: Logger): RequestHandler {
  return (req, res, next) => {
    req.requestId = beginRequest(logger, req, res, () => res.locals.jobId);
    next();
  };
}
