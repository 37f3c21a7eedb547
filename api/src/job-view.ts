import { isFinished, jobStatusDocument, ProblemError } from '@onnx-batch/contracts';
import {
  finishedOrGone,
  JOB_ID_PATTERN,
  renderResultLines,
  type Config,
  type JobEvents,
  type JobRecord,
  type JobStore,
} from '@onnx-batch/shared';

/** The longest `?wait=` of a poll. */
export const MAX_WAIT_SECONDS = 60;

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

/** The job `id` of `tenant`, or the 404 problem: another tenant's job is answered exactly as one that does not exist. */
export async function findJob(store: JobStore, id: string, tenant: string): Promise<JobRecord> {
  const found = JOB_ID_PATTERN.test(id) ? await store.get(id) : null;
  if (!found || found.tenant !== tenant) throw new ProblemError('OB_ERR_JOB_NOT_FOUND', `no job with id '${id.slice(0, 64)}'`);
  return found;
}

/** `?wait=` in seconds (0 when absent), or the 400 problem naming it. */
export function waitSeconds(raw: unknown): number {
  if (raw === undefined) return 0;
  const seconds = Number(raw);
  if (typeof raw !== 'string' || !Number.isFinite(seconds) || seconds < 0 || seconds > MAX_WAIT_SECONDS) {
    throw new ProblemError('OB_ERR_INVALID_REQUEST', `query parameter 'wait' must be a number of seconds from 0 to ${MAX_WAIT_SECONDS}`, {
      errors: [{ field: 'wait', message: `must be 0–${MAX_WAIT_SECONDS}` }],
    });
  }
  return seconds;
}

export interface PollDeps {
  store: JobStore;
  events: JobEvents;
  config: Pick<Config, 'INLINE_RESULTS_LIMIT'>;
}

/**
 * The answer to `GET …/batch-result/:id` (through Express or the fast poll path): the job's
 * document, after waiting up to `wait` seconds for an unfinished job to finish. `found` is told
 * the job's id as soon as it is known (the request log names it).
 */
export async function pollJob(
  deps: PollDeps,
  poll: { basePath: string; id: string; tenant: string; wait: number },
  found: (jobId: string) => void,
): Promise<string> {
  let record = await findJob(deps.store, poll.id, poll.tenant);
  found(record.id);
  if (poll.wait > 0 && !isFinished(record.status)) {
    await deps.events.waitFor(record.id, poll.wait * 1000, finishedOrGone(deps.store, record.id));
    record = await findJob(deps.store, poll.id, poll.tenant);
  }
  return renderJob(record, deps.store, poll.basePath, deps.config);
}
