import { jobStatusDocument } from '@onnx-batch/contracts';
import { renderResultLines, type Config, type JobRecord, type JobStore } from '@onnx-batch/shared';

/**
 * The status document with the results inline when the job is finished and small enough.
 * Results are rendered from their compact stored form into the document's text directly.
 */
export async function renderJob(
  record: JobRecord,
  store: JobStore,
  basePath: string,
  config: Pick<Config, 'INLINE_RESULTS_LIMIT'>,
): Promise<string> {
  const view = JSON.stringify(jobStatusDocument(record, basePath));
  const finished = record.status === 'completed' || (record.status === 'failed' && record.chunksDone > 0);
  if (!finished || record.total > config.INLINE_RESULTS_LIMIT) return `${view.slice(0, -1)},"results":null}`;
  const chunks = await store.readResults(record.id, 0, record.chunks);
  const parts: string[] = [];
  for (const chunk of chunks) if (chunk && chunk.rows > 0) parts.push(renderResultLines(chunk).join(','));
  return `${view.slice(0, -1)},"results":[${parts.join(',')}]}`;
}
