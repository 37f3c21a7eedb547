import express, { type RequestHandler } from 'express';
import { ProblemError } from '@onnx-batch/shared';

/**
 * Parses a JSON body, and refuses any other media type with 415 (body-parser alone would
 * silently leave the body empty).
 */
export function jsonBody(limitBytes: number): RequestHandler {
  const parse = express.json({ limit: limitBytes, strict: true, type: () => true });
  return (req, res, next) => {
    if (!req.is('application/json')) {
      const got = req.get('content-type');
      throw new ProblemError(
        'OB_ERR_UNSUPPORTED_MEDIA_TYPE',
        got ? `content type '${got.slice(0, 100)}' is not accepted here; send application/json` : 'send the body as application/json',
      );
    }
    parse(req, res, next);
  };
}
