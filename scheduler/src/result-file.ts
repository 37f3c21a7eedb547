import type { FileHandle } from 'node:fs/promises';
import type { ModelManifest } from '@onnx-batch/contracts';
import { resultEncoder, writeAtomically, type ByteSink, type JobRecord, type JobStore, type OutputFormat } from '@onnx-batch/shared';

/** A sink into a file handle: each piece is written whole, at the end of what came before, before the next is taken. */
function handleSink(handle: FileHandle): ByteSink {
  return async (bytes) => {
    let done = 0;
    while (done < bytes.length) done += (await handle.write(bytes, done, bytes.length - done)).bytesWritten;
  };
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
    const encoder = resultEncoder(format, manifest, handleSink(handle));
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
