import type { RowId } from '../codec/chunk-codec';
import type { QualityArm, QualityKind } from '@onnx-batch/contracts';

/**
 * What ground-truth labels are joined to, kept apart from a job's results (which expire after
 * RESULT_TTL_SECONDS) for LABEL_RETENTION_DAYS: per chunk, the rows' stored float32 values
 * (probabilities, or the regression value; NaN for a row that failed) and ids; per job, a pointer
 * naming the tenant, model, version and arm, so a label days later finds them after the job's
 * record is gone.
 *
 *   "OBP1" | u32 header length | header JSON | pad to 4 | float32 values (rows × width)
 */
export interface KeptPredictions {
  /** When they were made (ms): the hour and day buckets their labels count in. */
  at: number;
  /** The version that made them, when it is not the job's (a shadow's). */
  version?: string;
  rows: number;
  width: number;
  ids: (RowId | null)[] | null;
  values: Float32Array;
}

export type { QualityArm } from '@onnx-batch/contracts';
export const QUALITY_ARMS: readonly QualityArm[] = ['default', 'canary', 'pinned', 'shadow'];

/** The job's pointer (`<job>:quality`): what its labels need once its record is gone. */
export interface JobQualityPointer {
  jobId: string;
  tenant: string;
  model: string;
  version: string;
  arm: QualityArm;
  kind: QualityKind;
  /** The classifier's labels (their order is the class index); [] for regression. */
  labels: string[];
  total: number;
  chunkSize: number;
  chunks: number;
}

const MAGIC = 0x3150424f; // "OBP1" little-endian
const pad4 = (n: number): number => (n + 3) & ~3;

export function encodeKeptPredictions(kept: KeptPredictions): Buffer {
  const header = Buffer.from(
    JSON.stringify({
      at: kept.at,
      rows: kept.rows,
      width: kept.width,
      ...(kept.version !== undefined ? { version: kept.version } : {}),
      ...(kept.ids ? { ids: kept.ids } : {}),
    }),
  );
  const start = pad4(8 + header.length);
  const out = Buffer.alloc(start + kept.values.length * 4);
  out.writeUInt32LE(MAGIC, 0);
  out.writeUInt32LE(header.length, 4);
  header.copy(out, 8);
  Buffer.from(kept.values.buffer, kept.values.byteOffset, kept.values.byteLength).copy(out, start);
  return out;
}

export function decodeKeptPredictions(buffer: Buffer): KeptPredictions {
  if (buffer.length < 8 || buffer.readUInt32LE(0) !== MAGIC) throw new Error('not kept predictions (bad magic)');
  const length = buffer.readUInt32LE(4);
  const header = JSON.parse(buffer.subarray(8, 8 + length).toString('utf8')) as {
    at: number;
    rows: number;
    width: number;
    version?: string;
    ids?: (RowId | null)[];
  };
  const start = pad4(8 + length);
  const count = header.rows * header.width;
  if (buffer.length < start + count * 4) throw new Error('kept predictions are cut short');
  // Copied: the buffer's offset need not be 4-aligned.
  const values = new Float32Array(count);
  Buffer.from(values.buffer).set(buffer.subarray(start, start + count * 4));
  return {
    at: header.at,
    rows: header.rows,
    width: header.width,
    ...(header.version !== undefined ? { version: header.version } : {}),
    ids: header.ids ?? null,
    values,
  };
}

// ---------------------------------------------------------------------------------------------
// Labels as stored: a string per chunk, a fixed width per row, all zero bytes where none is given.

/** Bytes per row of a chunk's labels: a class index + 1 (uint16), or the value (float64). */
export function labelWidth(kind: QualityKind): number {
  return kind === 'classification' ? 2 : 8;
}

/** A truth (class index or value) as its stored bytes. A value of 0 is stored as −0, whose bytes are not all zero. */
export function encodeLabel(kind: QualityKind, truth: number): Buffer {
  const out = Buffer.alloc(labelWidth(kind));
  if (kind === 'classification') out.writeUInt16LE(truth + 1, 0);
  else out.writeDoubleLE(truth === 0 ? -0 : truth, 0);
  return out;
}

/** The truth stored at `offset` of a chunk's labels, or null where none was given. */
export function decodeLabel(kind: QualityKind, stored: Buffer | null, row: number): number | null {
  const width = labelWidth(kind);
  const offset = row * width;
  if (!stored || stored.length < offset + width) return null;
  if (kind === 'classification') {
    const value = stored.readUInt16LE(offset);
    return value === 0 ? null : value - 1;
  }
  let empty = true;
  for (let i = 0; i < width; i++) if (stored[offset + i] !== 0) empty = false;
  return empty ? null : stored.readDoubleLE(offset) + 0; // + 0 turns −0 back into 0
}

// ---------------------------------------------------------------------------------------------
// Buckets: the hour and the UTC day of a prediction.

export type QualityUnit = 'h' | 'd';
const UNIT_MS: Record<QualityUnit, number> = { h: 3_600_000, d: 86_400_000 };

export function qualityBucketIndex(unit: QualityUnit, ms: number): number {
  return Math.floor(ms / UNIT_MS[unit]);
}

export function qualityBucketStart(unit: QualityUnit, index: number): number {
  return index * UNIT_MS[unit];
}

/** When a bucket's counters expire (EXPIREAT seconds): the retention after the bucket ends. */
export function qualityBucketExpiry(unit: QualityUnit, index: number, retentionSeconds: number): number {
  return Math.floor(qualityBucketStart(unit, index + 1) / 1000) + retentionSeconds;
}

/** The buckets of `unit` that overlap [from, to) (ms), oldest first. */
export function qualityBucketsBetween(unit: QualityUnit, from: number, to: number): number[] {
  const out: number[] = [];
  for (let i = qualityBucketIndex(unit, from); qualityBucketStart(unit, i) < to; i++) out.push(i);
  return out;
}
