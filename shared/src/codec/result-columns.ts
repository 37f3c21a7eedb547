import type { ModelManifest, OutputDtype } from '@onnx-batch/contracts';
import type { RowId } from './chunk-codec';
import type { PassthroughValue } from '../columnar/column-batch';
import type { ResultChunk } from './result-chunk';

/**
 * The columns of a job's results, derived from its manifest: the CSV download's header
 * (result-csv.ts), with types for the columnar formats (Arrow IPC, Parquet).
 *
 * - `id` Utf8: ids may be strings or integers within one job, so an integer id is its decimal
 *   text (`7` → "7"); null when the row had none.
 * - classification: `label` Utf8, `confidence` float32, `p_<label>` float32 per class.
 * - regression: one float32 column per target (`value` when there is one).
 * - tensor: per output, FixedSizeList<float32>[n] when the manifest fixes its per-row size
 *   (every dimension after the batch one known) and its values fit float32 exactly (float32,
 *   float64 — printed at float32 precision anyway — or uint8); otherwise Utf8 holding the output
 *   as JSON, as the CSV has it (int32/int64, bool, string, or a dynamic dimension).
 * - embedding: `embedding` FixedSizeList<float32>[dimensions].
 * - `error` Utf8: `code: message` for a row that could not be run (its predictions null), else null.
 *
 * Every column is nullable.
 */
export type ResultColumnType = { kind: 'utf8' } | { kind: 'float32' } | { kind: 'float32-list'; size: number };

/** Where a column's values come from in a stored result chunk. */
export type ResultColumnSource =
  | { from: 'id' }
  | { from: 'label' }
  | { from: 'confidence' }
  /** Value `index` of each row (a class's probability, a regression target). */
  | { from: 'value'; index: number }
  /** A tensor output, flattened row-major (`float32-list`) or as JSON (`utf8`). */
  | { from: 'output'; output: string }
  /** An input column kept beside the predictions (`passthrough=`), as text. */
  | { from: 'passthrough'; name: string }
  | { from: 'error' };

export interface ResultColumn {
  name: string;
  type: ResultColumnType;
  source: ResultColumnSource;
}

const UTF8 = { kind: 'utf8' } as const;
const FLOAT32 = { kind: 'float32' } as const;

/** Output dtypes whose values float32 holds as the JSON results print them. */
const FLOAT32_EXACT: ReadonlySet<OutputDtype> = new Set(['float32', 'float64', 'uint8']);

/**
 * The results columns of a model version, in the CSV download's order; a job's `passthrough`
 * input columns follow `id`, as text (numbers in their JSON form, dates as ISO text).
 */
export function resultColumns(manifest: ModelManifest, passthrough: readonly string[] = []): ResultColumn[] {
  const [id, ...rest] = modelColumns(manifest);
  const kept = passthrough.map((name): ResultColumn => ({ name, type: UTF8, source: { from: 'passthrough', name } }));
  return [id as ResultColumn, ...kept, ...rest];
}

function modelColumns(manifest: ModelManifest): ResultColumn[] {
  const spec = manifest.result;
  const id: ResultColumn = { name: 'id', type: UTF8, source: { from: 'id' } };
  const error: ResultColumn = { name: 'error', type: UTF8, source: { from: 'error' } };
  switch (spec.kind) {
    case 'classification':
      return [
        id,
        { name: 'label', type: UTF8, source: { from: 'label' } },
        { name: 'confidence', type: FLOAT32, source: { from: 'confidence' } },
        ...(spec.labels ?? []).map((label, index): ResultColumn => ({
          name: `p_${label}`,
          type: FLOAT32,
          source: { from: 'value', index },
        })),
        error,
      ];
    case 'regression': {
      const names = spec.names && spec.names.length > 1 ? spec.names : ['value'];
      return [id, ...names.map((name, index): ResultColumn => ({ name, type: FLOAT32, source: { from: 'value', index } })), error];
    }
    case 'embedding':
      // Stored as the JSON line {"embedding": [...]}: the column reads that field as a tensor output would.
      return [
        id,
        { name: 'embedding', type: { kind: 'float32-list', size: spec.dimensions ?? 0 }, source: { from: 'output', output: 'embedding' } },
        error,
      ];
    case 'tensor': {
      const outputs = spec.outputs ?? manifest.outputs.map((o) => o.name);
      return [
        id,
        ...outputs.map((name): ResultColumn => ({
          name,
          type: tensorColumnType(manifest, name),
          source: { from: 'output', output: name },
        })),
        error,
      ];
    }
  }
}

function tensorColumnType(manifest: ModelManifest, name: string): ResultColumnType {
  const output = manifest.outputs.find((o) => o.name === name);
  const dims = output?.shape?.slice(1);
  if (!output || !dims || !FLOAT32_EXACT.has(output.dtype) || !dims.every((d) => Number.isInteger(d) && d > 0)) return UTF8;
  return { kind: 'float32-list', size: dims.reduce((a, b) => a * b, 1) };
}

/**
 * One column of a chunk: strings (null where absent), or float32 values with a validity mask
 * (one byte a row, 1 = a value; `null` when every row has one). Float columns of one chunk share
 * one mask: a row's predictions are null exactly when the row failed.
 */
export type ResultColumnValues =
  | { kind: 'utf8'; values: (string | null)[] }
  | { kind: 'float32'; values: Float32Array; valid: Uint8Array | null }
  | { kind: 'float32-list'; size: number; values: Float32Array; valid: Uint8Array | null };

/** A stored result chunk as columns (parallel to the columns it was made for): one Arrow record batch or Parquet row group. */
export interface ResultColumnsChunk {
  rows: number;
  columns: ResultColumnValues[];
}

/** An id as the `id` column holds it: strings as they are, integers as their decimal text. */
export function resultIdText(id: RowId | null | undefined): string | null {
  return id === null || id === undefined ? null : typeof id === 'string' ? id : String(id);
}

/**
 * The columns of a stored result chunk, read from its typed values (classification,
 * regression) without rendering a line. Tensor results are stored as their JSON lines, so
 * those are parsed, one per good row. Throws when the chunk does not fit the columns (a
 * chunk of another model's results), unless every row of it failed.
 */
export function resultChunkColumns(columns: readonly ResultColumn[], chunk: ResultChunk): ResultColumnsChunk {
  const rows = chunk.rows;
  const valid = validityOf(chunk);
  const predicted = valid === null || valid.includes(1);
  const tensor = columns.some((c) => c.source.from === 'output');
  if (predicted) checkFits(columns, chunk, tensor);
  const parsed = tensor && predicted ? parsedOutputs(chunk) : null;
  const width = chunk.names.length;
  const v = chunk.values;
  // Classification: the label is the argmax (the first of equal maxima), as rendering finds it.
  let best: Int32Array | null = null;
  const bestOf = (): Int32Array => {
    if (best) return best;
    best = new Int32Array(rows);
    if (!predicted) return best;
    for (let row = 0; row < rows; row++) {
      const base = row * width;
      let top = 0;
      for (let k = 1; k < width; k++) if ((v[base + k] as number) > (v[base + top] as number)) top = k;
      best[row] = top;
    }
    return best;
  };
  const out = columns.map((column): ResultColumnValues => {
    const source = column.source;
    switch (source.from) {
      case 'id': {
        const values = new Array<string | null>(rows);
        for (let row = 0; row < rows; row++) values[row] = resultIdText(chunk.ids?.[row]);
        return { kind: 'utf8', values };
      }
      case 'error': {
        const values = new Array<string | null>(rows).fill(null);
        for (const [row, error] of chunk.errors) if (row < rows) values[row] = `${error.code}: ${error.message}`;
        return { kind: 'utf8', values };
      }
      case 'label': {
        const top = bestOf();
        const values = new Array<string | null>(rows);
        for (let row = 0; row < rows; row++) values[row] = valid && valid[row] === 0 ? null : (chunk.names[top[row] as number] ?? null);
        return { kind: 'utf8', values };
      }
      case 'confidence': {
        const top = bestOf();
        const values = new Float32Array(rows);
        if (predicted) for (let row = 0; row < rows; row++) values[row] = v[row * width + (top[row] as number)] as number;
        return { kind: 'float32', values, valid };
      }
      case 'value': {
        const values = new Float32Array(rows);
        if (predicted) for (let row = 0, at = source.index; row < rows; row++, at += width) values[row] = v[at] as number;
        return { kind: 'float32', values, valid };
      }
      case 'output':
        return outputColumn(column, source.output, parsed, rows, valid);
      case 'passthrough': {
        const k = chunk.passthrough?.names.indexOf(source.name) ?? -1;
        const kept = k >= 0 ? chunk.passthrough?.columns[k] : undefined;
        const values = new Array<string | null>(rows).fill(null);
        if (kept) for (let row = 0; row < rows; row++) values[row] = passthroughText(kept[row]);
        return { kind: 'utf8', values };
      }
    }
  });
  return { rows, columns: out };
}

/** One byte a row, 0 for a failed row; null when no row failed. */
function validityOf(chunk: ResultChunk): Uint8Array | null {
  if (chunk.errors.size === 0) return null;
  const valid = new Uint8Array(chunk.rows).fill(1);
  for (const row of chunk.errors.keys()) if (row < chunk.rows) valid[row] = 0;
  return valid;
}

function checkFits(columns: readonly ResultColumn[], chunk: ResultChunk, tensor: boolean): void {
  if (tensor) {
    if (chunk.kind !== 'lines' || (chunk.lines?.length ?? 0) < chunk.rows)
      throw new Error(`stored results are of kind '${chunk.kind}'; the columns are of a tensor model`);
    return;
  }
  const indexes = columns.flatMap((c) => (c.source.from === 'value' ? [c.source.index] : []));
  const width = chunk.names.length;
  if (chunk.kind === 'lines' || indexes.some((i) => i >= width) || chunk.values.length < chunk.rows * width)
    throw new Error(`stored results of kind '${chunk.kind}' with ${width} values a row do not fit these columns`);
}

/** The `outputs` object of each good row's JSON line (null for a failed row). */
function parsedOutputs(chunk: ResultChunk): (Record<string, unknown> | null)[] {
  const out = new Array<Record<string, unknown> | null>(chunk.rows);
  for (let row = 0; row < chunk.rows; row++) {
    out[row] = chunk.errors.has(row)
      ? null
      : outputsOfLine(JSON.parse(chunk.lines?.[row] ?? '') as { outputs?: Record<string, unknown>; embedding?: unknown });
  }
  return out;
}

/** A tensor line's `outputs`; an embedding line's `embedding` as the output of that name. */
function outputsOfLine(line: { outputs?: Record<string, unknown>; embedding?: unknown }): Record<string, unknown> {
  if (line.embedding !== undefined) return { embedding: line.embedding };
  return line.outputs ?? {};
}

function outputColumn(
  column: ResultColumn,
  name: string,
  parsed: (Record<string, unknown> | null)[] | null,
  rows: number,
  valid: Uint8Array | null,
): ResultColumnValues {
  const type = column.type;
  if (type.kind === 'float32-list') {
    const values = new Float32Array(rows * type.size);
    for (let row = 0; row < rows; row++) {
      const outputs = parsed?.[row];
      if (!outputs) continue;
      const flat: unknown[] = [outputs[name]].flat(Number.POSITIVE_INFINITY);
      if (flat.length !== type.size) throw new Error(`output '${name}' of row ${row} has ${flat.length} values, not ${type.size}`);
      // Non-finite values are stored as the strings "NaN", "Infinity", "-Infinity" (JSON has none).
      for (let k = 0; k < type.size; k++) values[row * type.size + k] = Number(flat[k]);
    }
    return { kind: 'float32-list', size: type.size, values, valid };
  }
  const values = new Array<string | null>(rows).fill(null);
  for (let row = 0; row < rows; row++) {
    const value = parsed?.[row]?.[name];
    if (value !== undefined) values[row] = JSON.stringify(value);
  }
  return { kind: 'utf8', values };
}

/** A kept input value as the text columns hold it (null stays null). */
export function passthroughText(value: PassthroughValue | undefined): string | null {
  return value === null || value === undefined ? null : typeof value === 'string' ? value : String(value);
}
