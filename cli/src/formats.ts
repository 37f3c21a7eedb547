import path from 'node:path';
import { UsageError } from './errors';

/** Formats of a batch file the CLI reads: CSV and NDJSON stream up as they are; JSON is an array of rows. */
export const INPUT_FORMATS = ['csv', 'ndjson', 'json'] as const;
export type InputFormat = (typeof INPUT_FORMATS)[number];

/** Formats the CLI writes results in: the server's CSV, NDJSON (one result a line), or one JSON array. */
export const OUTPUT_FORMATS = ['csv', 'ndjson', 'json'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

/** Formats the server takes as a streamed body. */
export type StreamFormat = Exclude<InputFormat, 'json'>;

const BY_EXTENSION: Record<string, InputFormat> = {
  '.csv': 'csv',
  '.ndjson': 'ndjson',
  '.jsonl': 'ndjson',
  '.json': 'json',
};

/** `Content-Type` of a streamed submit body. */
export const STREAM_CONTENT_TYPE: Record<StreamFormat, string> = {
  ndjson: 'application/x-ndjson',
  csv: 'text/csv',
};

/** The format a file name implies (`.csv`, `.ndjson`/`.jsonl`, `.json`; case-insensitive), or null. */
export function formatFromExtension(file: string): InputFormat | null {
  return BY_EXTENSION[path.extname(file).toLowerCase()] ?? null;
}

function resolveFormat(kind: 'input' | 'output', file: string, explicit: string | undefined, flag: string): InputFormat {
  if (explicit !== undefined) {
    if ((INPUT_FORMATS as readonly string[]).includes(explicit)) return explicit as InputFormat;
    throw new UsageError(`${flag} must be one of ${INPUT_FORMATS.join(', ')} (got '${explicit}')`);
  }
  if (file === '-') throw new UsageError(`${flag} is needed when the ${kind} is standard ${kind === 'input' ? 'input' : 'output'} ('-')`);
  const inferred = formatFromExtension(file);
  if (inferred === null) {
    throw new UsageError(`cannot tell the format of ${kind} '${file}' from its extension (.csv, .ndjson, .jsonl or .json); pass ${flag}`);
  }
  return inferred;
}

/** The format of an input file: `--format` if given, else its extension; stdin (`-`) needs `--format`. */
export function inputFormat(file: string, explicit?: string): InputFormat {
  return resolveFormat('input', file, explicit, '--format');
}

/**
 * The format results are written in: the explicit flag if given, else the output file's
 * extension; standard output (`-`) defaults to NDJSON.
 */
export function outputFormat(file: string, explicit: string | undefined, flag = '--out-format'): OutputFormat {
  if (explicit === undefined && file === '-') return 'ndjson';
  return resolveFormat('output', file, explicit, flag);
}
