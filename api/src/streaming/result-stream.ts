import type { Request, Response } from 'express';
import { writeDraining } from './write-draining';
import type { ModelManifest } from '@onnx-batch/contracts';
import {
  renderResultLines,
  type JobRecord,
  type JobStore,
  type Logger,
  type ModelRepository,
  type ResultChunk,
  resultChunkText,
  resultCsvHeaderText,
} from '@onnx-batch/shared';

export interface ResultStreamRequest {
  record: JobRecord;
  store: JobStore;
  repository: ModelRepository;
  logger: Logger;
  format: string;
  page: { offset: number; limit: number } | null;
  basePath: string;
  req: Request;
  res: Response;
}

/** One chunk's read: its results, or why they could not be read (a read never rejects, see readChunk). */
type ChunkRead = { ok: true; results: ResultChunk | null } | { ok: false; error: unknown };

/**
 * Writes a finished job's results in input order: reading chunk by chunk (one chunk in memory
 * at a time) and waiting for the socket to drain, so a million-row job streams in bounded memory.
 *
 * A chunk that cannot be read (Redis lost, stored results that fail to decrypt) before anything
 * is sent is an ordinary error answer; once the body has started, the response is destroyed so
 * the chunked body has no terminating chunk and every client sees a truncated download, never
 * one that looks complete.
 */
export async function streamResults(r: ResultStreamRequest): Promise<void> {
  const { record, store, res } = r;
  if (r.page) {
    await sendPage(r, r.page);
    return;
  }
  const manifest = manifestOf(r);
  const csv = r.format === 'text/csv';
  let aborted = false;
  r.req.on('close', () => {
    aborted = !res.writableFinished;
  });
  let started = false;
  // Headers go out with the first chunk, so a first chunk that cannot be read is still an error answer.
  const start = async (): Promise<void> => {
    started = true;
    res.status(200).type(csv ? 'text/csv; charset=utf-8' : 'application/x-ndjson');
    res.setHeader('Content-Disposition', `attachment; filename="${record.id}.${csv ? 'csv' : 'ndjson'}"`);
    if (csv) await writeDraining(res, resultCsvHeaderText(manifest));
  };
  let next = readChunk(store, record.id, 0);
  for (let chunk = 0; chunk < record.chunks && !aborted; chunk++) {
    const read = await next;
    if (!read.ok) {
      logReadFailure(r, chunk, read.error, started ? 'truncated' : 'error');
      if (!started) throw read.error; // nothing sent yet: the problem handler answers it
      res.destroy();
      return;
    }
    // The prefetch runs while this chunk waits for the socket; readChunk never rejects, so a
    // failure then cannot become an unhandled rejection, and one left behind by an abort is harmless.
    if (chunk + 1 < record.chunks) next = readChunk(store, record.id, chunk + 1);
    if (!started) await start();
    if (read.results === null || read.results.rows === 0) continue;
    await writeDraining(res, resultChunkText(read.results, manifest, csv));
  }
  if (aborted) return;
  if (!started) await start();
  res.end();
}

function readChunk(store: JobStore, id: string, chunk: number): Promise<ChunkRead> {
  return store.readResults(id, chunk, chunk + 1).then(
    ([results]): ChunkRead => ({ ok: true, results: results ?? null }),
    (error: unknown): ChunkRead => ({ ok: false, error }),
  );
}

/** `answer`: what the client got, an error answer or a body cut short. */
function logReadFailure(r: ResultStreamRequest, chunk: number | string, error: unknown, answer: 'error' | 'truncated'): void {
  r.logger.error('stored results could not be read', {
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
      logReadFailure(r, first === last ? first : `${first}-${last}`, error, 'error');
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
