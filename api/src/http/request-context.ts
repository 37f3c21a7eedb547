import { randomUUID } from 'node:crypto';
import type { RequestHandler } from 'express';
import type { Logger } from '@onnx-batch/shared';

declare module 'express-serve-static-core' {
  interface Request {
    requestId: string;
  }
}

/** An incoming X-Request-Id is honoured when it is a sane token; otherwise one is made. */
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Gives every request an id (echoed in X-Request-Id) and logs one line when it ends. */
export function requestContext(logger: Logger): RequestHandler {
  return (req, res, next) => {
    const incoming = req.get('x-request-id');
    req.requestId = incoming && REQUEST_ID.test(incoming) ? incoming : randomUUID();
    res.setHeader('X-Request-Id', req.requestId);
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      logger.info('request', {
        requestId: req.requestId,
        method: req.method,
        path: (req.originalUrl.split('?')[0] ?? '').slice(0, 256),
        status: res.statusCode,
        durationMs: Math.round(ms * 100) / 100,
        ...(res.locals.jobId ? { jobId: res.locals.jobId as string } : {}),
      });
    });
    next();
  };
}
