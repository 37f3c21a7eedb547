import { createHash } from 'node:crypto';
import { Router, type NextFunction, type Request, type Response } from 'express';
import Ajv2020 from 'ajv/dist/2020';
import {
  csvRows,
  JOB_ID_PATTERN,
  isFinished,
  jobStatusDocument,
  ndjsonRows,
  ProblemError,
  type Config,
  type JobEvents,
  type JobRecord,
  type JobStore,
  type JobSubmitter,
  type Logger,
  type ModelRepository,
  type ModelRouter,
} from '@onnx-batch/shared';
import { jsonBody, streamedBody } from '../http/body';
import { checkEnvelope } from '../http/envelope';
import { renderJob } from '../job-view';
import { streamResults } from '../streaming/result-stream';

export interface BatchRouteDeps {
  config: Config;
  logger: Logger;
  repository: ModelRepository;
  store: JobStore;
  submitter: JobSubmitter;
  events: JobEvents;
  router: ModelRouter;
  /** Refuses a callback URL a webhook may not be sent to (400 naming `callbackUrl`); answers it normalised. */
  checkCallbackUrl: (url: string) => Promise<string>;
  /** Tells a job's callback URL that the job ended (cancel: the workers report the rest). */
  notifyFinished: (record: JobRecord) => Promise<void>;
}

/** Priority of a job: 1 is the most urgent, 1000 the least; interactive work should use less than bulk. */
export const DEFAULT_PRIORITY = 100;
export const MAX_WAIT_SECONDS = 60;
/** Most results one JSON page of `/results` holds. */
export const MAX_PAGE = 10_000;

const PRIORITY_SCHEMA = { type: 'integer', minimum: 1, maximum: 1000, default: DEFAULT_PRIORITY, description: '1 = most urgent … 1000 = least.' } as const;

/** The envelope of a JSON submit; rows themselves are checked against the model's schema. */
export const SUBMIT_BODY_SCHEMA = {
  type: 'object',
  required: ['model', 'inputs'],
  additionalProperties: false,
  properties: {
    model: { type: 'string', minLength: 1, maxLength: 64, description: 'Model name (GET /v1/models lists them).' },
    version: { type: ['string', 'integer'], description: "Model version; the model's default when absent." },
    inputs: { type: 'array', description: 'Rows: objects keyed by feature name (optionally with an `id`) or arrays of feature values in manifest order.' },
    priority: PRIORITY_SCHEMA,
    callbackUrl: { type: 'string', minLength: 1, maxLength: 2048, description: 'http(s) URL POSTed the job status when it finishes (signed; see the Security section).' },
  },
} as const;

/** Query of a streamed (NDJSON / CSV) submit, whose body holds only rows. */
export const SUBMIT_QUERY_SCHEMA = {
  type: 'object',
  required: ['model'],
  additionalProperties: false,
  properties: {
    model: { type: 'string', minLength: 1, maxLength: 64 },
    version: { type: 'string', maxLength: 16 },
    priority: PRIORITY_SCHEMA,
    callbackUrl: { type: 'string', minLength: 1, maxLength: 2048 },
  },
} as const;

export const RESULTS_QUERY_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    offset: { type: 'integer', minimum: 0, default: 0 },
    limit: { type: 'integer', minimum: 1, maximum: MAX_PAGE, default: 1000 },
  },
} as const;

const ajv = new Ajv2020({ allErrors: false, strict: false, useDefaults: true, coerceTypes: true });
const validateBody = new Ajv2020({ allErrors: false, strict: false, useDefaults: true }).compile(SUBMIT_BODY_SCHEMA);
const validateSubmitQuery = ajv.compile(SUBMIT_QUERY_SCHEMA);
const validateResultsQuery = ajv.compile(RESULTS_QUERY_SCHEMA);

interface SubmitBody {
  model: string;
  version?: string | number;
  inputs: unknown[];
  priority: number;
  callbackUrl?: string;
}

/** An Idempotency-Key is opaque printable text; it is stored hashed. */
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

function idempotencyKeyHash(req: Request): string | undefined {
  const key = req.get('idempotency-key');
  if (key === undefined) return undefined;
  if (!IDEMPOTENCY_KEY.test(key)) {
    throw new ProblemError('OB_ERR_INVALID_REQUEST', "header 'Idempotency-Key' must be 1–255 printable ASCII characters", {
      errors: [{ field: 'Idempotency-Key', message: 'must be 1–255 printable ASCII characters' }],
    });
  }
  return createHash('sha256').update(key).digest('hex');
}

export const STREAM_TYPES = ['application/x-ndjson', 'application/jsonl', 'text/csv'];

function parseWait(req: Request): number {
  const raw = req.query.wait;
  if (raw === undefined) return 0;
  const seconds = Number(raw);
  if (typeof raw !== 'string' || !Number.isFinite(seconds) || seconds < 0 || seconds > MAX_WAIT_SECONDS) {
    throw new ProblemError('OB_ERR_INVALID_REQUEST', `query parameter 'wait' must be a number of seconds from 0 to ${MAX_WAIT_SECONDS}`, {
      errors: [{ field: 'wait', message: `must be 0–${MAX_WAIT_SECONDS}` }],
    });
  }
  return seconds;
}

/**
 * Submit, poll, download, cancel, delete. Mounted twice: under /v1, and at the root for the
 * seed's unversioned paths, where `model` defaults to DEFAULT_MODEL and a bare JSON array is
 * the inputs.
 */
export function batchRoutes(deps: BatchRouteDeps, basePath: '/v1' | ''): Router {
  const router = Router();
  const { config, repository, store, submitter, events } = deps;
  const checkCallback = async (url: string | undefined): Promise<string | null> => (url === undefined ? null : deps.checkCallbackUrl(url));

  const loadJob = async (req: Request): Promise<JobRecord> => {
    const id = String(req.params.id);
    const found = JOB_ID_PATTERN.test(id) ? await store.get(id) : null;
    // Another tenant's job is answered exactly as one that does not exist.
    const record = found && found.tenant === req.caller.tenant ? found : null;
    if (!record) throw new ProblemError('OB_ERR_JOB_NOT_FOUND', `no job with id '${id.slice(0, 64)}'`);
    return record;
  };

  const accepted = (res: Response, outcome: { record: JobRecord; created: boolean }): void => {
    const { record } = outcome;
    res.locals.jobId = record.id;
    const resultUrl = `${basePath}/batch-result/${record.id}`;
    res.status(outcome.created ? 202 : 200).location(resultUrl).json({ jobId: record.id, status: record.status, resultUrl });
  };

  /** NDJSON and CSV bodies stream through validation and staging; anything else falls through to JSON. */
  const streamedSubmit = async (req: Request, res: Response, next: NextFunction): Promise<void> => {
    if (!req.is(STREAM_TYPES)) {
      next();
      return;
    }
    const query = { ...(req.query as Record<string, unknown>) };
    if (basePath === '' && query.model === undefined) query.model = config.DEFAULT_MODEL;
    const envelope = checkEnvelope<{ model: string; version?: string; priority: number; callbackUrl?: string }>(validateSubmitQuery, query);
    const model = await deps.router.select(envelope.model, envelope.version);
    const keyHash = idempotencyKeyHash(req);
    const callbackUrl = await checkCallback(envelope.callbackUrl);
    const metered = streamedBody(req, config.MAX_STREAM_BYTES);
    const body = metered.stream;
    const source = req.is('text/csv') ? csvRows(body, model.parsing.manifest, config.MAX_BODY_BYTES) : ndjsonRows(body, config.MAX_BODY_BYTES);
    const outcome = await submitter.submit({
      model,
      rows: source.rows,
      tenant: req.caller.tenant,
      priority: envelope.priority,
      callbackUrl,
      rowLocation: source.currentLine,
      ...(keyHash ? { idempotency: { keyHash, bodyHash: () => `${req.originalUrl} ${metered.hash()}` } } : {}),
    });
    accepted(res, outcome);
  };

  const jsonSubmit = async (req: Request, res: Response): Promise<void> => {
    let body: unknown = req.body;
    if (basePath === '') {
      if (Array.isArray(body)) body = { inputs: body };
      if (typeof body === 'object' && body !== null && !('model' in body)) body = { ...body, model: config.DEFAULT_MODEL };
    }
    const envelope = checkEnvelope<SubmitBody>(validateBody, body);
    const model = await deps.router.select(envelope.model, envelope.version === undefined ? undefined : String(envelope.version));
    const keyHash = idempotencyKeyHash(req);
    const callbackUrl = await checkCallback(envelope.callbackUrl);
    const outcome = await submitter.submit({
      model,
      rows: envelope.inputs,
      tenant: req.caller.tenant,
      priority: envelope.priority,
      callbackUrl,
      rowLocation: 'row',
      ...(keyHash ? { idempotency: { keyHash, bodyHash: () => `${req.originalUrl} ${req.bodyHash ?? ''}` } } : {}),
    });
    accepted(res, outcome);
  };

  router.post('/batch-predict', streamedSubmit, jsonBody(config.MAX_BODY_BYTES), jsonSubmit);

  router.get('/batch-result/:id', async (req: Request, res: Response) => {
    const waitSeconds = parseWait(req);
    let record = await loadJob(req);
    res.locals.jobId = record.id;
    if (waitSeconds > 0 && !isFinished(record.status)) {
      await events.waitFor(record.id, waitSeconds * 1000, async () => {
        const now = await store.get(record.id);
        return now === null || isFinished(now.status);
      });
      record = await loadJob(req);
    }
    res.type('application/json').send(await renderJob(record, store, basePath, config));
  });

  router.get('/batch-result/:id/results', async (req: Request, res: Response) => {
    const record = await loadJob(req);
    res.locals.jobId = record.id;
    const format = req.accepts(['application/json', 'application/x-ndjson', 'text/csv']);
    if (!format) throw new ProblemError('OB_ERR_NOT_ACCEPTABLE', 'results come as application/json (pages), application/x-ndjson or text/csv');
    if (record.status === 'cancelled') throw new ProblemError('OB_ERR_JOB_CANCELLED', 'the job was cancelled; it has no results');
    if (!isFinished(record.status)) {
      throw new ProblemError('OB_ERR_JOB_NOT_FINISHED', `the job is ${record.status} (${record.done} of ${record.total} rows done); results come when it finishes`);
    }
    const query = format === 'application/json' ? checkEnvelope<{ offset: number; limit: number }>(validateResultsQuery, { ...(req.query as Record<string, unknown>) }) : null;
    await streamResults({ record, store, repository, logger: deps.logger, format, page: query, basePath, req, res });
  });

  router.post('/batch-result/:id/cancel', async (req: Request, res: Response) => {
    const record = await loadJob(req);
    res.locals.jobId = record.id;
    const outcome = await store.cancel(record.id, new Date());
    if (outcome === 'gone') throw new ProblemError('OB_ERR_JOB_NOT_FOUND', `no job with id '${record.id}'`);
    const now = (await store.get(record.id)) ?? record;
    if (outcome === 'finished') {
      throw new ProblemError('OB_ERR_JOB_FINISHED', `the job already finished as ${now.status}; it cannot be cancelled`, { job: jobStatusDocument(now, basePath) });
    }
    await deps.notifyFinished(now);
    res.json(jobStatusDocument(now, basePath));
  });

  router.delete('/batch-result/:id', async (req: Request, res: Response) => {
    const record = await loadJob(req);
    res.locals.jobId = record.id;
    // Cancel first so no chunk starts after the keys are gone, then remove everything.
    await store.cancel(record.id, new Date());
    await store.remove(record.id, record.chunks);
    res.status(204).end();
  });

  return router;
}
