import type { ModelManifest } from '@onnx-batch/contracts';
import type { RowId } from './chunk-codec';
import type { PassthroughColumns } from '../columnar/column-batch';
import { formatFloat } from './float-format';
import { formatResults, formatRowError, jsonNumber, type OutputData, type RowError } from './result-format';

/**
 * A chunk's results as stored: compact, rendered to JSON or CSV only when read. Classification
 * stores each row's probabilities and regression its values as float32 (the label is the argmax,
 * found when rendering); other results (tensor, embedding) keep their JSON lines. Row ids and row errors
 * ride in the header, so a chunk renders without its model version's files.
 *
 *   "OBR1" | u32 header length | header JSON | pad to 8 | float32 values (rows × names) or UTF-8 lines
 */
export interface ResultChunk {
  rows: number;
  /** `values`: numbers per row named by `names`; `lines`: one JSON result line per row, as stored. */
  kind: 'classification' | 'regression' | 'lines';
  /** Labels (classification), target names (regression; one unnamed target is `value`). */
  names: string[];
  /** rows × names.length; NaN in a row that failed. */
  values: Float32Array;
  ids: (RowId | null)[] | null;
  /** Rows that could not be run, and why. */
  errors: Map<number, RowError>;
  /** 'lines' only. */
  lines: string[] | null;
  /** Input columns kept beside the predictions (`passthrough=`), as the input chunk carried them. */
  passthrough?: PassthroughColumns | null;
}

interface ResultHeader {
  rows: number;
  kind: ResultChunk['kind'];
  names: string[];
  ids?: (RowId | null)[];
  /** [row, code, message] of each failed row. */
  errors?: [number, string, string][];
  /** Every row failed with this error (a chunk that could not be run at all). */
  allFailed?: [string, string];
  passthrough?: PassthroughColumns;
}

const MAGIC = 0x3152424f; // "OBR1" little-endian

const pad8 = (n: number): number => (n + 7) & ~7;

/**
 * What a result's values are named: labels (classification), target names (regression; one unnamed
 * target is `value`), none (tensor, embedding).
 */
export function resultNames(spec: ModelManifest['result']): string[] {
  return spec.kind === 'classification' ? [...(spec.labels ?? [])] : spec.kind === 'regression' ? [...(spec.names ?? ['value'])] : [];
}

/** The result chunk of rows [first, first + count) of a run's outputs (a dynamically batched run holds several chunks). */
export function resultChunkFromOutputs(
  manifest: ModelManifest,
  outputs: ReadonlyMap<string, OutputData>,
  first: number,
  count: number,
  ids: readonly (RowId | null)[] | null,
): ResultChunk {
  const spec = manifest.result;
  const base = { rows: count, ids: ids ? [...ids] : null, errors: new Map<number, RowError>() };
  if (spec.kind === 'tensor' || spec.kind === 'embedding')
    return { ...base, kind: 'lines', names: [], values: new Float32Array(0), lines: formatResults(manifest, outputs, first, count, ids) };
  const output = outputs.get(spec.output ?? '');
  if (!output) throw new Error(`model produced no output named ${String(spec.output)}`);
  const names = resultNames(spec);
  const rows = output.dims[0] ?? 0;
  const width = rows === 0 ? names.length : output.data.length / rows;
  const values = new Float32Array(count * names.length);
  for (let i = 0; i < count; i++) {
    for (let k = 0; k < names.length; k++) values[i * names.length + k] = Number(output.data[(first + i) * width + k]);
  }
  return { ...base, kind: spec.kind, names, values, lines: null };
}

/** A chunk of `rows` rows that all failed with `error` (the chunk could not be run; `manifest` null when its version is gone). */
export function failedResultChunk(manifest: ModelManifest | null, rows: number, error: RowError): ResultChunk {
  const spec = manifest?.result ?? { kind: 'tensor' as const };
  const names = resultNames(spec);
  const errors = new Map<number, RowError>();
  for (let row = 0; row < rows; row++) errors.set(row, error);
  const kind = spec.kind === 'tensor' || spec.kind === 'embedding' ? 'lines' : spec.kind;
  return {
    rows,
    kind,
    names,
    values: new Float32Array(kind === 'lines' ? 0 : rows * names.length).fill(Number.NaN),
    ids: null,
    errors,
    lines: kind === 'lines' ? [] : null,
  };
}

/** Joins chunks run row by row (a chunk whose run failed is retried a row at a time) into one. */
export function joinResultChunks(parts: ResultChunk[], ids: readonly (RowId | null)[] | null): ResultChunk {
  const first = parts[0];
  const kind = first?.kind ?? 'lines';
  const names = first?.names ?? [];
  const rows = parts.reduce((n, p) => n + p.rows, 0);
  const values = new Float32Array(kind === 'lines' ? 0 : rows * names.length);
  const errors = new Map<number, RowError>();
  const lines: string[] = [];
  let at = 0;
  for (const part of parts) {
    if (kind !== 'lines')
      values.set(
        part.values.length === part.rows * names.length ? part.values : new Float32Array(part.rows * names.length).fill(Number.NaN),
        at * names.length,
      );
    // A failed part has no lines (its rows render from `errors`): hold their places, or every later line moves up.
    else lines.push(...(part.lines?.length === part.rows ? part.lines : Array.from({ length: part.rows }, () => '')));
    for (const [row, error] of part.errors) errors.set(at + row, error);
    at += part.rows;
  }
  return { rows, kind, names, values, ids: ids ? [...ids] : null, errors, lines: kind === 'lines' ? lines : null };
}

export function encodeResultChunk(chunk: ResultChunk): Buffer {
  const header: ResultHeader = { rows: chunk.rows, kind: chunk.kind, names: chunk.names };
  if (chunk.ids && chunk.ids.some((id) => id !== null)) header.ids = chunk.ids;
  if (chunk.passthrough) header.passthrough = chunk.passthrough;
  if (chunk.errors.size > 0) {
    const distinct = new Set([...chunk.errors.values()].map((e) => `${e.code}\n${e.message}`));
    const only = chunk.errors.get(0);
    if (chunk.errors.size === chunk.rows && distinct.size === 1 && only) header.allFailed = [only.code, only.message];
    else header.errors = [...chunk.errors].map(([row, e]) => [row, e.code, e.message]);
  }
  const headerBytes = Buffer.from(JSON.stringify(header));
  const body =
    chunk.kind === 'lines'
      ? Buffer.from((chunk.lines ?? []).join('\n'))
      : Buffer.from(chunk.values.buffer, chunk.values.byteOffset, chunk.values.byteLength);
  const out = Buffer.alloc(pad8(8 + headerBytes.length) + body.length);
  out.writeUInt32LE(MAGIC, 0);
  out.writeUInt32LE(headerBytes.length, 4);
  headerBytes.copy(out, 8);
  body.copy(out, pad8(8 + headerBytes.length));
  return out;
}

/** Reads a chunk written by encodeResultChunk. Throws on anything that is not one. */
export function decodeResultChunk(buffer: Buffer): ResultChunk {
  if (buffer.byteLength < 8 || buffer.readUInt32LE(0) !== MAGIC) throw new Error('not an onnx-batch result chunk');
  const headerLength = buffer.readUInt32LE(4);
  const header = JSON.parse(buffer.toString('utf8', 8, 8 + headerLength)) as ResultHeader;
  const start = pad8(8 + headerLength);
  const errors = new Map<number, RowError>();
  if (header.allFailed)
    for (let row = 0; row < header.rows; row++) errors.set(row, { code: header.allFailed[0], message: header.allFailed[1] });
  for (const [row, code, message] of header.errors ?? []) errors.set(row, { code, message });
  const base = {
    rows: header.rows,
    kind: header.kind,
    names: header.names,
    ids: header.ids ?? null,
    errors,
    ...(header.passthrough ? { passthrough: header.passthrough } : {}),
  };
  if (header.kind === 'lines') {
    const text = buffer.toString('utf8', start);
    return { ...base, values: new Float32Array(0), lines: text === '' && header.rows === 0 ? [] : text.split('\n') };
  }
  return { ...base, values: valuesAt(buffer, start, header.rows * header.names.length), lines: null };
}

/**
 * The float32 values of a chunk just encoded (not `lines`), `count` of them, as a view of
 * `buffer`: what decodeResultChunk answers as `values`, without parsing the header again.
 */
export function encodedResultValues(buffer: Buffer, count: number): Float32Array {
  return valuesAt(buffer, pad8(8 + buffer.readUInt32LE(4)), count);
}

function valuesAt(buffer: Buffer, start: number, count: number): Float32Array {
  const bytes = buffer.subarray(start);
  // Float32Array needs a 4-aligned offset; copy once when the buffer does not give one.
  const aligned = bytes.byteOffset % 4 === 0 ? bytes : Buffer.from(bytes);
  return new Float32Array(aligned.buffer, aligned.byteOffset, count);
}

// ---------------------------------------------------------------------------------------------
// Rendering.

const quoted = (names: readonly string[]): string[] => names.map((n) => JSON.stringify(n));

/** One JSON result line per row, as the API serves them (`{"id"?, "label", "confidence", "probabilities"}`, …). */
export function renderResultLines(chunk: ResultChunk): string[] {
  const out = new Array<string>(chunk.rows);
  if (chunk.kind === 'lines') {
    for (let row = 0; row < chunk.rows; row++) {
      const error = chunk.errors.get(row);
      out[row] = error ? formatRowError(error, chunk.ids?.[row] ?? undefined) : (chunk.lines?.[row] ?? '');
    }
    return withPassthrough(chunk, out);
  }
  const keys = quoted(chunk.names);
  const width = chunk.names.length;
  const v = chunk.values;
  for (let row = 0; row < chunk.rows; row++) {
    const id = chunk.ids?.[row];
    const error = chunk.errors.get(row);
    if (error) {
      out[row] = formatRowError(error, id ?? undefined);
      continue;
    }
    const head = id === undefined || id === null ? '{' : `{"id":${JSON.stringify(id)},`;
    const base = row * width;
    if (chunk.kind === 'classification') {
      let best = 0;
      let probabilities = '';
      for (let k = 0; k < width; k++) {
        const p = v[base + k] as number;
        if (p > (v[base + best] as number)) best = k;
        probabilities += `${k === 0 ? '' : ','}${keys[k] as string}:${jsonNumber(p)}`;
      }
      out[row] =
        `${head}"label":${keys[best] as string},"confidence":${jsonNumber(v[base + best] as number)},"probabilities":{${probabilities}}}`;
    } else if (width === 1) {
      out[row] = `${head}"value":${jsonNumber(v[base] as number)}}`;
    } else {
      let values = '';
      for (let k = 0; k < width; k++) values += `${k === 0 ? '' : ','}${keys[k] as string}:${jsonNumber(v[base + k] as number)}`;
      out[row] = `${head}"values":{${values}}}`;
    }
  }
  return withPassthrough(chunk, out);
}

/** Each line with the row's kept input columns appended as `"passthrough":{name: value, …}`. */
function withPassthrough(chunk: ResultChunk, lines: string[]): string[] {
  const kept = chunk.passthrough;
  if (!kept) return lines;
  const keys = quoted(kept.names);
  for (let row = 0; row < lines.length; row++) {
    let fields = '';
    kept.columns.forEach((values, k) => (fields += `${k === 0 ? '' : ','}${keys[k] as string}:${JSON.stringify(values[row] ?? null)}`));
    const line = lines[row] as string;
    lines[row] = `${line.slice(0, -1)},"passthrough":{${fields}}}`;
  }
  return lines;
}

export type CsvCell = string | number | boolean | null;

/** The CSV cells of every row, in the order of resultCsvHeader (result-csv.ts). */
export function renderResultCsvRows(chunk: ResultChunk, toCells: (result: Record<string, unknown>) => CsvCell[]): CsvCell[][] {
  if (chunk.kind === 'lines') return renderResultLines(chunk).map((line) => toCells(JSON.parse(line) as Record<string, unknown>));
  const width = chunk.names.length;
  const v = chunk.values;
  const rows: CsvCell[][] = new Array<CsvCell[]>(chunk.rows);
  for (let row = 0; row < chunk.rows; row++) {
    const id = chunk.ids?.[row] ?? null;
    const error = chunk.errors.get(row);
    const base = row * width;
    const cells: CsvCell[] = [id];
    if (error) {
      for (let k = 0; k < (chunk.kind === 'classification' ? width + 2 : width); k++) cells.push(null);
      cells.push(`${error.code}: ${error.message}`);
      rows[row] = cells;
      continue;
    }
    if (chunk.kind === 'classification') {
      let best = 0;
      for (let k = 1; k < width; k++) if ((v[base + k] as number) > (v[base + best] as number)) best = k;
      cells.push(chunk.names[best] ?? null, csvFloat(v[base + best] as number));
    }
    for (let k = 0; k < width; k++) cells.push(csvFloat(v[base + k] as number));
    cells.push(null);
    rows[row] = cells;
  }
  return rows;
}

function csvFloat(value: number): CsvCell {
  return Number.isFinite(value) ? formatFloat(value) : String(value);
}
