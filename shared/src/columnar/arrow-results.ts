import {
  Field,
  FixedSizeList,
  Float32,
  makeData,
  RecordBatch,
  RecordBatchStreamWriter,
  Schema,
  Struct,
  Utf8,
  type Data,
  type DataType,
} from 'apache-arrow';
import type { ResultColumn, ResultColumnsChunk, ResultColumnValues } from '../codec/result-columns';

/** The Arrow schema of results columns (result-columns.ts): Utf8, Float32, FixedSizeList<Float32>[n]; every field nullable. */
export function resultArrowSchema(columns: readonly ResultColumn[]): Schema {
  return new Schema(columns.map((column) => new Field(column.name, arrowType(column), true)));
}

function arrowType(column: ResultColumn): DataType {
  switch (column.type.kind) {
    case 'utf8':
      return new Utf8();
    case 'float32':
      return new Float32();
    case 'float32-list':
      return new FixedSizeList(column.type.size, new Field('item', new Float32(), false));
  }
}

/**
 * An Arrow IPC stream of results, written a message at a time: `start()` is the schema message,
 * `batch()` one record batch (one stored chunk), `end()` the end-of-stream marker. Each answers
 * the bytes to send, so the caller decides how to wait for its sink; nothing accumulates here.
 */
export class ArrowResultsWriter {
  private readonly schema: Schema;
  private readonly writer = new MessageWriter();

  constructor(columns: readonly ResultColumn[]) {
    this.schema = resultArrowSchema(columns);
  }

  start(): Uint8Array {
    this.writer.reset(undefined, this.schema);
    return this.writer.take();
  }

  batch(chunk: ResultColumnsChunk): Uint8Array {
    const fields = this.schema.fields;
    const bitmaps = new Map<Uint8Array, { bitmap: Uint8Array; nulls: number }>();
    const children = chunk.columns.map((values, i) => columnData(fields[i]?.type as DataType, values, chunk.rows, bitmaps));
    const data = makeData({ type: new Struct(fields), length: chunk.rows, nullCount: 0, children });
    this.writer.write(new RecordBatch(this.schema, data));
    return this.writer.take();
  }

  end(): Uint8Array {
    this.writer.finish();
    return this.writer.take();
  }
}

/**
 * apache-arrow's stream writer, with the bytes of each message kept here instead of in its
 * internal queue (which only an async reader drains): `take()` answers them, joined.
 */
class MessageWriter extends RecordBatchStreamWriter {
  private parts: Uint8Array[] = [];
  private size = 0;

  // In stream form, apache-arrow writes only typed arrays (message prefixes, flatbuffers, bodies, padding).
  protected override _write(chunk: ArrayBufferView): this {
    if (!ArrayBuffer.isView(chunk)) throw new Error('apache-arrow wrote something other than bytes');
    if (!this._started || chunk.byteLength === 0) return this;
    this.parts.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    this.size += chunk.byteLength;
    this._position += chunk.byteLength;
    return this;
  }

  take(): Uint8Array {
    const parts = this.parts;
    const size = this.size;
    this.parts = [];
    this.size = 0;
    return parts.length === 1 ? (parts[0] as Uint8Array) : Buffer.concat(parts, size);
  }
}

function columnData(
  type: DataType,
  values: ResultColumnValues,
  rows: number,
  bitmaps: Map<Uint8Array, { bitmap: Uint8Array; nulls: number }>,
): Data {
  switch (values.kind) {
    case 'utf8':
      return utf8Data(type as Utf8, values.values);
    case 'float32': {
      const validity = values.valid ? packed(values.valid, bitmaps) : null;
      return makeData({
        type: type as Float32,
        length: rows,
        nullCount: validity?.nulls ?? 0,
        ...(validity && validity.nulls > 0 ? { nullBitmap: validity.bitmap } : {}),
        data: values.values,
      });
    }
    case 'float32-list': {
      const list = type as FixedSizeList<Float32>;
      const validity = values.valid ? packed(values.valid, bitmaps) : null;
      const child = makeData({ type: list.children[0]?.type as Float32, length: rows * values.size, nullCount: 0, data: values.values });
      return makeData({
        type: list,
        length: rows,
        nullCount: validity?.nulls ?? 0,
        ...(validity && validity.nulls > 0 ? { nullBitmap: validity.bitmap } : {}),
        child,
      });
    }
  }
}

/** A validity mask (a byte a row) as Arrow's bitmap (a bit a row, least significant first); columns sharing a mask share its bitmap. */
function packed(valid: Uint8Array, cache: Map<Uint8Array, { bitmap: Uint8Array; nulls: number }>): { bitmap: Uint8Array; nulls: number } {
  let found = cache.get(valid);
  if (!found) {
    const bitmap = new Uint8Array((valid.length + 7) >> 3);
    let nulls = 0;
    for (let row = 0; row < valid.length; row++) {
      if (valid[row]) bitmap[row >> 3] = (bitmap[row >> 3] as number) | (1 << (row & 7));
      else nulls++;
    }
    found = { bitmap, nulls };
    cache.set(valid, found);
  }
  return found;
}

/** Utf8 data from strings: one UTF-8 encoding of them all (offsets from string lengths when it is ASCII). */
function utf8Data(type: Utf8, values: readonly (string | null)[]): Data<Utf8> {
  const rows = values.length;
  const offsets = new Int32Array(rows + 1);
  let nulls = 0;
  let text = '';
  for (let row = 0; row < rows; row++) {
    const value = values[row];
    if (value === null || value === undefined) nulls++;
    else text += value;
    offsets[row + 1] = text.length;
  }
  let bytes = Buffer.from(text, 'utf8');
  if (bytes.length !== text.length) {
    // Not ASCII: offsets count bytes, so encode value by value.
    bytes = Buffer.allocUnsafe(bytes.length);
    let at = 0;
    for (let row = 0; row < rows; row++) {
      const value = values[row];
      if (value !== null && value !== undefined) at += bytes.write(value, at, 'utf8');
      offsets[row + 1] = at;
    }
  }
  let nullBitmap: Uint8Array | undefined;
  if (nulls > 0) {
    nullBitmap = new Uint8Array((rows + 7) >> 3);
    for (let row = 0; row < rows; row++) {
      if (values[row] !== null && values[row] !== undefined) nullBitmap[row >> 3] = (nullBitmap[row >> 3] as number) | (1 << (row & 7));
    }
  }
  return makeData({ type, length: rows, nullCount: nulls, ...(nullBitmap ? { nullBitmap } : {}), valueOffsets: offsets, data: bytes });
}
