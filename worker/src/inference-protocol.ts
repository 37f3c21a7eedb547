import type { ModelManifest } from '@onnx-batch/contracts';
import type { BaselineTransfer } from '@onnx-batch/shared';

/** Messages between a worker process and its inference threads. */

export interface ThreadOptions {
  intraOpThreads: number;
  /** Share of chunks counted into drift statistics (DRIFT_SAMPLE_RATE; 0 = none). */
  driftSampleRate: number;
}

export interface ModelRef {
  /** Changes when the model's files change; sessions are cached by it. */
  fingerprint: string;
  modelPath: string;
  /** Sent with the first batch of a model version to a thread only; the thread keeps it. */
  manifest?: ModelManifest;
  /** Sent with the manifest: the version's baseline (null: none, nothing to count). */
  baseline?: BaselineTransfer | null;
}

export interface RunRequest {
  type: 'run';
  batchId: number;
  model: ModelRef;
  /** Encoded chunks (transferred, not copied); run together in one `session.run()` when possible. */
  chunks: ArrayBuffer[];
}

/** Drops a model version's session (its directory is gone or its files changed). */
export interface ReleaseRequest {
  type: 'release';
  fingerprint: string;
}

/** Asks which model versions the thread holds a session for. */
export interface StatsRequest {
  type: 'stats';
  requestId: number;
}

export type ThreadRequest = RunRequest | ReleaseRequest | StatsRequest;

export interface ChunkOutcome {
  /** The chunk's results, encoded compactly (shared/src/codec/result-chunk.ts): what is stored. */
  results: Uint8Array;
  rows: number;
  failedRows: number;
  /** The first row error's message, when any row failed. */
  firstError: string | null;
  /** Milliseconds spent in `session.run()` for the batch this chunk was part of. */
  inferenceMs: number;
  /** Rows in that batch (dynamic batching may have joined several chunks). */
  batchRows: number;
  /**
   * The result output of this chunk's rows, `rows × width` numbers (classification: the
   * probabilities; regression: the values; NaN for a row that failed): what shadow comparisons
   * and statistics read without decoding results. A view of `results`. Absent for tensor results.
   */
  output?: RowOutputs;
  /** The chunk's rows counted into its version's baseline bins (countChunk), when it has one and the chunk was sampled. */
  drift?: DriftCounts;
}

export interface DriftCounts {
  /** The digest of the baseline whose bins these are. */
  digest: string;
  counts: Uint32Array;
}

export interface RowOutputs {
  data: Float32Array;
  width: number;
}

export type ThreadReply =
  | { type: 'result'; batchId: number; chunks: ChunkOutcome[] }
  | { type: 'error'; batchId: number; message: string }
  | { type: 'stats'; requestId: number; sessions: string[] };
