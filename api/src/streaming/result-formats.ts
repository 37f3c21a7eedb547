import type { Request } from 'express';
import { ProblemError } from '@onnx-batch/contracts';

/**
 * The forms a job's results come in, by `?format=` name, with their media types (what `Accept`
 * asks for and `Content-Type` answers). `json` is pages; the others stream every result.
 */
export const RESULT_FORMATS = {
  json: 'application/json',
  ndjson: 'application/x-ndjson',
  csv: 'text/csv',
  arrow: 'application/vnd.apache.arrow.stream',
  parquet: 'application/vnd.apache.parquet',
} as const;

export type ResultFormat = keyof typeof RESULT_FORMATS;

export const RESULT_FORMAT_NAMES = Object.keys(RESULT_FORMATS) as ResultFormat[];

const MEDIA_TYPES = Object.values(RESULT_FORMATS);

/** The `format` query parameter's schema (OpenAPI and validation). */
export const RESULT_FORMAT_SCHEMA = { type: 'string', enum: RESULT_FORMAT_NAMES } as const;

/**
 * The format a results request asks for: `?format=` when given (it overrides `Accept`; anything
 * else than a name above is a 400 naming `format`), else the first of RESULT_FORMATS that
 * `Accept` takes (406 when none).
 */
export function resultFormatOf(req: Request): ResultFormat {
  const query = req.query.format;
  if (query !== undefined) {
    const format = RESULT_FORMAT_NAMES.find((name) => name === query);
    if (format) return format;
    const message = `must be one of ${RESULT_FORMAT_NAMES.join(', ')}`;
    throw new ProblemError('OB_ERR_INVALID_REQUEST', `field 'format' ${message}`, { errors: [{ field: 'format', message }] });
  }
  const accepted = req.accepts(MEDIA_TYPES);
  const format = RESULT_FORMAT_NAMES.find((name) => RESULT_FORMATS[name] === accepted);
  if (!format) {
    throw new ProblemError(
      'OB_ERR_NOT_ACCEPTABLE',
      `results come as ${RESULT_FORMATS.json} (pages), ${MEDIA_TYPES.slice(1, -1).join(', ')} or ${RESULT_FORMATS.parquet}`,
    );
  }
  return format;
}
