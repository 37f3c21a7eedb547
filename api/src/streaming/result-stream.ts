import type { Request, Response } from 'express';
import { resultEncoder } from './result-encoders';
import type { ResultFormat } from './result-formats';
import type { ModelManifest } from '@onnx-batch/contracts';
import { renderResultLines, type JobRecord, type JobStore, type Logger, type ModelRepository, type ResultChunk } from '@onnx-batch/shared';

export interface ResultStreamRequest {
  record: JobRecord;
  store: JobStore;
  repository: ModelRepository;
  logger: Logger;
  format: ResultFormat;
  /** The page of a `json` request (its checked `offset` and `limit`). */
  page: { offset: number; limit: number } | null;
  basePath: string;
  req: Request;
  res: Response;
}

/** One chunk's read: its results, or why they could not be read (a read never rejects, see readChunk). */
type ChunkRead = { ok: true; results: ResultChunk | null } | { ok: false; error: unknown };

/** What a chunk-by-chunk download needs of its request: the job, where its results are, the exchange. */
export type ChunkStreamRequest = Pick<ResultStreamRequest, 'record' | 'store' | 'logger' | 'req' | 'res'>;

/** How a chunk-by-chunk download writes: its headers, its beginning, each stored chunk that has rows, its end. */
export interface ChunkWriter {
  /** Content-Type, exactly. */
  contentType: string;
  /** Of the attachment's file name, `<jobId>.<extension>`. */
  extension: string;
  start(): Promise<void>;
  /** `chunk` is the chunk's index in the job: its first row is `chunk × record.chunkSize`, whatever came before it. */
  chunk(results: ResultChunk, chunk: number): Promise<void>;
  end(): Promise<void>;
}

/**
 * Writes a finished job's results in input order: reading chunk by chunk (one chunk in memory
 * at a time) and waiting for the socket to drain, so a million-row job streams in bounded memory.
 * The format's encoder (result-encoders.ts) writes the beginning, each chunk and the end.
 */
export async function streamResults(r: ResultStreamRequest): Promise<void> {
  const format = r.format;
  if (format === 'json') {
    if (!r.page) throw new Error('a JSON results request needs its page');
    await sendPage(r, r.page);
    return;
  }
  await streamChunks(r, resultEncoder(format, manifestOf(r), r.res, r.record.passthrough));
}

/**
 * Streams a finished job's stored chunks through `writer`, in order, prefetching the next chunk
 * while the current one drains to the socket.
 *
 * A chunk that cannot be read (Redis lost, stored results that fail to decrypt) before anything
 * is sent is an ordinary error answer; once the body has started, the response is destroyed so
 * the chunked body has no terminating chunk and every client sees a truncated download, never
 * one that looks complete. A chunk the writer cannot write is treated the same way.
 */
export async function streamChunks(r: ChunkStreamRequest, writer: ChunkWriter): Promise<void> {
  const { record, store, res } = r;
  let aborted = false;
  r.req.on('close', () => {
    aborted = !res.writableFinished;
  });
  let started = false;
  // Headers go out with the first chunk, so a first chunk that cannot be read is still an error answer.
  const start = async (): Promise<void> => {
    started = true;
    res.status(200);
    res.setHeader('Content-Type', writer.contentType);
    res.setHeader('Content-Disposition', `attachment; filename="${record.id}.${writer.extension}"`);
    await writer.start();
  };
  /** Runs one step of writing; false (the response destroyed, the failure logged) when it threw. */
  const written = async (chunk: number | string, step: () => Promise<void>): Promise<boolean> => {
    try {
      await step();
      return true;
    } catch (error) {
      logFailure(r, 'stored results could not be written', chunk, error, 'truncated');
      res.destroy();
      return false;
    }
  };
  let next = readChunk(store, record.id, 0);
  for (let chunk = 0; chunk < record.chunks && !aborted; chunk++) {
    const read = await next;
    if (!read.ok) {
      logFailure(r, 'stored results could not be read', chunk, read.error, started ? 'truncated' : 'error');
      if (!started) throw read.error; // nothing sent yet: the problem handler answers it
      res.destroy();
      return;
    }
    // The prefetch runs while this chunk waits for the socket; readChunk never rejects, so a
    // failure then cannot become an unhandled rejection, and one left behind by an abort is harmless.
    if (chunk + 1 < record.chunks) next = readChunk(store, record.id, chunk + 1);
    if (!started && !(await written(chunk, start))) return;
    const results = read.results;
    if (results === null || results.rows === 0) continue;
    if (!(await written(chunk, () => writer.chunk(results, chunk)))) return;
  }
  if (aborted) return;
  if (!started && !(await written('start', start))) return;
  if (!(await written('end', () => writer.end()))) return;
  res.end();
}

function readChunk(store: JobStore, id: string, chunk: number): Promise<ChunkRead> {
  return store.readResults(id, chunk, chunk + 1).then(
    ([results]): ChunkRead => ({ ok: true, results: results ?? null }),
    (error: unknown): ChunkRead => ({ ok: false, error }),
  );
}

/** `answer`: what the client got, an error answer or a body cut short. */
function logFailure(r: ChunkStreamRequest, message: string, chunk: number | string, error: unknown, answer: 'error' | 'truncated'): void {
  r.logger.error(message, {
    requestId: r.req.requestId,
    jobId: r.record.id,
    chunk,
    answer,
    error: error instanceof Error ? error.message : String(error),
  });
}

async function sendPage(r: ResultStreamRequest, page: { offset: number; limit: number }): Promise<void> {
  const { record, store, res } = r;
  const size = record.chunkSize;
  const end = Math.min(record.total, page.offset + page.limit);
  const results: string[] = [];
  if (page.offset < end) {
    const first = Math.floor(page.offset / size);
    const last = Math.floor((end - 1) / size);
    let chunks: (ResultChunk | null)[];
    try {
      chunks = await store.readResults(record.id, first, last + 1);
    } catch (error) {
      logFailure(r, 'stored results could not be read', first === last ? first : `${first}-${last}`, error, 'error');
      throw error; // nothing sent yet: the problem handler answers it
    }
    chunks.forEach((stored, i) => {
      const chunk = first + i;
      const lines = stored ? renderResultLines(stored) : [];
      const from = Math.max(0, page.offset - chunk * size);
      const to = Math.min(lines.length, end - chunk * size);
      for (let k = from; k < to; k++) results.push(lines[k] as string);
    });
  }
  const next = end < record.total ? `${r.basePath}/batch-result/${record.id}/results?offset=${end}&limit=${page.limit}` : null;
  const head = JSON.stringify({ jobId: record.id, offset: page.offset, limit: page.limit, total: record.total, next });
  res
    .status(200)
    .type('application/json')
    .send(`${head.slice(0, -1)},"results":[${results.join(',')}]}`);
}

function manifestOf(r: ResultStreamRequest): ModelManifest {
  return r.repository.resolve(r.record.model, r.record.version).manifest;
}
