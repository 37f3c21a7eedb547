import path from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';
import type { ModelManifest } from '@onnx-batch/contracts';
import {
  countChunk,
  OOV_EVERY,
  decodeChunk,
  encodedResultValues,
  encodeResultChunk,
  failedResultChunk,
  joinResultChunks,
  resultChunkFromOutputs,
  type ResultChunk,
  restoreBaseline,
  sliceChunk,
  type DecodedChunk,
  type LoadedBaseline,
} from '@onnx-batch/shared';
import type { ChunkOutcome, ModelRef, RunRequest, ThreadOptions, ThreadReply, ThreadRequest } from './inference-protocol';
import { createSession, runSession } from './onnx-session';

/**
 * An inference thread: owns one ONNX Runtime session per model version, created on first use
 * and reused. `session.run()` blocks the thread it runs on, so it runs here, off the worker's
 * event loop, which stays free to renew BullMQ locks.
 */
const options = workerData as ThreadOptions;
const sessions = new Map<string, Promise<ort.InferenceSession>>();
const manifests = new Map<string, ModelManifest>();
/** Baselines of the model versions that have one, by fingerprint (sent with the manifest). */
const baselines = new Map<string, LoadedBaseline>();
/** The batch being run (the pool sends one at a time): a session is released only after it. */
let inFlight: Promise<unknown> = Promise.resolve();

/** Forgets a model version; its session is released once the batch in flight (which may use it) is done. */
function release(fingerprint: string): void {
  const old = sessions.get(fingerprint);
  sessions.delete(fingerprint);
  manifests.delete(fingerprint);
  baselines.delete(fingerprint);
  if (old)
    void inFlight
      .then(() => old)
      .then((s) => s.release())
      .catch(() => undefined);
}

function session(model: ModelRef): Promise<ort.InferenceSession> {
  let existing = sessions.get(model.fingerprint);
  if (!existing) {
    // The pool releases replaced versions in every thread; this also bounds a thread that
    // meets a new file of the same path first: one session per model directory.
    for (const key of sessions.keys()) {
      if (key.split('|')[0] === path.dirname(model.modelPath) && key !== model.fingerprint) release(key);
    }
    existing = createSession(model.modelPath, options.intraOpThreads);
    existing.catch(() => sessions.delete(model.fingerprint));
    sessions.set(model.fingerprint, existing);
  }
  return existing;
}

/**
 * A chunk's outcome: its results encoded compactly (result-chunk.ts), and a view of their values
 * as the row outputs shadow comparisons and statistics read (the same memory: one transfer).
 */
function outcome(chunk: ResultChunk, ms: number, batchRows: number, input: DecodedChunk): ChunkOutcome {
  // Input columns kept beside the predictions travel with them, untouched.
  const results = encodeResultChunk(input.passthrough ? { ...chunk, passthrough: input.passthrough } : chunk);
  const values = chunk.kind === 'lines' ? null : encodedResultValues(results, chunk.rows * chunk.names.length);
  const failedRows = chunk.errors.size;
  const firstError = failedRows > 0 ? (chunk.errors.values().next().value?.message ?? null) : null;
  return {
    results,
    rows: chunk.rows,
    failedRows,
    firstError,
    inferenceMs: ms,
    batchRows,
    ...(values ? { output: { data: values, width: chunk.names.length } } : {}),
  };
}

/** Runs one chunk on its own; when that fails, row by row, so only the bad rows fail. */
async function runAlone(s: ort.InferenceSession, manifest: ModelManifest, chunk: DecodedChunk): Promise<ChunkOutcome> {
  try {
    const { outputs, ms } = await runSession(s, manifest, [chunk]);
    return outcome(resultChunkFromOutputs(manifest, outputs, 0, chunk.rows, chunk.ids), ms, chunk.rows, chunk);
  } catch {
    const parts: ResultChunk[] = [];
    let totalMs = 0;
    for (let row = 0; row < chunk.rows; row++) {
      const single = sliceChunk(manifest, chunk, row, 1);
      try {
        const { outputs, ms } = await runSession(s, manifest, [single]);
        totalMs += ms;
        parts.push(resultChunkFromOutputs(manifest, outputs, 0, 1, single.ids));
      } catch (error) {
        parts.push(
          failedResultChunk(manifest, 1, {
            code: 'OB_ERR_INFERENCE_FAILED',
            message: `the model could not run this row: ${(error as Error).message}`,
          }),
        );
      }
    }
    return outcome(joinResultChunks(parts, chunk.ids), totalMs, 1, chunk);
  }
}

async function handle(request: RunRequest): Promise<ChunkOutcome[]> {
  const { model } = request;
  if (model.manifest) {
    manifests.set(model.fingerprint, model.manifest);
    baselines.delete(model.fingerprint);
    if (model.baseline && options.driftSampleRate > 0) {
      try {
        baselines.set(model.fingerprint, restoreBaseline(model.manifest, model.baseline));
      } catch {
        // drift statistics must never fail inference: this version is simply not counted
      }
    }
  }
  const manifest = manifests.get(model.fingerprint);
  if (!manifest) throw new Error(`no manifest for model ${model.modelPath}`);
  const s = await session(model);
  const chunks = request.chunks.map((b) => decodeChunk(Buffer.from(b)));
  const outcomes = await runChunks(s, manifest, chunks);
  const baseline = baselines.get(model.fingerprint);
  if (baseline) countDrift(baseline, chunks, outcomes);
  return outcomes;
}

/**
 * Counts each sampled chunk's rows into its baseline's bins, here where the rows are decoded and
 * the outputs at hand: the worker's main thread only adds the small arrays up. Never fails a run.
 */
function countDrift(baseline: LoadedBaseline, chunks: readonly DecodedChunk[], outcomes: ChunkOutcome[]): void {
  const rate = options.driftSampleRate;
  chunks.forEach((chunk, i) => {
    const outcome = outcomes[i];
    if (!outcome || (rate < 1 && Math.random() >= rate)) return;
    try {
      outcome.drift = {
        digest: baseline.digest,
        counts: countChunk(baseline, chunk, outcome.output, Math.floor(Math.random() * OOV_EVERY)),
      };
    } catch {
      // a chunk that cannot be measured is not counted; its results stand
    }
  });
}

async function runChunks(s: ort.InferenceSession, manifest: ModelManifest, chunks: DecodedChunk[]): Promise<ChunkOutcome[]> {
  if (chunks.length === 1) return [await runAlone(s, manifest, chunks[0] as DecodedChunk)];
  try {
    const { outputs, ms } = await runSession(s, manifest, chunks);
    const batchRows = chunks.reduce((n, c) => n + c.rows, 0);
    let first = 0;
    return chunks.map((chunk) => {
      const results = resultChunkFromOutputs(manifest, outputs, first, chunk.rows, chunk.ids);
      first += chunk.rows;
      return outcome(results, ms, batchRows, chunk);
    });
  } catch {
    // One bad chunk must not fail the others it was batched with.
    const outcomes: ChunkOutcome[] = [];
    for (const chunk of chunks) outcomes.push(await runAlone(s, manifest, chunk));
    return outcomes;
  }
}

const port = parentPort;
if (!port) throw new Error('inference-thread must run as a worker thread');
port.on('message', (request: ThreadRequest) => {
  switch (request.type) {
    case 'run': {
      const done = handle(request);
      inFlight = done.catch(() => undefined);
      done.then(
        (chunks) =>
          port.postMessage({ type: 'result', batchId: request.batchId, chunks } satisfies ThreadReply, [
            ...new Set(
              chunks.flatMap((c) => [c.results.buffer as ArrayBuffer, ...(c.drift ? [c.drift.counts.buffer as ArrayBuffer] : [])]),
            ),
          ]),
        (error: unknown) =>
          port.postMessage({
            type: 'error',
            batchId: request.batchId,
            message: error instanceof Error ? error.message : String(error),
          } satisfies ThreadReply),
      );
      break;
    }
    case 'release':
      release(request.fingerprint);
      break;
    case 'stats':
      port.postMessage({ type: 'stats', requestId: request.requestId, sessions: [...sessions.keys()] } satisfies ThreadReply);
      break;
  }
});
