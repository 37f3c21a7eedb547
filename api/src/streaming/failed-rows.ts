import type { ResultChunk } from '@onnx-batch/shared';
import { streamChunks, type ChunkStreamRequest } from './result-stream';
import { writeDraining } from './write-draining';

export const FAILED_ROWS_TYPE = 'application/x-ndjson';

/**
 * The NDJSON lines of a stored chunk's failed rows, in row order: `{"index","id","code","message"}`,
 * `index` the row's place in the job's input (`first` is the chunk's first row), `id` as submitted or null.
 */
export function failedRowLines(results: ResultChunk, first: number): string {
  let text = '';
  // A Map iterates in insertion order, and no writer of a chunk promises that is row order.
  for (const [row, error] of [...results.errors].sort(([a], [b]) => a - b)) {
    const id = results.ids?.[row] ?? null;
    text += `${JSON.stringify({ index: first + row, id, code: error.code, message: error.message })}\n`;
  }
  return text;
}

/**
 * Streams only the failed rows of a finished job, chunk by chunk like its results (result-stream.ts:
 * one chunk in memory, a read error before the first byte an error answer, after it a cut-off body).
 * A job without failed rows is an empty body.
 */
export function streamFailedRows(r: ChunkStreamRequest): Promise<void> {
  const nothing = (): Promise<void> => Promise.resolve();
  return streamChunks(r, {
    contentType: FAILED_ROWS_TYPE,
    extension: 'failed.ndjson',
    start: nothing,
    chunk: async (results, chunk) => {
      if (results.errors.size > 0) await writeDraining(r.res, failedRowLines(results, chunk * r.record.chunkSize));
    },
    end: nothing,
  });
}
