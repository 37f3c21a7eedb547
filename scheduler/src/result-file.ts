import type { FileHandle } from 'node:fs/promises';
import type { ModelManifest } from '@onnx-batch/contracts';
import {
  writeAtomically,
  type JobRecord,
  type JobStore,
  type OutputFormat,
  resultChunkText,
  resultCsvHeaderText,
} from '@onnx-batch/shared';

/**
 * Writes a finished job's results to a file, in input order, exactly as the `/results`
 * download formats them: NDJSON lines, or CSV with the manifest's header. One chunk
 * is in memory at a time (the next is prefetched), and the file appears only once complete.
 */
export async function writeResultsFile(
  target: string,
  record: JobRecord,
  store: JobStore,
  manifest: ModelManifest,
  format: OutputFormat,
): Promise<void> {
  await writeAtomically(target, async (handle: FileHandle) => {
    if (format === 'csv') await handle.write(resultCsvHeaderText(manifest));
    let next = store.readResults(record.id, 0, Math.min(1, record.chunks));
    next.catch(() => undefined); // awaited below; a write failing first must not leave it unhandled
    for (let chunk = 0; chunk < record.chunks; chunk++) {
      const [results] = await next;
      if (chunk + 1 < record.chunks) {
        next = store.readResults(record.id, chunk + 1, chunk + 2);
        next.catch(() => undefined);
      }
      if (!results || results.rows === 0) continue;
      await handle.write(resultChunkText(results, manifest, format === 'csv'));
    }
  });
}
