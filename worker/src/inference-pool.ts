import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { peekRows, transferBaseline, type Logger, type ModelVersion } from '@onnx-batch/shared';
import type { ChunkOutcome, ReleaseRequest, RunRequest, StatsRequest, ThreadOptions, ThreadReply } from './inference-protocol';

export interface InferencePoolOptions {
  threads: number;
  intraOpThreads: number;
  /** Share of chunks the threads count into drift statistics (0 = none; default 0). */
  driftSampleRate?: number;
  /** Most rows joined into one `run()` by dynamic batching. */
  maxBatchRows: number;
  /** Told of every successful `run()`: the model and the outcomes of the chunks it ran (metrics). */
  onBatch?: (model: ModelVersion, outcomes: readonly ChunkOutcome[]) => void;
}

interface Waiting {
  model: ModelVersion;
  input: Buffer;
  rows: number;
  resolve: (outcome: ChunkOutcome) => void;
  reject: (error: Error) => void;
}

interface Thread {
  worker: Worker;
  busy: Waiting[] | null;
  batchId: number;
  manifestsSent: Set<string>;
  /** Stats requests awaiting the thread's answer, by request id. */
  stats: Map<number, (sessions: string[]) => void>;
}

/** A thread died or failed a whole batch; the chunk should be retried. */
export class InferenceError extends Error {
  override name = 'InferenceError';
}

/**
 * Inference threads plus dynamic batching. A chunk goes straight to an idle thread, so a lone
 * chunk never waits; chunks that arrive while every thread is busy queue up per model version
 * and the next free thread runs them together in one `session.run()` (a call costs ~13 µs
 * however small, so many 1-row jobs cost about as much as one).
 */
export class InferencePool {
  private readonly threads: Thread[] = [];
  private readonly waiting = new Map<string, Waiting[]>();
  private nextBatchId = 1;
  private nextStatsId = 1;
  private closed = false;

  constructor(
    private readonly options: InferencePoolOptions,
    private readonly logger: Logger,
  ) {
    for (let i = 0; i < options.threads; i++) this.threads.push(this.spawn());
  }

  /** Runs one encoded chunk of `model`; resolves with its result lines. */
  run(model: ModelVersion, input: Buffer): Promise<ChunkOutcome> {
    if (this.closed) return Promise.reject(new InferenceError('inference pool is closed'));
    return new Promise<ChunkOutcome>((resolve, reject) => {
      const queue = this.waiting.get(model.fingerprint) ?? [];
      queue.push({ model, input, rows: peekRows(input), resolve, reject });
      this.waiting.set(model.fingerprint, queue);
      this.dispatch();
    });
  }

  /** Rows waiting for a free thread (for metrics and tests). */
  get backlog(): number {
    let rows = 0;
    for (const queue of this.waiting.values()) for (const w of queue) rows += w.rows;
    return rows;
  }

  /**
   * Releases a model version's sessions in every thread: its directory is gone, or its files
   * changed (a new fingerprint). A chunk of it that still comes creates a session again.
   */
  release(fingerprint: string): void {
    if (this.closed) return;
    for (const thread of this.threads) {
      thread.manifestsSent.delete(fingerprint);
      thread.worker.postMessage({ type: 'release', fingerprint } satisfies ReleaseRequest);
    }
  }

  /** The fingerprints each thread holds a session for, one list per thread (diagnostics and tests). */
  sessions(): Promise<string[][]> {
    return Promise.all(
      this.threads.map(
        (thread) =>
          new Promise<string[]>((resolve) => {
            const requestId = this.nextStatsId++;
            thread.stats.set(requestId, resolve);
            thread.worker.postMessage({ type: 'stats', requestId } satisfies StatsRequest);
          }),
      ),
    );
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const queue of this.waiting.values()) for (const w of queue) w.reject(new InferenceError('inference pool closed'));
    this.waiting.clear();
    await Promise.all(this.threads.map((t) => t.worker.terminate()));
  }

  private spawn(): Thread {
    const worker = new Worker(path.join(__dirname, 'inference-thread.js'), {
      workerData: {
        intraOpThreads: this.options.intraOpThreads,
        driftSampleRate: this.options.driftSampleRate ?? 0,
      } satisfies ThreadOptions,
    });
    const thread: Thread = { worker, busy: null, batchId: 0, manifestsSent: new Set(), stats: new Map() };
    worker.on('message', (reply: ThreadReply) => this.onReply(thread, reply));
    worker.on('error', (error) => this.onExit(thread, `inference thread failed: ${error.message}`));
    worker.on('exit', (code) => this.onExit(thread, `inference thread exited with code ${code}`));
    return thread;
  }

  private onReply(thread: Thread, reply: ThreadReply): void {
    if (reply.type === 'stats') {
      thread.stats.get(reply.requestId)?.(reply.sessions);
      thread.stats.delete(reply.requestId);
      return;
    }
    const batch = thread.busy;
    if (!batch || reply.batchId !== thread.batchId) return;
    thread.busy = null;
    if (reply.type === 'error') {
      for (const w of batch) w.reject(new InferenceError(reply.message));
    } else {
      if (batch[0]) this.options.onBatch?.(batch[0].model, reply.chunks);
      batch.forEach((w, i) => {
        const outcome = reply.chunks[i];
        if (outcome) w.resolve(outcome);
        else w.reject(new InferenceError('inference thread returned too few results'));
      });
    }
    this.dispatch();
  }

  private onExit(thread: Thread, message: string): void {
    const index = this.threads.indexOf(thread);
    if (index === -1) return;
    this.threads.splice(index, 1);
    for (const w of thread.busy ?? []) w.reject(new InferenceError(message));
    thread.busy = null;
    for (const answer of thread.stats.values()) answer([]); // a lost thread holds no session
    thread.stats.clear();
    if (this.closed) return;
    this.logger.error('inference thread lost; starting another', { reason: message });
    this.threads.push(this.spawn());
    this.dispatch();
  }

  private dispatch(): void {
    for (const thread of this.threads) {
      if (thread.busy) continue;
      const batch = this.takeBatch();
      if (!batch) return;
      const first = batch[0] as Waiting;
      thread.busy = batch;
      thread.batchId = this.nextBatchId++;
      const chunks = batch.map((w) => toTransferable(w.input));
      const request: RunRequest = {
        type: 'run',
        batchId: thread.batchId,
        model: {
          fingerprint: first.model.fingerprint,
          modelPath: first.model.modelPath,
          // Structured-cloning a manifest per batch is measurable; each thread keeps the ones it has seen.
          ...(thread.manifestsSent.has(first.model.fingerprint)
            ? {}
            : {
                manifest: first.model.manifest,
                baseline: first.model.baseline && this.options.driftSampleRate ? transferBaseline(first.model.baseline) : null,
              }),
        },
        chunks,
      };
      thread.worker.postMessage(request, chunks);
      thread.manifestsSent.add(first.model.fingerprint);
    }
  }

  /** The oldest waiting model version's chunks, as many as fit in one batch. */
  private takeBatch(): Waiting[] | null {
    let oldestKey: string | null = null;
    for (const [key, queue] of this.waiting) {
      if (queue.length > 0) {
        oldestKey = key;
        break; // Map keeps insertion order; re-inserted after draining, so first = longest waiting
      }
    }
    if (oldestKey === null) return null;
    const queue = this.waiting.get(oldestKey) as Waiting[];
    const batch: Waiting[] = [];
    let rows = 0;
    while (queue.length > 0) {
      const next = queue[0] as Waiting;
      if (
        batch.length > 0 &&
        rows + next.rows > Math.min(this.options.maxBatchRows, next.model.manifest.maxBatchRows ?? Number.POSITIVE_INFINITY)
      )
        break;
      batch.push(next);
      rows += next.rows;
      queue.shift();
    }
    if (queue.length === 0) this.waiting.delete(oldestKey);
    return batch;
  }
}

/** A chunk's own ArrayBuffer, so it can be moved to the thread without copying twice. */
function toTransferable(input: Buffer): ArrayBuffer {
  if (input.byteOffset === 0 && input.byteLength === input.buffer.byteLength && input.buffer instanceof ArrayBuffer) return input.buffer;
  const copy = new ArrayBuffer(input.byteLength);
  new Uint8Array(copy).set(input);
  return copy;
}
