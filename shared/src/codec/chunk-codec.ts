import { type FeatureSpec, type GraphInputSpec, type ModelManifest, featureSize, rowElements } from '@onnx-batch/contracts';
import type { ColumnBatch, NumberColumn, PassthroughColumns, PassthroughValue } from '../columnar/column-batch';

/**
 * Compact binary form of a chunk of validated rows, written once at submit time and read by
 * the worker. Numbers are packed typed arrays, byte tensors stay bytes, strings are
 * length-prefixed UTF-8:
 *
 *   "OBC1" | u32 header length | header JSON | pad to 8 | section … (each padded to 8)
 *
 * The header lists the sections (one per graph input, then the row ids when any row has one).
 */
export type StorageKind = 'float32' | 'float64' | 'int32' | 'uint8' | 'string';

export type RowId = string | number;

interface SectionHeader {
  input: string;
  storage: StorageKind;
  byteLength: number;
  /** Number of strings, for string sections. */
  count?: number;
}

interface ChunkHeader {
  rows: number;
  sections: SectionHeader[];
  ids?: number;
  /** Byte length of the passthrough section (JSON PassthroughColumns), after the ids. */
  passthrough?: number;
}

export interface DecodedChunk {
  rows: number;
  /** Per graph input: `rows × elementsPerRow` values in storage form. */
  inputs: Map<string, Float32Array | Float64Array | Int32Array | Uint8Array | string[]>;
  ids: (RowId | null)[] | null;
  /** Input columns kept beside the predictions (`passthrough=`), or null. */
  passthrough: PassthroughColumns | null;
}

const MAGIC = 0x3143424f; // "OBC1" little-endian

function pad8(n: number): number {
  return (n + 7) & ~7;
}

/** How a graph input is stored: bytes when every feature feeding it is a byte tensor. */
export function storageOf(input: GraphInputSpec, features: Map<string, FeatureSpec>): StorageKind {
  if (input.dtype === 'string') return 'string';
  if (input.features.every((name) => features.get(name)?.base64 === 'uint8')) return 'uint8';
  if (input.dtype === 'int64') return 'float64'; // exact to 2^53, which is all JSON can carry
  return input.dtype;
}

type NumericArray = Float32Array | Float64Array | Int32Array | Uint8Array;

function allocate(storage: Exclude<StorageKind, 'string'>, length: number): NumericArray {
  switch (storage) {
    case 'float32':
      return new Float32Array(length);
    case 'float64':
      return new Float64Array(length);
    case 'int32':
      return new Int32Array(length);
    case 'uint8':
      return new Uint8Array(length);
  }
}

interface Slot {
  spec: GraphInputSpec;
  storage: StorageKind;
  perRow: number;
  features: { spec: FeatureSpec; index: number; size: number }[];
  numbers: NumericArray | null;
  strings: string[];
}

/**
 * Packs validated rows into the binary chunk format. Rows must have passed RowValidator;
 * `add` still answers with an error for what a schema cannot see (a base64 value that
 * decodes to the wrong number of bytes).
 */
export class ChunkEncoder {
  private readonly slots: Slot[];
  private ids: (RowId | null)[] = [];
  private hasIds = false;
  private count = 0;
  private passthrough: PassthroughValue[][];

  constructor(
    manifest: ModelManifest,
    private readonly capacity: number,
    /** Input columns kept beside the predictions (columnar input only). */
    private readonly passthroughNames: readonly string[] = [],
  ) {
    this.passthrough = passthroughNames.map(() => []);
    const byName = new Map(manifest.features.map((f) => [f.name, f]));
    const indexOf = new Map(manifest.features.map((f, i) => [f.name, i]));
    this.slots = manifest.inputs.map((spec) => {
      const storage = storageOf(spec, byName);
      const perRow = rowElements(spec.shape);
      return {
        spec,
        storage,
        perRow,
        features: spec.features.map((name) => {
          const feature = byName.get(name);
          if (!feature) throw new Error(`input ${spec.name} names unknown feature ${name}`);
          return { spec: feature, index: indexOf.get(name) ?? 0, size: featureSize(feature) };
        }),
        numbers: storage === 'string' ? null : allocate(storage, capacity * perRow),
        strings: [],
      };
    });
  }

  get rows(): number {
    return this.count;
  }

  /** Rows that still fit. */
  get room(): number {
    return this.capacity - this.count;
  }

  get full(): boolean {
    return this.count >= this.capacity;
  }

  /** Appends one validated row; answers with an error (field, message) instead of adding it. */
  add(row: unknown): { field: string; message: string } | null {
    if (this.full) throw new Error('chunk is full');
    const isArray = Array.isArray(row);
    const values = row as Record<string, unknown> & unknown[];
    // A row refused half-way must leave nothing behind: strings are appended, so remember where.
    const stringCounts = this.slots.map((slot) => slot.strings.length);
    const refuse = (field: string, message: string): { field: string; message: string } => {
      this.slots.forEach((slot, i) => (slot.strings.length = stringCounts[i] ?? 0));
      return { field, message };
    };
    for (const slot of this.slots) {
      let offset = this.count * slot.perRow;
      for (const feature of slot.features) {
        const value = isArray ? values[feature.index] : values[feature.spec.name];
        if (slot.numbers === null) {
          // onnxruntime-node cuts a string at its first NUL; a NUL is never part of a word.
          slot.strings.push(String(value).replaceAll('\0', ' '));
          continue;
        }
        if (feature.spec.type !== 'tensor') {
          slot.numbers[offset++] = value as number;
          continue;
        }
        if (typeof value === 'string') {
          const bytes = Buffer.from(value, 'base64');
          if (bytes.length !== feature.size) {
            return refuse(feature.spec.name, `must decode to ${feature.size} bytes, not ${bytes.length}`);
          }
          slot.numbers.set(bytes, offset);
        } else {
          flattenInto(value as unknown[], slot.numbers, offset);
        }
        offset += feature.size;
      }
    }
    const id = isArray ? undefined : (values.id as RowId | undefined);
    if (id !== undefined) this.hasIds = true;
    this.ids.push(id ?? null);
    this.count++;
    return null;
  }

  /**
   * Appends rows [from, from + count) of a validated column batch (ColumnValidator), copying each
   * column into place without making row objects: the Arrow and Parquet path.
   */
  addColumns(batch: ColumnBatch, from: number, count: number): void {
    if (this.count + count > this.capacity) throw new Error('chunk is full');
    for (const slot of this.slots) {
      let featureOffset = 0;
      for (const feature of slot.features) {
        const column = batch.features.get(feature.spec.name);
        if (!column) throw new Error(`column batch lacks feature ${feature.spec.name}`);
        if (column.kind === 'strings') {
          for (let r = from; r < from + count; r++) slot.strings.push((column.values[r] as string).replaceAll('\0', ' '));
        } else if (slot.numbers !== null) {
          copyColumn(
            column.values,
            from * feature.size,
            count,
            feature.size,
            slot.numbers,
            this.count * slot.perRow + featureOffset,
            slot.perRow,
          );
        }
        featureOffset += feature.size;
      }
    }
    batch.passthrough?.forEach((values, k) => {
      const kept = this.passthrough[k];
      if (kept) for (let r = from; r < from + count; r++) kept.push(values[r] ?? null);
    });
    if (batch.ids) {
      this.hasIds = true;
      for (let r = from; r < from + count; r++) this.ids.push(batch.ids[r] ?? null);
    } else {
      for (let r = 0; r < count; r++) this.ids.push(null);
    }
    this.count += count;
  }

  /** The chunk in binary form; the encoder is then empty and reusable. */
  finish(): Buffer {
    const sections: { header: SectionHeader; bytes: Uint8Array }[] = this.slots.map((slot) => {
      const bytes =
        slot.numbers === null
          ? encodeStrings(slot.strings)
          : new Uint8Array(slot.numbers.buffer, 0, this.count * slot.perRow * slot.numbers.BYTES_PER_ELEMENT);
      const header: SectionHeader = { input: slot.spec.name, storage: slot.storage, byteLength: bytes.byteLength };
      if (slot.numbers === null) header.count = slot.strings.length;
      return { header, bytes };
    });
    const idBytes = this.hasIds ? Buffer.from(JSON.stringify(this.ids)) : null;
    const kept: PassthroughColumns | null =
      this.passthroughNames.length > 0 ? { names: [...this.passthroughNames], columns: this.passthrough } : null;
    const passthroughBytes = kept ? Buffer.from(JSON.stringify(kept)) : null;
    const header: ChunkHeader = { rows: this.count, sections: sections.map((s) => s.header) };
    if (idBytes) header.ids = idBytes.byteLength;
    if (passthroughBytes) header.passthrough = passthroughBytes.byteLength;
    const headerBytes = Buffer.from(JSON.stringify(header));
    let total = pad8(8 + headerBytes.byteLength);
    for (const s of sections) total += pad8(s.bytes.byteLength);
    if (idBytes) total += pad8(idBytes.byteLength);
    if (passthroughBytes) total += passthroughBytes.byteLength;
    const out = Buffer.alloc(total);
    out.writeUInt32LE(MAGIC, 0);
    out.writeUInt32LE(headerBytes.byteLength, 4);
    headerBytes.copy(out, 8);
    let offset = pad8(8 + headerBytes.byteLength);
    for (const s of sections) {
      out.set(s.bytes, offset);
      offset += pad8(s.bytes.byteLength);
    }
    if (idBytes) {
      idBytes.copy(out, offset);
      offset += pad8(idBytes.byteLength);
    }
    if (passthroughBytes) passthroughBytes.copy(out, offset);
    this.reset();
    return out;
  }

  reset(): void {
    this.count = 0;
    this.ids = [];
    this.hasIds = false;
    this.passthrough = this.passthroughNames.map(() => []);
    for (const slot of this.slots) slot.strings = [];
  }
}

/**
 * Copies `rows` runs of `size` values from `source` (starting at `start`) to `target`, one run every
 * `stride` values from `offset`. A graph input fed by one column is one contiguous copy.
 */
function copyColumn(
  source: NumberColumn,
  start: number,
  rows: number,
  size: number,
  target: NumericArray,
  offset: number,
  stride: number,
): void {
  if (size === stride && !Array.isArray(source)) {
    target.set(source.subarray(start, start + rows * size), offset);
    return;
  }
  for (let r = 0; r < rows; r++) {
    const from = start + r * size;
    const to = offset + r * stride;
    for (let k = 0; k < size; k++) target[to + k] = source[from + k] as number;
  }
}

function flattenInto(value: unknown[], target: NumericArray, offset: number): number {
  for (const item of value) {
    if (Array.isArray(item)) offset = flattenInto(item, target, offset);
    else target[offset++] = item as number;
  }
  return offset;
}

function encodeStrings(strings: string[]): Uint8Array {
  const encoded = strings.map((s) => Buffer.from(s, 'utf8'));
  const lengths = Buffer.alloc(4 * encoded.length);
  encoded.forEach((b, i) => lengths.writeUInt32LE(b.byteLength, 4 * i));
  return Buffer.concat([lengths, ...encoded]);
}

function decodeStrings(bytes: Buffer, count: number): string[] {
  const out = new Array<string>(count);
  let offset = 4 * count;
  for (let i = 0; i < count; i++) {
    const length = bytes.readUInt32LE(4 * i);
    out[i] = bytes.toString('utf8', offset, offset + length);
    offset += length;
  }
  return out;
}

/** Reads a chunk written by ChunkEncoder. Throws on anything that is not one. */
export function decodeChunk(buffer: Buffer): DecodedChunk {
  if (buffer.byteLength < 8 || buffer.readUInt32LE(0) !== MAGIC) throw new Error('not an onnx-batch chunk');
  const headerLength = buffer.readUInt32LE(4);
  const header = JSON.parse(buffer.toString('utf8', 8, 8 + headerLength)) as ChunkHeader;
  // Typed arrays need aligned offsets; a Buffer from a pool may start anywhere, so copy once.
  const aligned = buffer.byteOffset % 8 === 0 ? buffer : Buffer.from(buffer);
  let offset = pad8(8 + headerLength);
  const inputs: DecodedChunk['inputs'] = new Map();
  for (const section of header.sections) {
    const start = aligned.byteOffset + offset;
    const bytes = section.byteLength;
    switch (section.storage) {
      case 'float32':
        inputs.set(section.input, new Float32Array(aligned.buffer, start, bytes / 4));
        break;
      case 'float64':
        inputs.set(section.input, new Float64Array(aligned.buffer, start, bytes / 8));
        break;
      case 'int32':
        inputs.set(section.input, new Int32Array(aligned.buffer, start, bytes / 4));
        break;
      case 'uint8':
        inputs.set(section.input, new Uint8Array(aligned.buffer, start, bytes));
        break;
      case 'string': {
        inputs.set(section.input, decodeStrings(aligned.subarray(offset, offset + bytes), section.count ?? 0));
        break;
      }
    }
    offset += pad8(bytes);
  }
  const ids = header.ids ? (JSON.parse(aligned.toString('utf8', offset, offset + header.ids)) as (RowId | null)[]) : null;
  if (header.ids) offset += pad8(header.ids);
  const passthrough = header.passthrough
    ? (JSON.parse(aligned.toString('utf8', offset, offset + header.passthrough)) as PassthroughColumns)
    : null;
  return { rows: header.rows, inputs, ids, passthrough };
}

/** Rows in an encoded chunk, read from its header alone. */
export function peekRows(buffer: Buffer): number {
  if (buffer.byteLength < 8 || buffer.readUInt32LE(0) !== MAGIC) throw new Error('not an onnx-batch chunk');
  const headerLength = buffer.readUInt32LE(4);
  return (JSON.parse(buffer.toString('utf8', 8, 8 + headerLength)) as ChunkHeader).rows;
}
