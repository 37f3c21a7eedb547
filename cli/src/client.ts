import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { rootCertificates } from 'node:tls';
import { Agent } from 'undici';
import { OnnxBatchError, UnreachableError, WaitTimeoutError } from './errors';
import { STREAM_CONTENT_TYPE, type OutputFormat, type StreamFormat } from './formats';
import { jsonArrayText, ndjsonValues, splitLines } from './ndjson';
import type {
  Evaluation,
  EvaluationList,
  JobListAnswer,
  JobListQuery,
  JobQuality,
  LabelsAnswer,
  ModelQuality,
  ModelQualityQuery,
  JobStatusAnswer,
  JobStatusDocument,
  ModelList,
  ResultRow,
  RolloutHistory,
  RolloutSpec,
  RolloutState,
  SubmitAnswer,
} from './types';

export interface OnnxBatchClientOptions {
  /** Base URL of the API, e.g. `http://127.0.0.1:8080` (a path prefix is kept: `https://host/onnx`). */
  url: string;
  /** Sent as `Authorization: Bearer <apiKey>`; none when absent. */
  apiKey?: string;
  /** `User-Agent` of every request. @defaultValue `onnx-batch-client` */
  userAgent?: string;
  /** PEM certificate(s) of a CA to trust for `https://` besides Node's own (a private CA's server certificate). */
  ca?: string | Buffer;
}

/** Options every call takes. */
export interface CallOptions {
  signal?: AbortSignal;
}

interface SubmitOptions extends CallOptions {
  model: string;
  /** The model's default version when absent. */
  version?: string | number;
  /** 1 = most urgent … 1000 = least; the server's default (100) when absent. */
  priority?: number;
  /** Sent as `Idempotency-Key`: a retried submit with the same key and body answers the first job. */
  idempotencyKey?: string;
  /** http(s) URL the server POSTs the job's status to when it finishes. */
  callbackUrl?: string;
}

export interface SubmitRowsOptions extends SubmitOptions {
  /** Objects keyed by feature name (plus an optional `id`), or arrays of feature values in manifest order. */
  rows: object[] | unknown[][];
}

export interface SubmitStreamOptions extends SubmitOptions {
  format: StreamFormat;
  /**
   * The batch file's bytes: NDJSON (one row a line), CSV with a header row, an Arrow IPC stream
   * or a Parquet file (columns named as the model's features). Read as it is sent, never parsed.
   */
  body: Readable | AsyncIterable<Uint8Array>;
  /** Arrow and Parquet: input columns (not features) to keep beside the predictions. */
  passthrough?: string[] | undefined;
}

export interface WaitOptions extends CallOptions {
  /** Called with every status document seen (about every `pollSeconds`). */
  onProgress?: (status: JobStatusAnswer) => void;
  /** Give up (WaitTimeoutError) after this long; the job goes on. @defaultValue no limit */
  timeoutMs?: number;
  /**
   * Longest single long poll (`?wait=`), in seconds, at most 60. The server answers early when
   * the job finishes, so this only sets how often progress is seen.
   * @defaultValue 2 with `onProgress`, else 60
   */
  pollSeconds?: number;
  /** How long the server may stay unreachable (restart, network blip) before wait gives up. @defaultValue 60 000 */
  unreachableGraceMs?: number;
}

/** The longest long poll the server accepts. */
export const MAX_WAIT_SECONDS = 60;

const FINISHED = new Set(['completed', 'failed', 'cancelled']);

const ACCEPT: Record<OutputFormat, string> = {
  ndjson: 'application/x-ndjson',
  csv: 'text/csv',
  json: 'application/x-ndjson', // re-framed as one JSON array on the way to the file
  arrow: 'application/vnd.apache.arrow.stream',
  parquet: 'application/vnd.apache.parquet',
};

/** Options of a rollout change. */
export interface RolloutChangeOptions extends CallOptions {
  /**
   * Sent as `If-Match`: the ETag of the rollout as read (`"<revision>"`): the server refuses the
   * change with 412 OB_ERR_PRECONDITION_FAILED when someone changed the rollout since.
   */
  ifMatch?: string;
}

export interface StartEvaluationOptions extends CallOptions {
  /** Labelled rows (features, optional `id`, and `label` or `value`); the version's own evaluation set when absent. */
  upload?: { rows: object[] } | { format: 'ndjson' | 'csv'; body: Readable | AsyncIterable<Uint8Array> };
}

export interface WaitEvaluationOptions extends CallOptions {
  /** Called with the evaluation after every poll. */
  onProgress?: (evaluation: Evaluation) => void;
  /** Between polls. @defaultValue 1000 */
  pollMs?: number;
  timeoutMs?: number;
}

interface RequestOptions extends CallOptions {
  query?: Record<string, string | number | undefined>;
  headers?: Record<string, string>;
  body?: string | AsyncIterable<Uint8Array>;
}

/**
 * A typed client of the onnx-batch HTTP API on Node's fetch. Uploads and downloads stream:
 * memory holds a chunk at a time whatever the size of the batch. Every non-2xx answer throws an
 * `OnnxBatchError` carrying the server's problem document; a connection failure throws an
 * `UnreachableError`.
 */
export class OnnxBatchClient {
  private readonly base: string;
  private readonly apiKey: string | undefined;
  private readonly userAgent: string;
  /** Connections that trust `ca` too; undefined: fetch's default. */
  private readonly dispatcher: Agent | undefined;

  constructor(options: OnnxBatchClientOptions) {
    let parsed: URL;
    try {
      parsed = new URL(options.url);
    } catch {
      throw new TypeError(`url must be an absolute http(s) URL (got '${options.url}')`);
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')
      throw new TypeError(`url must be http or https (got '${options.url}')`);
    this.base = parsed.href.replace(/\/+$/, '');
    this.apiKey = options.apiKey === '' ? undefined : options.apiKey;
    this.userAgent = options.userAgent ?? 'onnx-batch-client';
    this.dispatcher = options.ca === undefined ? undefined : new Agent({ connect: { ca: [...rootCertificates, options.ca.toString()] } });
  }

  /** Base URL requests go to (no trailing slash). */
  get url(): string {
    return this.base;
  }

  /** Submits rows as one JSON body (the whole batch in memory: for batches of modest size). */
  async submit(options: SubmitRowsOptions): Promise<SubmitAnswer> {
    const body = JSON.stringify({
      model: options.model,
      ...(options.version === undefined ? {} : { version: String(options.version) }),
      inputs: options.rows,
      ...(options.priority === undefined ? {} : { priority: options.priority }),
      ...(options.callbackUrl === undefined ? {} : { callbackUrl: options.callbackUrl }),
    });
    const response = await this.request('POST', '/v1/batch-predict', {
      headers: { 'content-type': 'application/json', ...idempotencyHeader(options.idempotencyKey) },
      body,
      signal: options.signal,
    });
    return (await response.json()) as SubmitAnswer;
  }

  /** Submits a batch file as a streamed NDJSON, CSV, Arrow or Parquet body; gigabytes go up in bounded memory. */
  async submitStream(options: SubmitStreamOptions): Promise<SubmitAnswer> {
    const response = await this.request('POST', '/v1/batch-predict', {
      query: {
        model: options.model,
        version: options.version === undefined ? undefined : String(options.version),
        priority: options.priority,
        callbackUrl: options.callbackUrl,
        passthrough: options.passthrough?.length ? options.passthrough.join(',') : undefined,
      },
      headers: { 'content-type': STREAM_CONTENT_TYPE[options.format], ...idempotencyHeader(options.idempotencyKey) },
      body: options.body,
      signal: options.signal,
    });
    return (await response.json()) as SubmitAnswer;
  }

  /**
   * The job's status document. With `waitSeconds` (≤ 60) the server holds the answer until the
   * job finishes or the time is up (a long poll).
   */
  async status(id: string, options: CallOptions & { waitSeconds?: number } = {}): Promise<JobStatusAnswer> {
    const wait = options.waitSeconds === undefined ? undefined : Math.max(0, Math.min(MAX_WAIT_SECONDS, Math.ceil(options.waitSeconds)));
    const response = await this.request('GET', `/v1/batch-result/${jobPath(id)}`, {
      query: { wait: wait || undefined },
      signal: options.signal,
    });
    return (await response.json()) as JobStatusAnswer;
  }

  /**
   * Long-polls until the job is `completed`, `failed` or `cancelled` and answers its last status
   * document (it does not throw for a failed job: look at `status`). Throws WaitTimeoutError after
   * `timeoutMs`; rides out the server being unreachable for up to `unreachableGraceMs`.
   */
  async wait(id: string, options: WaitOptions = {}): Promise<JobStatusAnswer> {
    const started = Date.now();
    const deadline = options.timeoutMs === undefined ? Number.POSITIVE_INFINITY : started + options.timeoutMs;
    const poll = Math.max(1, Math.min(MAX_WAIT_SECONDS, options.pollSeconds ?? (options.onProgress ? 2 : MAX_WAIT_SECONDS)));
    const grace = options.unreachableGraceMs ?? 60_000;
    let last: JobStatusAnswer | null = null;
    let unreachableSince: number | null = null;
    for (;;) {
      const left = deadline - Date.now();
      if (left <= 0) throw new WaitTimeoutError(id, options.timeoutMs ?? 0, last?.status ?? null);
      // The first poll answers at once so the caller sees where the job stands.
      const waitSeconds = last === null ? 0 : Math.min(poll, Math.ceil(left / 1000));
      try {
        last = await this.status(id, { waitSeconds, signal: options.signal });
        unreachableSince = null;
      } catch (error) {
        if (!(error instanceof UnreachableError)) throw error;
        unreachableSince ??= Date.now();
        if (Date.now() - unreachableSince > grace) throw error;
        await delay(Math.min(2000, Math.max(0, deadline - Date.now())), options.signal);
        continue;
      }
      options.onProgress?.(last);
      if (FINISHED.has(last.status)) return last;
    }
  }

  /** A finished job's results, one object per row in input order, streamed (memory holds one line). */
  async *results(id: string, options: CallOptions = {}): AsyncGenerator<ResultRow> {
    const response = await this.request('GET', `/v1/batch-result/${jobPath(id)}/results`, {
      headers: { accept: ACCEPT.ndjson },
      signal: options.signal,
    });
    yield* ndjsonValues<ResultRow>(this.bodyOf(response));
  }

  /**
   * Streams a finished job's results into `destination` as CSV (the server's columns), NDJSON,
   * one JSON array, or the server's Arrow IPC stream or Parquet file (bytes as they come), and ends it.
   */
  async downloadResults(id: string, format: OutputFormat, destination: Writable, options: CallOptions = {}): Promise<void> {
    const response = await this.request('GET', `/v1/batch-result/${jobPath(id)}/results`, {
      headers: { accept: ACCEPT[format] },
      signal: options.signal,
    });
    const body = this.bodyOf(response);
    const source = format === 'json' ? Readable.from(jsonArrayText(splitLines(body))) : Readable.from(body, { objectMode: false });
    await pipeline(source, destination, options.signal ? { signal: options.signal } : {});
  }

  /** Cancels a queued or running job and answers its status document (409 OB_ERR_JOB_FINISHED if it already finished). */
  async cancel(id: string, options: CallOptions = {}): Promise<JobStatusAnswer> {
    const response = await this.request('POST', `/v1/batch-result/${jobPath(id)}/cancel`, { signal: options.signal });
    return (await response.json()) as JobStatusAnswer;
  }

  /** Deletes a job with its inputs and results (cancelling it first if it still runs). */
  async delete(id: string, options: CallOptions = {}): Promise<void> {
    const response = await this.request('DELETE', `/v1/batch-result/${jobPath(id)}`, { signal: options.signal });
    await response.body?.cancel();
  }

  /**
   * One page of the caller's jobs, newest first (`GET /v1/jobs`): filtered by status (one or
   * several), model and creation time; `after` is the `next` cursor (or last job id) of the page before.
   */
  async jobs(query: JobListQuery = {}, options: CallOptions = {}): Promise<JobListAnswer> {
    const response = await this.request('GET', '/v1/jobs', {
      query: {
        status: query.status?.length ? query.status.join(',') : undefined,
        model: query.model,
        created_after: query.createdAfter,
        created_before: query.createdBefore,
        limit: query.limit,
        after: query.after,
      },
      signal: options.signal,
    });
    return (await response.json()) as JobListAnswer;
  }

  /** Every job that matches, page after page (`limit` per request). */
  async *allJobs(query: JobListQuery = {}, options: CallOptions = {}): AsyncGenerator<JobStatusDocument> {
    let after = query.after;
    for (;;) {
      const page = await this.jobs({ ...query, after }, options);
      yield* page.data;
      if (!page.has_more || page.next === null) return;
      after = new URL(page.next, 'http://x').searchParams.get('after') ?? undefined;
      if (after === undefined) return;
    }
  }

  /** The models the server serves, with their versions, tasks, labels and features. */
  async models(options: CallOptions = {}): Promise<ModelList> {
    const response = await this.request('GET', '/v1/models', { signal: options.signal });
    return (await response.json()) as ModelList;
  }

  /**
   * The model's rollout (default, canary, shadow, auto-rollback rule), the version serving jobs
   * that name none, and the canary/shadow report.
   */
  async rollout(model: string, options: CallOptions = {}): Promise<RolloutState> {
    const response = await this.request('GET', `/v1/models/${modelPath(model)}/rollout`, { signal: options.signal });
    return (await response.json()) as RolloutState;
  }

  /**
   * Replaces the model's rollout with `spec` (admin role): a field left out is cleared, so to
   * change one field send the others as they are (the CLI's `rollout set` does). Answers the new state.
   */
  async setRollout(model: string, spec: RolloutSpec, options: RolloutChangeOptions = {}): Promise<RolloutState> {
    const response = await this.request('PUT', `/v1/models/${modelPath(model)}/rollout`, {
      headers: { 'content-type': 'application/json', ...ifMatchHeader(options.ifMatch) },
      body: JSON.stringify(spec),
      signal: options.signal,
    });
    return (await response.json()) as RolloutState;
  }

  /** Makes the canary the default (admin role); 409 OB_ERR_ROLLOUT_CONFLICT when there is no canary. */
  async promoteRollout(model: string, options: RolloutChangeOptions = {}): Promise<RolloutState> {
    const response = await this.request('POST', `/v1/models/${modelPath(model)}/rollout/promote`, {
      headers: ifMatchHeader(options.ifMatch),
      signal: options.signal,
    });
    return (await response.json()) as RolloutState;
  }

  /** Returns to the previous default and clears canary and shadow (admin role). */
  async rollbackRollout(model: string, options: RolloutChangeOptions = {}): Promise<RolloutState> {
    const response = await this.request('POST', `/v1/models/${modelPath(model)}/rollout/rollback`, {
      headers: ifMatchHeader(options.ifMatch),
      signal: options.signal,
    });
    return (await response.json()) as RolloutState;
  }

  /**
   * Starts an evaluation of `version` against the serving default (admin role): over the
   * version's own evaluation set without `upload`, else over the labelled rows given (a JSON
   * array in memory, or an NDJSON or CSV file's bytes, streamed). Answers it at once (status
   * `running`); `waitEvaluation` follows it to its report.
   */
  async startEvaluation(model: string, version: string, options: StartEvaluationOptions = {}): Promise<Evaluation> {
    const upload = options.upload;
    const body =
      upload === undefined
        ? { type: 'application/json', body: '{}' }
        : 'rows' in upload
          ? { type: 'application/json', body: JSON.stringify(upload.rows) }
          : { type: STREAM_CONTENT_TYPE[upload.format], body: upload.body };
    const response = await this.request('POST', `/v1/models/${modelPath(model)}/versions/${versionPath(version)}/evaluations`, {
      headers: { 'content-type': body.type },
      body: body.body,
      signal: options.signal,
    });
    return (await response.json()) as Evaluation;
  }

  /** An evaluation: its jobs' progress while they run, then its report (made by this read if they have just finished). */
  async evaluation(model: string, version: string, id: string, options: CallOptions = {}): Promise<Evaluation> {
    const response = await this.request(
      'GET',
      `/v1/models/${modelPath(model)}/versions/${versionPath(version)}/evaluations/${jobPath(id)}`,
      {
        signal: options.signal,
      },
    );
    return (await response.json()) as Evaluation;
  }

  /** A version's evaluations, newest first (at most `limit`, server default 20, at most 100). */
  async evaluations(model: string, version: string, options: CallOptions & { limit?: number } = {}): Promise<EvaluationList> {
    const response = await this.request('GET', `/v1/models/${modelPath(model)}/versions/${versionPath(version)}/evaluations`, {
      query: { limit: options.limit },
      signal: options.signal,
    });
    return (await response.json()) as EvaluationList;
  }

  /** Polls an evaluation until it is no longer `running` (its two jobs finished); WaitTimeoutError after `timeoutMs`. */
  async waitEvaluation(model: string, version: string, id: string, options: WaitEvaluationOptions = {}): Promise<Evaluation> {
    const started = Date.now();
    for (;;) {
      const evaluation = await this.evaluation(model, version, id, { signal: options.signal });
      options.onProgress?.(evaluation);
      if (evaluation.status !== 'running') return evaluation;
      if (options.timeoutMs !== undefined && Date.now() - started >= options.timeoutMs)
        throw new WaitTimeoutError(id, options.timeoutMs, evaluation.status, 'evaluation');
      await delay(options.pollMs ?? 1000, options.signal);
    }
  }

  /** Every change of the model's rollout, newest first (at most `limit`, server default 100, at most 1000). */
  async rolloutHistory(model: string, options: CallOptions & { limit?: number } = {}): Promise<RolloutHistory> {
    const response = await this.request('GET', `/v1/models/${modelPath(model)}/rollout/history`, {
      query: { limit: options.limit },
      signal: options.signal,
    });
    return (await response.json()) as RolloutHistory;
  }

  /**
   * Sends ground-truth labels (`{index | id, label | value}` objects) as a streamed NDJSON or CSV
   * body, or one JSON array: to a job's rows (`jobId`), or to rows found by id across the tenant's
   * jobs (`jobId` null). Idempotent: the same labels again change nothing.
   */
  async postLabels(
    jobId: string | null,
    format: 'ndjson' | 'csv' | 'json',
    body: string | AsyncIterable<Uint8Array>,
    options: CallOptions = {},
  ): Promise<LabelsAnswer> {
    const response = await this.request('POST', jobId === null ? '/v1/labels' : `/v1/batch-result/${jobPath(jobId)}/labels`, {
      headers: { 'content-type': format === 'json' ? 'application/json' : STREAM_CONTENT_TYPE[format] },
      body,
      signal: options.signal,
    });
    return (await response.json()) as LabelsAnswer;
  }

  /** A job's quality: realised from its labels, estimated from its confidences. */
  async jobQuality(jobId: string, options: CallOptions = {}): Promise<JobQuality> {
    const response = await this.request('GET', `/v1/batch-result/${jobPath(jobId)}/quality`, { signal: options.signal });
    return (await response.json()) as JobQuality;
  }

  /** A model's quality per version and arm over [from, to), in hour or day buckets. */
  async modelQuality(model: string, query: ModelQualityQuery = {}, options: CallOptions = {}): Promise<ModelQuality> {
    const response = await this.request('GET', `/v1/models/${modelPath(model)}/quality`, {
      query: { version: query.version, arm: query.arm, from: query.from, to: query.to, bucket: query.bucket },
      signal: options.signal,
    });
    return (await response.json()) as ModelQuality;
  }

  /** One request; a non-2xx answer becomes an OnnxBatchError, a connection failure an UnreachableError. */
  private async request(method: string, path: string, options: RequestOptions): Promise<Response> {
    const url = new URL(this.base + path);
    for (const [name, value] of Object.entries(options.query ?? {})) if (value !== undefined) url.searchParams.set(name, String(value));
    const headers: Record<string, string> = { 'user-agent': this.userAgent, accept: 'application/json', ...options.headers };
    if (this.apiKey !== undefined) headers.authorization = `Bearer ${this.apiKey}`;

    // An error of the body's own source (a file that cannot be read) must not pass for a network failure.
    let sourceError: unknown = null;
    let body: string | AsyncIterable<Uint8Array> | undefined;
    if (typeof options.body === 'string' || options.body === undefined) body = options.body;
    else {
      const source = options.body;
      body = (async function* guarded() {
        try {
          for await (const chunk of source) yield typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
        } catch (error) {
          sourceError = error;
          throw error;
        }
      })();
    }

    let response: Response;
    try {
      response = await fetch(url, {
        method,
        headers,
        body,
        signal: options.signal,
        ...(this.dispatcher ? { dispatcher: this.dispatcher } : {}),
        // A streamed body: `redirect: 'error'` is what keeps memory bounded. With any other mode
        // fetch clones the request, which tees the body, and the branch never sent keeps every
        // chunk until the upload ends (a 1 GB file = 1 GB of memory). A redirect could not be
        // followed with a body already sent anyway.
        ...(body !== undefined && typeof body !== 'string' ? { duplex: 'half' as const, redirect: 'error' as const } : {}),
      });
    } catch (error) {
      if (sourceError !== null) throw sourceError as Error;
      if (options.signal?.aborted) throw options.signal.reason as Error;
      throw new UnreachableError(this.base, error);
    }
    if (!response.ok) throw await problemOf(response);
    return response;
  }

  /** A response body as bytes; a connection that breaks mid-body throws UnreachableError. */
  private async *bodyOf(response: Response): AsyncGenerator<Uint8Array> {
    if (!response.body) return;
    try {
      for await (const chunk of response.body as AsyncIterable<Uint8Array>) yield chunk;
    } catch (error) {
      if ((error as Error).name === 'AbortError') throw error;
      throw new UnreachableError(this.base, error);
    }
  }
}

function ifMatchHeader(tag: string | undefined): Record<string, string> {
  return tag === undefined ? {} : { 'if-match': tag };
}

function versionPath(version: string): string {
  if (!/^[0-9]{1,9}$/.test(version)) throw new TypeError(`version must be digits (got '${version}')`);
  return version;
}

function idempotencyHeader(key: string | undefined): Record<string, string> {
  return key === undefined ? {} : { 'idempotency-key': key };
}

function modelPath(model: string): string {
  if (model === '') throw new TypeError('model name must not be empty');
  return encodeURIComponent(model);
}

function jobPath(id: string): string {
  if (id === '') throw new TypeError('job id must not be empty');
  return encodeURIComponent(id);
}

/** The problem document of a non-2xx answer (or a stand-in when the body is not problem+json). */
async function problemOf(response: Response): Promise<OnnxBatchError> {
  let text = '';
  try {
    text = await response.text();
  } catch {
    // the body broke off: the status alone has to do
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = null;
  }
  if (typeof parsed === 'object' && parsed !== null && typeof (parsed as { code?: unknown }).code === 'string') {
    return new OnnxBatchError(response.status, parsed);
  }
  const detail = text.trim().slice(0, 500) || response.statusText || `HTTP ${response.status}`;
  return new OnnxBatchError(response.status, { title: response.statusText || `HTTP ${response.status}`, detail });
}

function delay(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason as Error);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason as Error);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
