import { type FeatureSpec, type FieldError, type ModelManifest, ProblemError, featureSize } from '@onnx-batch/contracts';
import type { RowId } from '../codec/chunk-codec';

/** Numbers of one column, in any width a columnar file carries them (int64 is converted before it gets here). */
export type NumberColumn =
  Float64Array | Float32Array | Int32Array | Uint32Array | Int16Array | Uint16Array | Int8Array | Uint8Array | number[];

/** One feature's values for every row of a batch: scalars, tensors flattened row-major, or strings. */
export type FeatureColumn =
  | { kind: 'numbers'; values: NumberColumn }
  | { kind: 'tensor'; values: NumberColumn; perRow: number }
  | { kind: 'strings'; values: string[] };

/**
 * Rows as columns, the way Arrow and Parquet carry them: one column per manifest feature, by name,
 * with no nulls left (a reader refuses a null feature value before a batch gets here). The stager
 * validates a batch column by column and copies it into chunks without making a row object.
 */
export interface ColumnBatch {
  rows: number;
  features: Map<string, FeatureColumn>;
  /** Row ids to echo (a null where a row has none), or null when the input has no id column. */
  ids: (RowId | null)[] | null;
  /** The values of the columns named by `passthrough` at submit, in that order (one array each), or null. */
  passthrough: PassthroughValue[][] | null;
}

/** An input value kept beside the predictions (`passthrough=`): as JSON carries it. */
export type PassthroughValue = string | number | boolean | null;

/** Input columns kept beside the predictions: their names, and each one's values for the rows of one chunk. */
export interface PassthroughColumns {
  names: string[];
  columns: PassthroughValue[][];
}

/** A problem with the upload as a whole (its framing, a column's type), naming the column when there is one. */
export function invalidUpload(message: string, field?: string): ProblemError {
  return new ProblemError('OB_ERR_INVALID_REQUEST', `${message}; nothing was queued`, {
    errors: [{ ...(field ? { field } : {}), message }],
  });
}

/** A column that cannot be read as the feature it names (its type, its shape, a missing dictionary). */
export function invalidColumn(field: string, message: string): ProblemError {
  return new ProblemError('OB_ERR_INVALID_REQUEST', `column '${field}' ${message}; nothing was queued`, {
    errors: [{ field, message }],
  });
}

/** A bad value, named by column and 0-based row, worded as the stager words a bad JSON row. */
export function invalidValue(field: string, row: number, message: string): ProblemError {
  return new ProblemError('OB_ERR_INVALID_ROWS', `row ${row}: field '${field}' ${message}; nothing was queued`, {
    errors: [{ row, field, message }],
  });
}

/**
 * Checks a columnar input's column names against the manifest: every feature present, nothing
 * else but an optional `id` (as a JSON row may hold no other field).
 */
export function checkColumnNames(names: readonly string[], manifest: ModelManifest, passthrough: readonly string[] = []): void {
  const features = manifest.features.map((f) => f.name);
  const known = new Set(['id', ...features, ...passthrough]);
  const absent = passthrough.find((name) => !names.includes(name));
  if (absent !== undefined) throw invalidColumn(absent, 'is named in passthrough but is not in the input');
  const extra = names.find((name) => !known.has(name));
  if (extra !== undefined) {
    throw invalidColumn(
      extra,
      `is not a feature of this model (features: ${features.join(', ')}, and an optional id); name it in ?passthrough= to keep it`,
    );
  }
  const missing = features.find((name) => !names.includes(name));
  if (missing !== undefined) throw invalidColumn(missing, 'is missing');
}

const MAX_ID_LENGTH = 256;

/**
 * Checks a batch against the manifest as the row schema does for JSON rows (bounds, integers,
 * finite numbers, string lengths, tensor sizes, ids), but one typed column at a time. Answers the
 * first error, naming the column and the 0-based row within the batch.
 */
export class ColumnValidator {
  private readonly features: FeatureSpec[];

  constructor(manifest: ModelManifest) {
    this.features = manifest.features;
  }

  check(batch: ColumnBatch): Required<Pick<FieldError, 'row' | 'field' | 'message'>> | null {
    for (const feature of this.features) {
      const column = batch.features.get(feature.name);
      if (!column) return { row: 0, field: feature.name, message: 'is required (no such column)' };
      const problem = checkColumn(feature, column, batch.rows);
      if (problem) return { ...problem, field: feature.name };
    }
    if (batch.ids) {
      for (let row = 0; row < batch.ids.length; row++) {
        const id = batch.ids[row];
        if (typeof id === 'string' ? id.length > MAX_ID_LENGTH : typeof id === 'number' && !Number.isSafeInteger(id)) {
          return { row, field: 'id', message: `must be a string (at most ${MAX_ID_LENGTH} characters) or an integer` };
        }
      }
    }
    return null;
  }
}

function checkColumn(feature: FeatureSpec, column: FeatureColumn, rows: number): { row: number; message: string } | null {
  const size = featureSize(feature);
  switch (feature.type) {
    case 'number':
    case 'integer':
      if (column.kind !== 'numbers') return { row: 0, message: 'must be a numeric column' };
      return checkNumbers(feature, column.values, 1, rows);
    case 'tensor':
      if (column.kind !== 'tensor' || column.perRow !== size) return { row: 0, message: `must hold ${size} numbers a row` };
      return checkNumbers(feature, column.values, size, rows);
    case 'string': {
      if (column.kind !== 'strings') return { row: 0, message: 'must be a text column' };
      const min = feature.minLength ?? 0;
      const max = feature.maxLength ?? Infinity;
      for (let row = 0; row < rows; row++) {
        const text = column.values[row] as string;
        // JSON Schema counts code points; UTF-16 units are an upper bound, so count only when it matters.
        if (text.length >= min && text.length <= max) continue;
        const length = [...text].length;
        if (length < min) return { row, message: `must NOT have fewer than ${min} characters` };
        if (length > max) return { row, message: `must NOT have more than ${max} characters` };
      }
      return null;
    }
  }
}

/** Bounds, integers and finiteness over a flat typed array; a typed integer array skips what its type already rules out. */
function checkNumbers(feature: FeatureSpec, values: NumberColumn, perRow: number, rows: number): { row: number; message: string } | null {
  const integersOnly = feature.type === 'integer' || feature.base64 === 'uint8';
  const typedIntegers = !(values instanceof Float64Array || values instanceof Float32Array || Array.isArray(values));
  const min = feature.minimum ?? -Infinity;
  const max = feature.maximum ?? Infinity;
  const n = rows * perRow;
  if (values.length < n) return { row: Math.floor(values.length / perRow), message: 'is missing' };
  for (let i = 0; i < n; i++) {
    const v = values[i] as number;
    // One comparison pair catches NaN too (every comparison with NaN is false).
    if (v >= min && v <= max && (typedIntegers || !integersOnly || Number.isInteger(v)) && (typedIntegers || Number.isFinite(v))) continue;
    const where = perRow > 1 ? `[${i % perRow}]` : '';
    const row = Math.floor(i / perRow);
    if (!Number.isFinite(v)) return { row, message: `${where ? `element ${where} ` : ''}must be a finite number, not ${String(v)}` };
    if (integersOnly && !Number.isInteger(v)) return { row, message: `${where ? `element ${where} ` : ''}must be integer` };
    if (v < min) return { row, message: `${where ? `element ${where} ` : ''}must be >= ${min}` };
    return { row, message: `${where ? `element ${where} ` : ''}must be <= ${max}` };
  }
  return null;
}

/** A passthrough value as JSON carries it: bigints as numbers when exact (else decimal text), dates as ISO text, bytes as base64. */
export function passthroughValue(value: unknown): PassthroughValue {
  if (value === null || value === undefined) return null;
  if (typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number') return Number.isFinite(value) ? value : String(value);
  if (typeof value === 'bigint') return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString();
  if (value instanceof Date) return value.toISOString();
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64');
  return JSON.stringify(value, (_key, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
}
