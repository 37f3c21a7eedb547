import type { FileHandle } from 'node:fs/promises';
import { type FeatureSpec, type ModelManifest, ProblemError, featureSize } from '@onnx-batch/contracts';
import type { RowId } from '../codec/chunk-codec';
import {
  type ColumnBatch,
  type FeatureColumn,
  type NumberColumn,
  checkColumnNames,
  invalidColumn,
  invalidUpload,
  invalidValue,
  passthroughValue,
} from './column-batch';
import { hyparquet, hyparquetCompressors } from './esm-packages';

export const PARQUET_TYPE = 'application/vnd.apache.parquet';

export interface ParquetInputOptions {
  /** Largest uncompressed row group accepted: a row group is decoded whole. */
  maxRowGroupBytes: number;
  declaredRows?: number | undefined;
  /** Input columns to keep beside the predictions. */
  passthrough?: readonly string[] | undefined;
}

type Decoded = ArrayLike<unknown> & { slice(start: number, end: number): ArrayLike<unknown> };

type AsyncBuffer = Awaited<ReturnType<ReturnType<typeof hyparquet>['asyncBufferFromFile']>>;

/** A file already open as hyparquet's AsyncBuffer: ranges read at their offsets, the handle left open (its owner closes it). */
async function asyncBufferFromHandle(handle: FileHandle): Promise<AsyncBuffer> {
  const { size } = await handle.stat();
  return {
    byteLength: size,
    async slice(start: number, end?: number): Promise<ArrayBuffer> {
      const stop = Math.min(end ?? size, size);
      const bytes = new Uint8Array(Math.max(0, stop - start));
      let done = 0;
      while (done < bytes.length) {
        const { bytesRead } = await handle.read(bytes, done, bytes.length - done, start + done);
        if (bytesRead === 0) throw new Error(`the file ended at ${start + done} bytes, before ${stop}`);
        done += bytesRead;
      }
      return bytes.buffer;
    },
  };
}

/**
 * Reads a Parquet file one row group at a time into column batches mapped by name to the
 * manifest's features, with the same checks as Arrow: an upload spooled to disk (a path), or a
 * schedule's input file already opened without following symlinks (a handle, which stays open).
 * A row group is decoded whole, so one larger than `maxRowGroupBytes` uncompressed is refused
 * before any is read.
 */
export async function* parquetColumnBatches(
  source: string | FileHandle,
  manifest: ModelManifest,
  options: ParquetInputOptions,
): AsyncGenerator<ColumnBatch> {
  const { asyncBufferFromFile, parquetMetadataAsync, parquetRead } = hyparquet();
  const file = typeof source === 'string' ? await asyncBufferFromFile(source) : await asyncBufferFromHandle(source);
  let metadata: Awaited<ReturnType<typeof parquetMetadataAsync>>;
  try {
    metadata = await parquetMetadataAsync(file);
  } catch (error) {
    throw invalidUpload(`the body is not a readable Parquet file (${error instanceof Error ? error.message : String(error)})`);
  }
  const top = topLevelColumns(metadata.schema);
  const passthrough = options.passthrough ?? [];
  checkColumnNames(top, manifest, passthrough);
  const columns = top;
  const total = Number(metadata.num_rows);
  if (options.declaredRows !== undefined && options.declaredRows !== total) {
    throw invalidUpload(`the upload declared ${options.declaredRows} rows but the file holds ${total}`, 'Content-Rows');
  }
  // Decoded, a row group takes at least 8 bytes a number (dictionary-encoded pages can be far smaller on disk).
  const numbersPerRow = manifest.features.reduce((sum, f) => sum + (f.type === 'string' ? 0 : featureSize(f)), 0);
  metadata.row_groups.forEach((group, i) => {
    const bytes = Math.max(Number(group.total_byte_size), Number(group.num_rows) * numbersPerRow * 8);
    if (bytes > options.maxRowGroupBytes) {
      throw new ProblemError(
        'OB_ERR_PAYLOAD_TOO_LARGE',
        `row group ${i} takes ${bytes} bytes uncompressed, more than the limit of ${options.maxRowGroupBytes} ` +
          '(PARQUET_MAX_ROW_GROUP_BYTES); ' +
          'rewrite the file with smaller row groups, e.g. pyarrow.parquet.write_table(table, path, row_group_size=100_000) or ' +
          "DuckDB COPY … TO 'x.parquet' (ROW_GROUP_SIZE 100000); nothing was queued",
      );
    }
  });
  const compressors = hyparquetCompressors().compressors;
  let rowStart = 0;
  for (const group of metadata.row_groups) {
    const rows = Number(group.num_rows);
    const rowEnd = rowStart + rows;
    const pieces = new Map<string, { start: number; data: Decoded }[]>();
    try {
      await parquetRead({
        file,
        metadata,
        columns,
        rowStart,
        rowEnd,
        utf8: false,
        compressors,
        onChunk: (chunk) => {
          const list = pieces.get(chunk.columnName) ?? [];
          list.push({ start: chunk.rowStart, data: chunk.columnData });
          pieces.set(chunk.columnName, list);
        },
      });
    } catch (error) {
      throw invalidUpload(
        `row group at row ${rowStart} of the Parquet file cannot be read (${error instanceof Error ? error.message : String(error)})`,
      );
    }
    const column = (name: string): ArrayLike<unknown> => assemble(pieces.get(name) ?? [], rowStart, rowEnd, name);
    const features = new Map<string, FeatureColumn>();
    for (const feature of manifest.features) features.set(feature.name, toFeatureColumn(feature, column(feature.name), rowStart));
    const ids = columns.includes('id') ? toIds(column('id'), rowStart) : null;
    const kept = passthrough.length === 0 ? null : passthrough.map((name) => Array.from(column(name), (value) => passthroughValue(value)));
    if (rows > 0) yield { rows, features, ids, passthrough: kept };
    rowStart = rowEnd;
  }
}

/** Names of the schema's top-level columns (a LIST column's own name, not its inner element). */
function topLevelColumns(schema: { name: string; num_children?: number }[]): string[] {
  const names: string[] = [];
  let i = 1;
  const skip = (index: number): number => {
    let next = index + 1;
    for (let c = 0; c < (schema[index]?.num_children ?? 0); c++) next = skip(next);
    return next;
  };
  while (i < schema.length) {
    names.push((schema[i] as { name: string }).name);
    i = skip(i);
  }
  return names;
}

/** One column's values for rows [start, end), from the pieces its pages were decoded into. */
function assemble(pieces: { start: number; data: Decoded }[], start: number, end: number, name: string): ArrayLike<unknown> {
  pieces.sort((a, b) => a.start - b.start);
  if (pieces.length === 1) {
    const only = pieces[0] as { start: number; data: Decoded };
    if (only.start === start && only.data.length === end - start) return only.data;
  }
  const out: unknown[] = [];
  for (const piece of pieces) {
    const from = Math.max(start, piece.start) - piece.start;
    const to = Math.min(end, piece.start + piece.data.length) - piece.start;
    for (let i = from; i < to; i++) out.push(piece.data[i]);
  }
  if (out.length !== end - start) throw invalidColumn(name, `holds ${out.length} values in rows ${start}–${end - 1}, not ${end - start}`);
  return out;
}

function isTypedNumbers(values: ArrayLike<unknown>): values is Exclude<NumberColumn, number[]> {
  return (
    ArrayBuffer.isView(values) && !(values instanceof BigInt64Array) && !(values instanceof BigUint64Array) && !(values instanceof DataView)
  );
}

function toFeatureColumn(feature: FeatureSpec, values: ArrayLike<unknown>, firstRow: number): FeatureColumn {
  const name = feature.name;
  switch (feature.type) {
    case 'number':
    case 'integer': {
      if (isTypedNumbers(values)) return { kind: 'numbers', values };
      const out = new Float64Array(values.length);
      for (let i = 0; i < values.length; i++) out[i] = scalar(values[i], name, firstRow + i);
      return { kind: 'numbers', values: out };
    }
    case 'string': {
      const out = new Array<string>(values.length);
      for (let i = 0; i < values.length; i++) {
        const v = values[i];
        if (typeof v === 'string') out[i] = v;
        else if (v instanceof Uint8Array) out[i] = Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('utf8');
        else if (v === null || v === undefined) throw invalidValue(name, firstRow + i, 'is null; every feature needs a value');
        else throw invalidValue(name, firstRow + i, `must be text, not ${typeof v}`);
      }
      return { kind: 'strings', values: out };
    }
    case 'tensor': {
      const size = featureSize(feature);
      const bytes = feature.base64 === 'uint8';
      const out = bytes ? new Uint8Array(values.length * size) : new Float32Array(values.length * size);
      for (let i = 0; i < values.length; i++) {
        const v = values[i];
        if (v === null || v === undefined) throw invalidValue(name, firstRow + i, 'is null; every feature needs a value');
        if (v instanceof Uint8Array && bytes) {
          if (v.length !== size) throw invalidValue(name, firstRow + i, `must hold ${size} bytes, not ${v.length}`);
          out.set(v, i * size);
          continue;
        }
        const flat = flatten(v, name, firstRow + i);
        if (flat.length !== size) throw invalidValue(name, firstRow + i, `must hold ${size} numbers, not ${flat.length}`);
        // Uint8Array would wrap 256 to 0: check bytes before they are stored as bytes.
        if (bytes)
          for (const x of flat)
            if (!(x >= 0 && x <= 255 && Number.isInteger(x))) throw invalidValue(name, firstRow + i, `must hold bytes (0–255), not ${x}`);
        out.set(flat, i * size);
      }
      return { kind: 'tensor', perRow: size, values: out };
    }
  }
}

function scalar(v: unknown, field: string, row: number): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') {
    const n = Number(v);
    if (!Number.isSafeInteger(n)) throw invalidValue(field, row, `holds ${v}, beyond what a float64 carries exactly`);
    return n;
  }
  if (v === null || v === undefined) throw invalidValue(field, row, 'is null; every feature needs a value');
  throw invalidValue(field, row, `must be a number, not ${typeof v}`);
}

/** A LIST value (possibly nested) as flat numbers. */
function flatten(v: unknown, field: string, row: number): number[] {
  const out: number[] = [];
  const walk = (x: unknown): void => {
    if (Array.isArray(x) || (ArrayBuffer.isView(x) && !(x instanceof DataView))) {
      for (const item of Array.from(x as ArrayLike<unknown>)) walk(item);
    } else out.push(scalar(x, field, row));
  };
  walk(v);
  return out;
}

function toIds(values: ArrayLike<unknown>, firstRow: number): (RowId | null)[] {
  const out = new Array<RowId | null>(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v === null || v === undefined) out[i] = null;
    else if (typeof v === 'string' || typeof v === 'number') out[i] = v;
    else if (typeof v === 'bigint') {
      const n = Number(v);
      if (!Number.isSafeInteger(n)) throw invalidValue('id', firstRow + i, `is ${v}, beyond 2^53; send such ids as text`);
      out[i] = n;
    } else if (v instanceof Uint8Array) out[i] = Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('utf8');
    else throw invalidValue('id', firstRow + i, 'must be text or an integer');
  }
  return out;
}
