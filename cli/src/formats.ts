import path from 'node:path';
import { UsageError } from './errors';

/**
 * Formats of a batch file the CLI reads. CSV, NDJSON, Arrow IPC stream and Parquet go up as
 * the file's bytes (the CLI never parses them); JSON is one array of rows, read into memory.
 */
export const INPUT_FORMATS = ['csv', 'ndjson', 'json', 'arrow', 'parquet'] as const;
export type InputFormat = (typeof INPUT_FORMATS)[number];

/**
 * Formats the CLI writes results in: the server's CSV, NDJSON (one result a line), one JSON
 * array, or the server's Arrow IPC stream or Parquet file, written as the bytes it sends.
 */
export const OUTPUT_FORMATS = ['csv', 'ndjson', 'json', 'arrow', 'parquet'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

/** Formats the server takes as a streamed body. */
export type StreamFormat = Exclude<InputFormat, 'json'>;

const BY_EXTENSION: Record<string, InputFormat> = {
  '.csv': 'csv',
  '.ndjson': 'ndjson',
  '.jsonl': 'ndjson',
  '.json': 'json',
  '.arrow': 'arrow',
  '.arrows': 'arrow',
  '.parquet': 'parquet',
};

/** The extensions `formatFromExtension` knows, for messages. */
const KNOWN_EXTENSIONS = '.csv, .ndjson, .jsonl, .json, .arrow, .arrows or .parquet';

/** `Content-Type` of a streamed submit body. */
export const STREAM_CONTENT_TYPE: Record<StreamFormat, string> = {
  ndjson: 'application/x-ndjson',
  csv: 'text/csv',
  arrow: 'application/vnd.apache.arrow.stream',
  parquet: 'application/vnd.apache.parquet',
};

/**
 * The format a file name implies (`.csv`, `.ndjson`/`.jsonl`, `.json`, `.arrow`/`.arrows`,
 * `.parquet`; case-insensitive), or null.
 */
export function formatFromExtension(file: string): InputFormat | null {
  return BY_EXTENSION[path.extname(file).toLowerCase()] ?? null;
}

/**
 * One format flag that has two spellings (`--format` and `--input-format`): the value given,
 * or undefined; a usage error when both are given and differ.
 */
export function eitherFlag(values: readonly (readonly [flag: string, value: string | undefined])[]): string | undefined {
  const given = values.filter((entry): entry is readonly [string, string] => entry[1] !== undefined);
  const [first, ...rest] = given;
  const other = rest.find(([, value]) => value !== first?.[1]);
  if (first && other) throw new UsageError(`${first[0]} '${first[1]}' and ${other[0]} '${other[1]}' disagree; give one of them`);
  return first?.[1];
}

function resolveFormat(kind: 'input' | 'output', file: string, explicit: string | undefined, flag: string): InputFormat {
  if (explicit !== undefined) {
    if ((INPUT_FORMATS as readonly string[]).includes(explicit)) return explicit as InputFormat;
    throw new UsageError(`${flag} must be one of ${INPUT_FORMATS.join(', ')} (got '${explicit}')`);
  }
  if (file === '-') throw new UsageError(`${flag} is needed when the ${kind} is standard ${kind === 'input' ? 'input' : 'output'} ('-')`);
  const inferred = formatFromExtension(file);
  if (inferred === null) {
    throw new UsageError(`cannot tell the format of ${kind} '${file}' from its extension (${KNOWN_EXTENSIONS}); pass ${flag}`);
  }
  return inferred;
}

/** The format of an input file: `--format` if given, else its extension; stdin (`-`) needs `--format`. */
export function inputFormat(file: string, explicit?: string, flag = '--format'): InputFormat {
  return resolveFormat('input', file, explicit, flag);
}

/**
 * The format results are written in: the explicit flag if given, else the output file's
 * extension; standard output (`-`) defaults to NDJSON.
 */
export function outputFormat(file: string, explicit: string | undefined, flag = '--out-format'): OutputFormat {
  if (explicit === undefined && file === '-') return 'ndjson';
  return resolveFormat('output', file, explicit, flag);
}

/** `--format` and its other spelling `--output-format`, of `wait` and `results`. */
export interface OutputFormatFlags {
  format?: string;
  outputFormat?: string;
}

/** The results format of `wait` and `results`: the flag if given (both spellings must agree), else the --out extension. */
export function resultsFormat(out: string, opts: OutputFormatFlags): OutputFormat {
  const explicit = eitherFlag([
    ['--format', opts.format],
    ['--output-format', opts.outputFormat],
  ]);
  return outputFormat(out, explicit, '--format');
}
