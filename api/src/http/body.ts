import { createHash } from 'node:crypto';
import { pipeline, Transform, type Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import express, { type Request, type RequestHandler } from 'express';
import { ProblemError } from '@onnx-batch/contracts';

declare module 'express-serve-static-core' {
  interface Request {
    /** SHA-256 of the raw JSON body (for Idempotency-Key checks). */
    bodyHash?: string;
  }
}

/**
 * The body's content coding: `identity` (or no Content-Encoding) or `gzip`. Anything else —
 * deflate, br, an unknown coding, a list of codings — is refused with 415 naming it, before a
 * byte of the body is read. Codings are case-insensitive (RFC 9110 §8.4.1).
 */
export function contentCoding(req: Request): 'identity' | 'gzip' {
  const header = req.get('content-encoding');
  const coding = (header ?? '').trim().toLowerCase();
  if (coding === '' || coding === 'identity') return 'identity';
  if (coding === 'gzip') return 'gzip';
  throw new ProblemError(
    'OB_ERR_UNSUPPORTED_MEDIA_TYPE',
    `content encoding '${(header ?? '').slice(0, 100)}' is not accepted; send the body as it is (identity) or gzip-compressed`,
  );
}

/**
 * Parses a JSON body, plain or gzip-compressed (the limit counts the bytes after decompression;
 * body-parser stops inflating at the limit), and refuses any other media type or coding with
 * 415 (body-parser alone would silently leave the body empty, and inflate deflate and br too).
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
        got
          ? `content type '${got.slice(0, 100)}' is not accepted here; send application/json, application/x-ndjson, text/csv, ` +
              'application/vnd.apache.arrow.stream or application/vnd.apache.parquet'
          : 'send the body as application/json',
      );
    }
    // body-parser refuses a declared length past the limit only after reading (and dropping) the
    // whole body; a client declaring 1 GB and sending it slowly would hold the request that long.
    const declared = Number(req.get('content-length'));
    if (contentCoding(req) === 'identity' && declared > limitBytes) {
      throw new ProblemError(
        'OB_ERR_PAYLOAD_TOO_LARGE',
        `request body declares ${declared} bytes, more than the limit of ${limitBytes} (MAX_BODY_BYTES); stream large batches as ` +
          'application/x-ndjson, text/csv, Arrow or Parquet',
      );
    }
    parse(req, res, next);
  };
}

/**
 * Passes a streamed body through, hashing it and refusing it past `limitBytes` (413), so a
 * streamed upload is bounded and its hash known when it ends.
 */
function meteredBody(limitBytes: number): { stream: Transform; hash: () => string } {
  const hash = createHash('sha256');
  let bytes = 0;
  let digest: string | null = null;
  const stream = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      bytes += chunk.length;
      if (bytes > limitBytes) {
        callback(
          new ProblemError(
            'OB_ERR_PAYLOAD_TOO_LARGE',
            `the upload is larger than the limit of ${limitBytes} bytes; split it into several jobs`,
          ),
        );
        return;
      }
      hash.update(chunk);
      callback(null, chunk);
    },
  });
  return { stream, hash: () => (digest ??= hash.digest('hex')) };
}

/**
 * A streamed (NDJSON / CSV) request body as it arrives: gunzipped when it is gzip, then metered
 * after decompression (413 past `limitBytes`, so a zip bomb is refused once it has inflated that
 * far, never further) and hashed. pipeline() ends the rows with an error if the client goes
 * away mid-upload, and stops inflating when the rows are refused; for a server request it
 * leaves the socket alone, which still has to carry the answer.
 */
export function streamedBody(req: Request, limitBytes: number): { stream: Readable; hash: () => string } {
  const coding = contentCoding(req);
  // A declared length past the limit is refused before a byte is read (a gzip body's length is
  // its compressed size, so only the limit after decompression can refuse it).
  const declared = Number(req.get('content-length'));
  if (coding === 'identity' && declared > limitBytes) {
    throw new ProblemError(
      'OB_ERR_PAYLOAD_TOO_LARGE',
      `the upload declares ${declared} bytes, more than the limit of ${limitBytes} (MAX_STREAM_BYTES); split it into several jobs`,
    );
  }
  const metered = meteredBody(limitBytes);
  if (coding === 'identity') {
    pipeline(req, metered.stream, () => undefined);
  } else {
    const gunzip = createGunzip();
    // Listening before pipeline() does: the rows end with a 400 that names the body, not with zlib's error.
    gunzip.once('error', (error) =>
      metered.stream.destroy(new ProblemError('OB_ERR_INVALID_REQUEST', `the request body is not valid gzip (${error.message})`)),
    );
    pipeline(req, gunzip, metered.stream, () => undefined);
  }
  return { stream: metered.stream, hash: metered.hash };
}
