import type { FileHandle } from 'node:fs/promises';
import type { ModelManifest } from '@onnx-batch/contracts';
import {
  ArrowResultsWriter,
  ParquetResultsWriter,
  resultChunkColumns,
  resultChunkText,
  resultColumns,
  resultCsvHeaderText,
  writeAtomically,
  type ByteSink,
  type JobRecord,
  type JobStore,
  type OutputFormat,
  type ResultChunk,
} from '@onnx-batch/shared';

/** How one results format goes into the file: its beginning, each stored chunk (never an empty one), its end. */
interface FileEncoder {
  start(): Promise<void>;
  chunk(results: ResultChunk): Promise<void>;
  end(): Promise<void>;
}

/** A sink into a file handle: each piece is written whole, at the end of what came before, before the next is taken. */
function handleSink(handle: FileHandle): ByteSink {
  return async (bytes) => {
    let done = 0;
    while (done < bytes.length) done += (await handle.write(bytes, done, bytes.length - done)).bytesWritten;
  };
}

function fileEncoder(format: OutputFormat, manifest: ModelManifest, handle: FileHandle): FileEncoder {
  const sink = handleSink(handle);
  const text = (value: string): Promise<void> => sink(Buffer.from(value, 'utf8'));
  switch (format) {
    case 'ndjson':
      return {
        start: () => Promise.resolve(),
        chunk: (results) => text(resultChunkText(results, manifest, false)),
        end: () => Promise.resolve(),
      };
    case 'csv':
      return {
        start: () => text(resultCsvHeaderText(manifest)),
        chunk: (results) => text(resultChunkText(results, manifest, true)),
        end: () => Promise.resolve(),
      };
    case 'arrow': {
      const columns = resultColumns(manifest);
      const writer = new ArrowResultsWriter(columns);
      return {
        start: () => sink(writer.start()),
        chunk: (results) => sink(writer.batch(resultChunkColumns(columns, results))),
        end: () => sink(writer.end()),
      };
    }
    case 'parquet': {
      const columns = resultColumns(manifest);
      const writer = new ParquetResultsWriter(columns, sink);
      return {
        start: () => Promise.resolve(), // the leading magic goes out with the first row group
        chunk: (results) => writer.write(resultChunkColumns(columns, results)),
        end: () => writer.finish(),
      };
    }
  }
}

/**
 * Writes a finished job's results to a file, in input order, exactly as the `/results`
 * download formats them: NDJSON lines, CSV with the manifest's header, an Arrow IPC stream
 * (one record batch per stored chunk) or a Parquet file (one row group per stored chunk). One
 * chunk is in memory at a time (the next is prefetched), every write is awaited, and the file
 * appears only once complete.
 */
export async function writeResultsFile(
  target: string,
  record: JobRecord,
  store: JobStore,
  manifest: ModelManifest,
  format: OutputFormat,
): Promise<void> {
  await writeAtomically(target, async (handle: FileHandle) => {
    const encoder = fileEncoder(format, manifest, handle);
    await encoder.start();
    let next = store.readResults(record.id, 0, Math.min(1, record.chunks));
    next.catch(() => undefined); // awaited below; a write failing first must not leave it unhandled
    for (let chunk = 0; chunk < record.chunks; chunk++) {
      const [results] = await next;
      if (chunk + 1 < record.chunks) {
        next = store.readResults(record.id, chunk + 1, chunk + 2);
        next.catch(() => undefined);
      }
      if (!results || results.rows === 0) continue;
      await encoder.chunk(results);
    }
    await encoder.end();
  });
}
