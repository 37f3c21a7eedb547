import { Transform, type Readable } from 'node:stream';
import {
  type Data,
  type DataType,
  type Field,
  type RecordBatch,
  CompressionType,
  Precision,
  RecordBatchReader,
  Type,
  compressionRegistry,
  makeVector,
} from 'apache-arrow';
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
import { hyparquetCompressors } from './esm-packages';

/** The IPC end-of-stream marker: a continuation token and a zero-length message. */
const END_OF_STREAM = Buffer.from([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);

export const ARROW_STREAM_TYPE = 'application/vnd.apache.arrow.stream';

let codecsRegistered = false;

/**
 * Record batches compressed with ZSTD are decoded (hyparquet-compressors' pure-JS zstd). LZ4 is
 * refused by name: the IPC format uses LZ4 frames, which no well-kept pure-JS decoder reads here.
 */
function registerCodecs(): void {
  if (codecsRegistered) return;
  codecsRegistered = true;
  const existing = compressionRegistry.get(CompressionType.ZSTD);
  compressionRegistry.set(CompressionType.ZSTD, {
    ...existing,
    decode: (data: Uint8Array) => hyparquetCompressors().decompressZstd(data),
  });
  const lz4 = compressionRegistry.get(CompressionType.LZ4_FRAME);
  compressionRegistry.set(CompressionType.LZ4_FRAME, {
    ...lz4,
    decode: () => {
      throw invalidUpload('the Arrow stream is LZ4-compressed, which is not accepted; write it uncompressed or with ZSTD compression');
    },
  });
}

/**
 * Watches the bytes on their way to the reader: counts them, keeps the last eight (to find the
 * end-of-stream marker) and refuses an object-mode source, from which apache-arrow silently
 * reads nothing past the first object.
 */
class ByteTap extends Transform {
  bytes = 0;
  private tail: Buffer = Buffer.alloc(0);

  override _transform(chunk: unknown, _encoding: BufferEncoding, callback: (error?: Error | null, data?: Buffer) => void): void {
    if (!Buffer.isBuffer(chunk)) {
      callback(new Error('an Arrow stream must be read from bytes, not objects'));
      return;
    }
    this.bytes += chunk.length;
    this.tail = chunk.length >= 8 ? chunk.subarray(chunk.length - 8) : Buffer.concat([this.tail, chunk]).subarray(-8);
    callback(null, chunk);
  }

  endsWithMarker(): boolean {
    return this.tail.equals(END_OF_STREAM);
  }
}

export interface ArrowInputOptions {
  /** Rows the client declared (Content-Rows); the schema's `rows` metadata is checked too. */
  declaredRows?: number | undefined;
  /** Input columns to keep beside the predictions. */
  passthrough?: readonly string[] | undefined;
}

/**
 * Reads an Arrow IPC stream from a byte stream, one record batch at a time, into column batches
 * mapped by name to the manifest's features (checkedRecordBatches refuses what is cut short).
 */
export async function* arrowColumnBatches(
  body: Readable,
  manifest: ModelManifest,
  options: ArrowInputOptions = {},
): AsyncGenerator<ColumnBatch> {
  let mapping: ColumnMapping | null = null;
  for await (const { batch, firstRow } of checkedRecordBatches(body, options.declaredRows)) {
    mapping ??= mapColumns(batch.schema.fields as Field<DataType>[], manifest, options.passthrough ?? []);
    yield readBatch(batch, mapping, firstRow);
  }
}

/**
 * The non-empty record batches of an Arrow IPC stream read from a byte stream, with the index of
 * each one's first row. apache-arrow ends quietly on a stream cut at a batch boundary or missing
 * its end-of-stream marker; this refuses both, a second stream after the first, and a row count
 * other than the one declared (`declaredRows`, or the schema's `rows` metadata).
 */
export async function* checkedRecordBatches(
  body: Readable,
  declaredRows?: number,
): AsyncGenerator<{ batch: RecordBatch; firstRow: number }> {
  if (body.readableObjectMode) throw new Error('an Arrow stream must be read from bytes, not objects');
  registerCodecs();
  const tap = new ByteTap();
  let uploadError: Error | undefined;
  body.on('error', (error) => {
    uploadError = error;
    tap.destroy(error);
  });
  body.pipe(tap);
  let streams = 0;
  let rows = 0;
  let declared = declaredRows;
  let first = true;
  try {
    for await (const reader of RecordBatchReader.readAll(tap)) {
      if (++streams > 1) throw invalidUpload('the body holds more than one Arrow stream; send one stream per job');
      for await (const batch of reader) {
        if (first) {
          first = false;
          declared = checkedDeclaration(declared, batch.schema.metadata.get('rows'));
        }
        if (batch.numRows === 0) continue;
        yield { batch, firstRow: rows };
        rows += batch.numRows;
      }
    }
  } catch (error) {
    if (error instanceof ProblemError) throw error;
    if (uploadError) throw uploadError; // the upload itself failed (too large, not gzip, client gone): its own error
    throw invalidUpload(`the body is not a readable Arrow IPC stream (${error instanceof Error ? error.message : String(error)})`);
  } finally {
    body.unpipe(tap);
    tap.destroy();
  }
  if (streams === 0 || tap.bytes === 0) throw invalidUpload('the body is empty; send an Arrow IPC stream');
  if (!tap.endsWithMarker()) {
    throw invalidUpload('the Arrow stream ends without its end-of-stream marker (0xFFFFFFFF 0x00000000): it was cut short or not closed');
  }
  if (declared !== undefined && declared !== rows)
    throw invalidUpload(`the upload declared ${declared} rows but holds ${rows}`, 'Content-Rows');
}

function checkedDeclaration(header: number | undefined, metadata: string | undefined): number | undefined {
  if (metadata === undefined) return header;
  const rows = Number(metadata);
  if (!Number.isSafeInteger(rows) || rows < 0)
    throw invalidUpload(`the schema's metadata 'rows' must be a row count, not '${metadata.slice(0, 40)}'`, 'rows');
  if (header !== undefined && header !== rows)
    throw invalidUpload(`Content-Rows says ${header} rows, the schema's metadata ${rows}`, 'Content-Rows');
  return rows;
}

interface ColumnMapping {
  features: { spec: FeatureSpec; index: number; read: (data: Data, field: string, firstRow: number) => FeatureColumn }[];
  id: number | null;
  /** Field index of each passthrough column, in the order they were named. */
  passthrough: number[];
}

/** Maps schema fields to features by name and picks how each is read; refuses what cannot be, by column. */
function mapColumns(fields: Field<DataType>[], manifest: ModelManifest, passthrough: readonly string[]): ColumnMapping {
  const byName = new Map(fields.map((f, i) => [f.name, i]));
  checkColumnNames(
    fields.map((f) => f.name),
    manifest,
    passthrough,
  );
  const features = manifest.features.map((spec) => {
    const index = byName.get(spec.name) ?? -1; // present: checkColumnNames saw to it
    const field = fields[index] as Field<DataType>;
    return { spec, index, read: readerFor(spec, field.type) };
  });
  const id = byName.get('id') ?? null;
  if (id !== null) {
    const type = (fields[id] as Field<DataType>).type;
    if (!isInteger(type) && !isText(type)) throw invalidColumn('id', `must be text (Utf8) or an integer, not ${typeName(type)}`);
  }
  return { features, id, passthrough: passthrough.map((name) => byName.get(name) ?? -1) };
}

/** A type as Arrow names it (Int, Float, Utf8, Dictionary, …). */
const typeName = (type: DataType): string => String(Type[type.typeId]);
const isInteger = (type: DataType): boolean => type.typeId === Type.Int;
const isFloat = (type: DataType): boolean => type.typeId === Type.Float;
const isText = (type: DataType): boolean => type.typeId === Type.Utf8 || type.typeId === Type.LargeUtf8;
const valueType = (type: DataType): DataType =>
  type.typeId === Type.Dictionary ? (type as unknown as { dictionary: DataType }).dictionary : type;

function readerFor(spec: FeatureSpec, type: DataType): (data: Data, field: string, firstRow: number) => FeatureColumn {
  const values = valueType(type);
  const name = spec.name;
  const refuse = (wanted: string): never => {
    throw invalidColumn(name, `must be ${wanted}, not ${typeName(type)}`);
  };
  switch (spec.type) {
    case 'number':
    case 'integer':
      if (!isInteger(values) && !isFloat(values)) refuse('numeric (any integer or float width)');
      return (data, field, first) => ({ kind: 'numbers', values: numbersOf(data, field, first) });
    case 'string':
      if (!isText(values)) refuse('text (Utf8 or LargeUtf8)');
      return (data, field, first) => ({ kind: 'strings', values: stringsOf(data, field, first) });
    case 'tensor': {
      const size = featureSize(spec);
      const bytes = spec.base64 === 'uint8';
      const wanted = `a FixedSizeList of ${size} numbers${bytes ? `, FixedSizeBinary(${size}) or Binary of ${size} bytes` : ''}`;
      if (type.typeId === Type.FixedSizeList) {
        if (listSize(type) !== size) refuse(wanted);
        return (data, field, first) => ({ kind: 'tensor', perRow: size, values: fixedListValues(data, field, first, size) });
      }
      if (bytes && type.typeId === Type.FixedSizeBinary) {
        if ((type as unknown as { byteWidth: number }).byteWidth !== size) refuse(wanted);
        return (data, field, first) => ({ kind: 'tensor', perRow: size, values: fixedBinaryValues(data, field, first, size) });
      }
      if (bytes && (type.typeId === Type.Binary || type.typeId === Type.LargeBinary)) {
        return (data, field, first) => ({ kind: 'tensor', perRow: size, values: binaryValues(data, field, first, size) });
      }
      return refuse(wanted);
    }
  }
}

/** Elements a row of a (possibly nested) FixedSizeList holds, or -1 when its leaves are not numbers. */
function listSize(type: DataType): number {
  let size = 1;
  let t = type;
  while (t.typeId === Type.FixedSizeList) {
    const list = t as unknown as { listSize: number; children: Field<DataType>[] };
    size *= list.listSize;
    t = (list.children[0] as Field<DataType>).type;
  }
  return isInteger(t) || isFloat(t) ? size : -1;
}

function readBatch(batch: RecordBatch, mapping: ColumnMapping, firstRow: number): ColumnBatch {
  const features = new Map<string, FeatureColumn>();
  for (const feature of mapping.features) {
    const data = batch.data.children[feature.index] as Data;
    features.set(feature.spec.name, feature.read(data, feature.spec.name, firstRow));
  }
  const ids = mapping.id === null ? null : idsOf(batch.data.children[mapping.id] as Data, firstRow);
  const passthrough =
    mapping.passthrough.length === 0
      ? null
      : mapping.passthrough.map((index) => {
          const vector = makeVector(batch.data.children[index] as Data);
          return Array.from({ length: batch.numRows }, (_, row) => passthroughValue(vector.get(row)));
        });
  return { rows: batch.numRows, features, ids, passthrough };
}

function refuseNulls(data: Data, field: string, firstRow: number): void {
  if (data.nullCount <= 0) return;
  for (let i = 0; i < data.length; i++)
    if (!data.getValid(i)) throw invalidValue(field, firstRow + i, 'is null; every feature needs a value');
}

/** A numeric column as a typed array (a view when its width allows, converted otherwise); int64 checked to be exact. */
function numbersOf(data: Data, field: string, firstRow: number): NumberColumn {
  refuseNulls(data, field, firstRow);
  if (data.type.typeId === Type.Dictionary) return dictionaryValues<number>(data, (v) => v as number, field, firstRow);
  return numericView(data, field, firstRow, data.offset, data.length);
}

function numericView(data: Data, field: string, firstRow: number, start: number, count: number, perRow = 1): NumberColumn {
  const values = data.values as unknown;
  if (values instanceof BigInt64Array || values instanceof BigUint64Array) {
    const out = new Float64Array(count);
    for (let i = 0; i < count; i++) {
      const v = values[start + i] as bigint;
      const n = Number(v);
      if (!Number.isSafeInteger(n))
        throw invalidValue(field, firstRow + Math.floor(i / perRow), `holds ${v}, beyond what a float64 carries exactly`);
      out[i] = n;
    }
    return out;
  }
  if (data.type.typeId === Type.Float && (data.type as unknown as { precision: Precision }).precision === Precision.HALF) {
    const out = new Float64Array(count); // Float16 arrives as its raw bits
    for (let i = 0; i < count; i++) out[i] = float16(values as Uint16Array, start + i);
    return out;
  }
  return (values as Exclude<NumberColumn, number[]>).subarray(start, start + count);
}

function float16(bits: Uint16Array, i: number): number {
  const h = bits[i] as number;
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const fraction = h & 0x3ff;
  if (exponent === 0) return sign * 2 ** -14 * (fraction / 1024);
  if (exponent === 0x1f) return fraction ? NaN : sign * Infinity;
  return sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
}

function fixedListValues(data: Data, field: string, firstRow: number, size: number): NumberColumn {
  refuseNulls(data, field, firstRow);
  let leaf: Data = data;
  let start = data.offset;
  while (leaf.type.typeId === Type.FixedSizeList) {
    const width = (leaf.type as unknown as { listSize: number }).listSize;
    leaf = leaf.children[0] as Data;
    start = leaf.offset + start * width;
    if (leaf.nullCount > 0) throw invalidValue(field, firstRow, 'holds a null element; every element needs a value');
  }
  return numericView(leaf, field, firstRow, start, data.length * size, size);
}

function fixedBinaryValues(data: Data, field: string, firstRow: number, size: number): Uint8Array {
  refuseNulls(data, field, firstRow);
  return (data.values as Uint8Array).subarray(data.offset * size, (data.offset + data.length) * size);
}

function binaryValues(data: Data, field: string, firstRow: number, size: number): Uint8Array {
  refuseNulls(data, field, firstRow);
  const offsets = data.valueOffsets as Int32Array | BigInt64Array;
  const bytes = data.values as Uint8Array;
  const out = new Uint8Array(data.length * size);
  for (let i = 0; i < data.length; i++) {
    const from = Number(offsets[data.offset + i]);
    const to = Number(offsets[data.offset + i + 1]);
    if (to - from !== size) throw invalidValue(field, firstRow + i, `must hold ${size} bytes, not ${to - from}`);
    out.set(bytes.subarray(from, to), i * size);
  }
  return out;
}

function stringsOf(data: Data, field: string, firstRow: number): string[] {
  refuseNulls(data, field, firstRow);
  if (data.type.typeId === Type.Dictionary) return dictionaryValues(data, (v) => v as string, field, firstRow);
  return utf8Values(data);
}

function utf8Values(data: Data): string[] {
  const offsets = data.valueOffsets as Int32Array | BigInt64Array;
  const bytes = Buffer.from(
    (data.values as Uint8Array).buffer,
    (data.values as Uint8Array).byteOffset,
    (data.values as Uint8Array).byteLength,
  );
  const out = new Array<string>(data.length);
  for (let i = 0; i < data.length; i++)
    out[i] = bytes.toString('utf8', Number(offsets[data.offset + i]), Number(offsets[data.offset + i + 1]));
  return out;
}

/** A dictionary-encoded column decoded: each row's index looked up in its dictionary. */
function dictionaryValues<T>(data: Data, cast: (value: unknown) => T, field: string, firstRow: number): T[] {
  const dictionary = data.dictionary;
  if (!dictionary) throw invalidColumn(field, 'is dictionary-encoded but its dictionary is missing');
  const indices = data.values as ArrayLike<number | bigint>;
  const decoded = dictionary.toArray() as ArrayLike<unknown>;
  const out = new Array<T>(data.length);
  for (let i = 0; i < data.length; i++) {
    const value = decoded[Number(indices[data.offset + i])];
    if (value === undefined || value === null) throw invalidValue(field, firstRow + i, 'is null; every feature needs a value');
    out[i] = cast(typeof value === 'bigint' ? Number(value) : value);
  }
  return out;
}

function idsOf(data: Data, firstRow: number): (RowId | null)[] {
  const out = new Array<RowId | null>(data.length);
  const text = isText(valueType(data.type));
  const strings = data.type.typeId === Type.Dictionary ? null : text ? utf8Values(data) : null;
  const dictionary = data.type.typeId === Type.Dictionary ? dictionaryValues(data, (v) => v as RowId, 'id', firstRow) : null;
  for (let i = 0; i < data.length; i++) {
    if (data.nullCount > 0 && !data.getValid(i)) {
      out[i] = null;
      continue;
    }
    if (dictionary) out[i] = dictionary[i] as RowId;
    else if (strings) out[i] = strings[i] as string;
    else {
      const v = (data.values as ArrayLike<number | bigint>)[data.offset + i] as number | bigint;
      const n = Number(v);
      if (!Number.isSafeInteger(n)) throw invalidValue('id', firstRow + i, `is ${v}, beyond 2^53; send such ids as text`);
      out[i] = n;
    }
  }
  return out;
}
