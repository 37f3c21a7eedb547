import { randomUUID } from 'node:crypto';
import { isFinished, ProblemError, type JobStatus } from '@onnx-batch/contracts';
import {
  JOB_ID_PATTERN,
  renderResultLines,
  type JobRecord,
  type JobStore,
  type JobSubmitter,
  type ModelRepository,
  type ModelRouter,
  type ModelVersion,
  type RedisClient,
} from '@onnx-batch/shared';
import { DEFAULT_PRIORITY } from '../routes/batch-routes';
import { batchEndpoint } from './batch-endpoints';
import { checkInputFile, requestRows, type BatchValidationError, type RefusedRequest, type RequestNote } from './batch-requests';
import type { FileStore } from './file-store';
import { pageOfIndex } from './index-page';

/** How long a batch may take, as the Batch API has it; batches are never dropped for taking longer (docs/interop.md). */
export const COMPLETION_WINDOW = '24h';
const COMPLETION_WINDOW_SECONDS = 86_400;
/** The refused requests of a batch are kept at least this long past its job's own TTL when nobody reads the batch. */
const REFUSED_BACKSTOP_SECONDS = 30 * 86_400;
const METADATA_KEYS = 16;
const SET_BATCH_FIELD = "if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('HSET', KEYS[1], 'batch', ARGV[1]) end return -1";

/** How long the request writing a batch holds its claim (a crashed writer's claim lapses; a retry writes the batch). */
const WRITER_CLAIM_SECONDS = 10;

/** What a batch was asked for and what validating its file found; its progress is its job's. */
export interface BatchRecord {
  id: string;
  tenant: string;
  endpoint: string;
  inputFileId: string;
  completionWindow: string;
  metadata: Record<string, string> | null;
  /** Unix seconds. */
  createdAt: number;
  /** The job running the batch's requests; null when none ran (the file failed validation, or every request was refused). */
  jobId: string | null;
  model: string | null;
  requests: number;
  /** Requests refused before the job (each is a line of the error file). */
  refused: number;
  /** Why the file failed validation (then nothing ran). */
  errors: BatchValidationError[] | null;
}

export interface BatchView {
  batch: BatchRecord;
  job: JobRecord | null;
}

export interface CreateBatchRequest {
  tenant: string;
  body: unknown;
  idempotency?: { keyHash: string; bodyHash: () => string } | undefined;
}

/** The job of a batch that ran one: `batch_` and its id. */
const JOB_BATCH_ID = /^batch_([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/;
/** A batch without a job: `batch_` and 32 hex digits. */
const JOBLESS_BATCH_ID = /^batch_[0-9a-f]{32}$/;

/**
 * The Batch API over the one submission path: a batch is validated whole (its input file read
 * twice, once to check every line and once to stream the accepted rows into JobSubmitter) and then
 * is one ordinary job, whose record carries the batch's description in a `batch` field, so it
 * lives, expires and is deleted with the job. Requests whose body the endpoint refuses never
 * reach the job; they are kept in order for the error file. A tenant's batches are listed from a
 * sorted set pruned of batches that are gone.
 */
export class BatchService {
  constructor(
    private readonly redis: RedisClient,
    private readonly store: JobStore,
    private readonly submitter: JobSubmitter,
    private readonly router: ModelRouter,
    private readonly repository: ModelRepository,
    private readonly files: FileStore,
    private readonly settings: { maxRequests: number; resultTtlSeconds: number },
  ) {}

  async create(request: CreateBatchRequest): Promise<BatchView> {
    const body = checkCreateBody(request.body);
    const endpoint = batchEndpoint(body.endpoint);
    const file = await this.files.get(request.tenant, body.input_file_id);
    if (!file) throw invalidField('OB_ERR_NOT_FOUND', 'input_file_id', `no file with id '${body.input_file_id.slice(0, 64)}'`);
    if (file.purpose !== 'batch')
      throw invalidField('OB_ERR_INVALID_REQUEST', 'input_file_id', `the file's purpose is '${file.purpose}', not 'batch'`);
    const base = {
      tenant: request.tenant,
      endpoint: endpoint.url,
      inputFileId: file.id,
      completionWindow: body.completion_window,
      metadata: body.metadata ?? null,
    };
    // A model the endpoint names is known before the file is read (404 at once); one the bodies name, after.
    const named = endpoint.model ? await this.router.select(endpoint.model.name, endpoint.model.version) : null;
    const checked = await checkInputFile(this.files, file, endpoint, this.settings.maxRequests);
    if (checked.errors.length > 0)
      return this.jobless({ ...base, requests: checked.requests, refused: 0, model: null, errors: checked.errors });
    const bodyModel = endpoint.modelName?.(checked.bodyModel ?? '') ?? { name: checked.bodyModel ?? '' };
    const selection = named ?? (await this.router.select(bodyModel.name, bodyModel.version));
    const refused: RefusedRequest[] = [];
    const notes: RequestNote[] = [];
    const model: ModelVersion = selection.parsing;
    let accepted = 0;
    const rows = (async function* (files: FileStore): AsyncGenerator<Record<string, unknown>> {
      for await (const outcome of requestRows(files, file, endpoint, model)) {
        if ('row' in outcome) {
          accepted++;
          if (outcome.note) notes.push(outcome.note);
          yield outcome.row;
        } else refused.push({ index: outcome.index, customId: outcome.customId, ...outcome.refused });
      }
    })(this.files);
    // A file whose every request is refused runs no job: peek for a first row before submitting.
    const first = await rows.next();
    const common = { ...base, requests: checked.requests, model: checked.bodyModel ?? model.manifest.name, errors: null };
    if (first.done) return this.jobless({ ...common, refused: refused.length }, refused);
    const all = (async function* (): AsyncGenerator<Record<string, unknown>> {
      yield first.value;
      yield* rows;
    })();
    const { record, created } = await this.submitter.submit({
      model: selection,
      rows: all,
      rowLocation: () => accepted,
      tenant: request.tenant,
      priority: DEFAULT_PRIORITY,
      callbackUrl: null,
      idempotency: request.idempotency,
    });
    const batchId = `batch_${record.id}`;
    if (!created) {
      const replayed = await this.get(request.tenant, batchId);
      if (replayed) return replayed;
    }
    // Two requests with one Idempotency-Key name one job: one of them writes its batch, the other waits for it.
    const writer = await this.redis.set(this.store.keys.batchWriter(batchId), '1', 'EX', WRITER_CLAIM_SECONDS, 'NX');
    if (writer === null) return this.awaitWritten(request.tenant, batchId);
    const batch: BatchRecord = { ...common, id: batchId, createdAt: seconds(record.createdAt), jobId: record.id, refused: refused.length };
    await this.keepRefused(batchId, refused);
    await this.keepNotes(batchId, notes);
    // Only onto a job that still exists: a job already expired must not come back as a hash with no TTL.
    await this.redis.eval(SET_BATCH_FIELD, 1, this.store.keys.job(record.id), JSON.stringify(batch));
    await this.redis.zadd(this.store.keys.tenantBatches(request.tenant), Date.parse(record.createdAt), batchId);
    return { batch, job: record };
  }

  /** The batch another request is writing (the same Idempotency-Key), once it is written. */
  private async awaitWritten(tenant: string, id: string): Promise<BatchView> {
    for (let waited = 0; waited < WRITER_CLAIM_SECONDS * 1000; waited += 50) {
      const view = await this.get(tenant, id);
      if (view) return view;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new ProblemError('OB_ERR_NOT_READY', `batch '${id}' is being created by another request with the same Idempotency-Key; retry`);
  }

  /** The tenant's batch `id`, or null; a batch whose job is gone is gone too (the list prunes its entry). */
  async get(tenant: string, id: string): Promise<BatchView | null> {
    const jobId = JOB_BATCH_ID.exec(id)?.[1];
    if (jobId !== undefined && JOB_ID_PATTERN.test(jobId)) {
      const [job, stored] = await Promise.all([this.store.get(jobId), this.redis.hget(this.store.keys.job(jobId), 'batch')]);
      if (!job || !stored) return null;
      const batch = JSON.parse(stored) as BatchRecord;
      if (batch.tenant !== tenant) return null;
      if (isFinished(job.status)) await this.alignKept(id, jobId);
      return { batch, job };
    }
    if (!JOBLESS_BATCH_ID.test(id)) return null;
    const stored = await this.redis.get(this.store.keys.batch(id));
    const batch = stored ? (JSON.parse(stored) as BatchRecord) : null;
    return batch && batch.tenant === tenant ? { batch, job: null } : null;
  }

  /** A page of the tenant's batches, newest first, after the batch `after`. */
  async list(tenant: string, after: string | null, limit: number): Promise<{ batches: BatchView[]; hasMore: boolean }> {
    const query = { after, limit, order: 'desc' as const };
    const page = await pageOfIndex(this.redis, this.store.keys.tenantBatches(tenant), query, (id) => this.get(tenant, id));
    return { batches: page.items, hasMore: page.hasMore };
  }

  /** Cancels the batch's job; a finished batch cannot be (409). */
  async cancel(tenant: string, id: string): Promise<BatchView> {
    const view = await this.get(tenant, id);
    if (!view) throw batchNotFound(id);
    if (!view.job || isFinished(view.job.status))
      throw new ProblemError('OB_ERR_JOB_FINISHED', `batch '${id}' has already finished; only a batch in progress can be cancelled`);
    await this.store.cancel(view.job.id, new Date());
    return (await this.get(tenant, id)) ?? view;
  }

  /**
   * The lines of the batch's output or error file, in input order, rendered from the job's
   * results chunk by chunk (one chunk in memory at a time) and the requests refused before it.
   */
  async *fileLines(view: BatchView, which: 'output' | 'error'): AsyncGenerator<string> {
    const { batch, job } = view;
    const refused = await this.refusedOf(batch);
    const requestId = (n: number): string => `batch_req_${batch.id.slice(6).replaceAll('-', '')}_${n}`;
    let next = 0; // the next refused request
    let index = 0; // the request the next job row answers
    /** The refused requests at this place of the input (all that are left, `atEnd`): error lines; the output file has none. */
    const refusedHere = function* (atEnd = false): Generator<string> {
      for (; next < refused.length && (atEnd || (refused[next] as RefusedRequest).index === index); next++, index++) {
        const r = refused[next] as RefusedRequest;
        if (which === 'error') yield errorLine(requestId(r.index), r.customId, r.status, r.code, r.message, r.param);
      }
    };
    if (job && isFinished(job.status)) {
      const model = this.repository.resolve(job.model, job.version);
      const endpoint = batchEndpoint(batch.endpoint);
      const named = batch.model ?? model.manifest.name;
      for (let chunk = 0; chunk < job.chunks; chunk++) {
        const first = chunk * job.chunkSize;
        const rows = Math.min(job.chunkSize, job.total - first);
        const [stored] = await this.store.readResults(job.id, chunk, chunk + 1);
        // A cancelled job's chunks that never ran have no results: their requests are in neither file.
        const lines = stored ? renderResultLines(stored) : [];
        const notes = endpoint.notes && stored ? await this.notesOf(batch.id, first, first + rows) : [];
        for (let row = 0; row < rows; row++) {
          yield* refusedHere(); // refused requests hold their place in the input
          const text = lines[row];
          if (text !== undefined) {
            const result = JSON.parse(text) as Record<string, unknown>;
            const customId = String(result.id);
            const error = result.error as { code: string; message: string } | undefined;
            if (error && which === 'error') yield errorLine(requestId(index), customId, 500, error.code, error.message, null);
            else if (!error && which === 'output')
              yield outputLine(requestId(index), customId, endpoint.responseBody(result, { model, named, note: notes[row] ?? null }));
          }
          index++;
        }
      }
    }
    yield* refusedHere(true);
  }

  private async jobless(fields: Omit<BatchRecord, 'id' | 'createdAt' | 'jobId'>, refused: RefusedRequest[] = []): Promise<BatchView> {
    const batch: BatchRecord = {
      ...fields,
      id: `batch_${randomUUID().replaceAll('-', '')}`,
      createdAt: seconds(new Date().toISOString()),
      jobId: null,
    };
    const ttl = this.settings.resultTtlSeconds;
    await this.keepRefused(batch.id, refused, ttl);
    await this.redis.set(this.store.keys.batch(batch.id), JSON.stringify(batch), 'EX', ttl);
    await this.redis.zadd(this.store.keys.tenantBatches(batch.tenant), Date.now(), batch.id);
    return { batch, job: null };
  }

  private async keepRefused(
    batchId: string,
    refused: RefusedRequest[],
    ttl = this.settings.resultTtlSeconds + REFUSED_BACKSTOP_SECONDS,
  ): Promise<void> {
    const key = this.store.keys.batchRefused(batchId);
    for (let i = 0; i < refused.length; i += 1000) await this.redis.rpush(key, ...refused.slice(i, i + 1000).map((r) => JSON.stringify(r)));
    if (refused.length > 0) await this.redis.expire(key, ttl);
  }

  private async keepNotes(batchId: string, notes: RequestNote[]): Promise<void> {
    const key = this.store.keys.batchNotes(batchId);
    for (let i = 0; i < notes.length; i += 1000) await this.redis.rpush(key, ...notes.slice(i, i + 1000).map((n) => JSON.stringify(n)));
    if (notes.length > 0) await this.redis.expire(key, this.settings.resultTtlSeconds + REFUSED_BACKSTOP_SECONDS);
  }

  /** Once the job has its TTL, the refused requests and notes get the same one (they are nothing without it). */
  private async alignKept(batchId: string, jobId: string): Promise<void> {
    const left = await this.redis.pttl(this.store.keys.job(jobId));
    if (left > 0)
      await Promise.all([
        this.redis.pexpire(this.store.keys.batchRefused(batchId), left),
        this.redis.pexpire(this.store.keys.batchNotes(batchId), left),
      ]);
  }

  private async notesOf(batchId: string, from: number, to: number): Promise<RequestNote[]> {
    if (to <= from) return [];
    return (await this.redis.lrange(this.store.keys.batchNotes(batchId), from, to - 1)).map((text) => JSON.parse(text) as RequestNote);
  }

  private async refusedOf(batch: BatchRecord): Promise<RefusedRequest[]> {
    if (batch.refused === 0) return [];
    const key = this.store.keys.batchRefused(batch.id);
    const out: RefusedRequest[] = [];
    for (let from = 0; from < batch.refused; from += 1000)
      for (const text of await this.redis.lrange(key, from, from + 999)) out.push(JSON.parse(text) as RefusedRequest);
    return out;
  }
}

function outputLine(id: string, customId: string, body: unknown): string {
  return JSON.stringify({ id, custom_id: customId, response: { status_code: 200, request_id: id, body }, error: null });
}

function errorLine(id: string, customId: string, status: number, code: string, message: string, param: string | null): string {
  const body = { error: { message, type: status >= 500 ? 'server_error' : 'invalid_request_error', param, code } };
  return JSON.stringify({ id, custom_id: customId, response: { status_code: status, request_id: id, body }, error: null });
}

function seconds(iso: string): number {
  return Math.floor(Date.parse(iso) / 1000);
}

export function batchNotFound(id: string): ProblemError {
  return new ProblemError('OB_ERR_NOT_FOUND', `no batch with id '${id.slice(0, 80)}'`);
}

function invalidField(code: 'OB_ERR_INVALID_REQUEST' | 'OB_ERR_NOT_FOUND', field: string, message: string): ProblemError {
  return new ProblemError(code, `field '${field}': ${message}`, { errors: [{ field, message }] });
}

interface CreateBody {
  input_file_id: string;
  endpoint: string;
  completion_window: string;
  metadata?: Record<string, string> | null;
}

function checkCreateBody(body: unknown): CreateBody {
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw invalidField('OB_ERR_INVALID_REQUEST', '(body)', 'must be a JSON object');
  const b = body as Record<string, unknown>;
  const known = ['input_file_id', 'endpoint', 'completion_window', 'metadata'];
  const extra = Object.keys(b).find((k) => !known.includes(k));
  if (extra !== undefined) throw invalidField('OB_ERR_INVALID_REQUEST', extra.slice(0, 64), 'is not a known field');
  if (typeof b.input_file_id !== 'string' || b.input_file_id === '')
    throw invalidField('OB_ERR_INVALID_REQUEST', 'input_file_id', 'must be a file id');
  if (typeof b.endpoint !== 'string') throw invalidField('OB_ERR_INVALID_REQUEST', 'endpoint', 'must be a string');
  if (b.completion_window !== COMPLETION_WINDOW)
    throw invalidField('OB_ERR_INVALID_REQUEST', 'completion_window', `must be "${COMPLETION_WINDOW}"`);
  const metadata = b.metadata;
  if (metadata !== undefined && metadata !== null) {
    if (typeof metadata !== 'object' || Array.isArray(metadata))
      throw invalidField('OB_ERR_INVALID_REQUEST', 'metadata', 'must be an object of strings');
    const entries = Object.entries(metadata);
    if (entries.length > METADATA_KEYS) throw invalidField('OB_ERR_INVALID_REQUEST', 'metadata', `may hold at most ${METADATA_KEYS} keys`);
    for (const [key, value] of entries) {
      if (key.length > 64) throw invalidField('OB_ERR_INVALID_REQUEST', 'metadata', 'keys may be at most 64 characters');
      if (typeof value !== 'string' || value.length > 512)
        throw invalidField('OB_ERR_INVALID_REQUEST', `metadata.${key}`, 'must be a string of at most 512 characters');
    }
  }
  return b as unknown as CreateBody;
}

/** When a batch's output and error files go (unix seconds): with its job, RESULT_TTL_SECONDS after it finished. */
export function batchFilesExpireAt(view: BatchView, resultTtlSeconds: number): number {
  const finished = view.job?.finishedAt;
  return (finished ? seconds(finished) : view.batch.createdAt) + resultTtlSeconds;
}

/** The Batch API's status of a batch, from its job's. */
export function batchStatus(view: BatchView): 'failed' | 'in_progress' | 'finalizing' | 'completed' | 'cancelled' {
  const { batch, job } = view;
  if (batch.errors) return 'failed';
  if (!job) return 'completed';
  const status: JobStatus = job.status;
  if (status === 'queued' || status === 'running') return job.done >= job.total ? 'finalizing' : 'in_progress';
  return status;
}

/** The `batch` object of the Batch API. */
export function batchObject(view: BatchView): Record<string, unknown> {
  const { batch, job } = view;
  const status = batchStatus(view);
  const at = (iso: string | null | undefined): number | null => (iso ? seconds(iso) : null);
  const finishedAt = job ? at(job.finishedAt) : batch.createdAt;
  const ran = job ? Math.max(0, job.done - job.failed) : 0;
  const failed = (job?.failed ?? 0) + batch.refused;
  const finished = status === 'completed' || status === 'failed' || status === 'cancelled';
  const hex = batch.id.slice(6).replaceAll('-', '');
  const hasErrors = finished && failed > 0;
  return {
    id: batch.id,
    object: 'batch',
    endpoint: batch.endpoint,
    model: batch.model,
    errors: batch.errors ? { object: 'list', data: batch.errors } : null,
    input_file_id: batch.inputFileId,
    completion_window: batch.completionWindow,
    status,
    output_file_id: finished && !batch.errors && ran > 0 ? `file-output-${hex}` : null,
    error_file_id: hasErrors && !batch.errors ? `file-errors-${hex}` : null,
    created_at: batch.createdAt,
    in_progress_at: job ? batch.createdAt : null,
    expires_at: batch.createdAt + COMPLETION_WINDOW_SECONDS,
    finalizing_at: status === 'completed' && job ? finishedAt : null,
    completed_at: status === 'completed' ? finishedAt : null,
    failed_at: status === 'failed' ? (finishedAt ?? batch.createdAt) : null,
    expired_at: null,
    cancelling_at: status === 'cancelled' ? finishedAt : null,
    cancelled_at: status === 'cancelled' ? finishedAt : null,
    request_counts: { total: batch.requests, completed: ran, failed },
    metadata: batch.metadata,
  };
}

/** The batch and which of its files an output or error file id names, or null. */
export function batchFileOf(fileId: string): { batchHex: string; which: 'output' | 'error' } | null {
  const match = /^file-(output|errors)-([0-9a-f]{32})$/.exec(fileId);
  if (!match) return null;
  return { batchHex: match[2] as string, which: match[1] === 'output' ? 'output' : 'error' };
}

/** The batch id of a batch's hex (as in its file ids): a job's id regains its dashes. */
export function batchIdOfHex(hex: string, jobless: boolean): string {
  if (jobless) return `batch_${hex}`;
  return `batch_${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
