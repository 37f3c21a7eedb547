import { createHash } from 'node:crypto';
import { Transform } from 'node:stream';
import express, { type Request, type RequestHandler } from 'express';
import { ProblemError } from '@onnx-batch/shared';

declare module 'express-serve-static-core' {
  interface Request {
    /** SHA-256 of the raw JSON body (for Idempotency-Key checks). */
    bodyHash?: string;
  }
}

/**
 * Parses a JSON body, and refuses any other media type with 415 (body-parser alone would
 * silently leave the body empty).
 */
export function jsonBody(limitBytes: number): RequestHandler {
  const parse = express.json({
    limit: limitBytes,
    strict: true,
    type: () => true,
    verify: (req, _res, buf) => {
      (req as Request).bodyHash = createHash('sha256').update(buf).digest('hex');
    },
  });
  return (req, res, next) => {
    if (!req.is('application/json')) {
      const got = req.get('content-type');
      throw new ProblemError(
        'OB_ERR_UNSUPPORTED_MEDIA_TYPE',
        got ? `content type '${got.slice(0, 100)}' is not accepted here; send application/json, application/x-ndjson or text/csv` : 'send the body as application/json',
      );
    }
    parse(req, res, next);
  };
}

/**
 * Passes a streamed body through, hashing it and refusing it past `limitBytes` (413), so a
 * streamed upload is bounded and its hash known when it ends.
 */
export function meteredBody(limitBytes: number): { stream: Transform; hash: () => string } {
  const hash = createHash('sha256');
  let bytes = 0;
  let digest: string | null = null;
  const stream = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      bytes += chunk.length;
      if (bytes > limitBytes) {
        callback(new ProblemError('OB_ERR_PAYLOAD_TOO_LARGE', `the upload is larger than the limit of ${limitBytes} bytes; split it into several jobs`));
        return;
      }
      hash.update(chunk);
      callback(null, chunk);
    },
  });
  return { stream, hash: () => (digest ??= hash.digest('hex')) };
}
