import { createHash } from 'node:crypto';
import { Router, type NextFunction, type Request, type Response } from 'express';
import Ajv2020 from 'ajv/dist/2020';
import { JOB_STATUSES, isFinished, jobStatusDocument, ProblemError, type ModelManifest } from '@onnx-batch/contracts';
import {
  ARROW_STREAM_TYPE,
  arrowColumnBatches,
  csvRows,
  PARQUET_TYPE,
  parquetColumnBatches,
  resultColumns,
  isOutOfMemoryError,
  type QualityStore,
  ndjsonRows,
  type Config,
  type JobEvents,
  type JobRecord,
  type JobStore,
  type JobSubmitter,
  type Logger,
  type ModelEntry,
  type ModelRepository,
  type ModelRouter,
} from '@onnx-batch/shared';
import { jsonBody, streamedBody } from '../http/body';
import { spoolBody } from '../http/spool';
import { checkEnvelope } from '../http/envelope';
import { findJob, MAX_WAIT_SECONDS, pollJob, waitSeconds } from '../job-view';
import {
  componentName,
  copy,
  exampleRow,
  exampleVersion,
  GUARD_CODES,
  SUBMIT_GUARD_CODES,
  WRITE_GUARD_CODES,
  json,
  problemResponses,
  ref,
  type Paths,
  type Schema,
} from '../openapi-parts';
import { RESULT_FORMAT_NAMES, RESULT_FORMAT_SCHEMA, RESULT_FORMATS, resultFormatOf } from '../streaming/result-formats';
import { FAILED_ROWS_TYPE, streamFailedRows } from '../streaming/failed-rows';
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
  /** Told of each job cancelled here (POST …/cancel, or DELETE of an unfinished job): metrics. */
  onCancelled?: (record: JobRecord) => void;
  /** Where the job's predictions are kept for labels: DELETE removes them with the job. */
  quality: Pick<QualityStore, 'forgetJob'>;
}

/** Priority of a job: 1 is the most urgent, 1000 the least; interactive work should use less than bulk. */
export const DEFAULT_PRIORITY = 100;
/** Most results one JSON page of `/results` holds. */
export const MAX_PAGE = 10_000;

const PRIORITY_SCHEMA = {
  type: 'integer',
  minimum: 1,
  maximum: 1000,
  default: DEFAULT_PRIORITY,
  description: '1 = most urgent … 1000 = least.',
} as const;

/** The envelope of a JSON submit; rows themselves are checked against the model's schema. */
export const SUBMIT_BODY_SCHEMA = {
  type: 'object',
  required: ['model', 'inputs'],
  additionalProperties: false,
  properties: {
    model: { type: 'string', minLength: 1, maxLength: 64, description: 'Model name (GET /v1/models lists them).' },
    version: { type: ['string', 'integer'], description: "Model version; the model's default when absent." },
    inputs: {
      type: 'array',
      description: 'Rows: objects keyed by feature name (optionally with an `id`) or arrays of feature values in manifest order.',
    },
    priority: PRIORITY_SCHEMA,
    callbackUrl: {
      type: 'string',
      minLength: 1,
      maxLength: 2048,
      description: 'http(s) URL POSTed the job status when it finishes (signed; see the Security section).',
    },
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
    passthrough: {
      type: 'string',
      minLength: 1,
      maxLength: 4096,
      description:
        'Arrow and Parquet bodies: input columns (comma-separated, at most 32) kept beside the predictions in every results ' +
        'format. Each kept value is stored twice as JSON text, in the input chunk until it runs and in the results until the job ' +
        'expires.',
    },
  },
} as const;

/** Most input columns one job may keep beside its predictions. */
const MAX_PASSTHROUGH = 32;

/**
 * The input columns a columnar upload keeps beside its predictions: distinct, not `id` (always
 * echoed) and not a results column's name (they share one table).
 */
function passthroughNames(value: string | undefined, columnar: boolean, manifest: ModelManifest): string[] {
  if (value === undefined) return [];
  const refuse = (message: string): never => {
    throw new ProblemError('OB_ERR_INVALID_REQUEST', `query parameter 'passthrough' ${message}`, {
      errors: [{ field: 'passthrough', message }],
    });
  };
  if (!columnar) refuse('works with Arrow and Parquet bodies, whose other columns it keeps');
  const names = value.split(',').map((name) => name.trim());
  if (names.length > MAX_PASSTHROUGH) refuse(`names at most ${MAX_PASSTHROUGH} columns`);
  const taken = new Set(resultColumns(manifest).map((c) => c.name));
  const seen = new Set<string>();
  for (const name of names) {
    if (name === '') refuse('must be column names separated by commas');
    if (seen.has(name)) refuse(`names '${name}' twice`);
    if (taken.has(name)) refuse(`cannot keep '${name}': the results have a column of that name`);
    seen.add(name);
  }
  return names;
}

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

export function idempotencyKeyHash(req: Request): string | undefined {
  const key = req.get('idempotency-key');
  if (key === undefined) return undefined;
  if (!IDEMPOTENCY_KEY.test(key)) {
    throw new ProblemError('OB_ERR_INVALID_REQUEST', "header 'Idempotency-Key' must be 1–255 printable ASCII characters", {
      errors: [{ field: 'Idempotency-Key', message: 'must be 1–255 printable ASCII characters' }],
    });
  }
  return createHash('sha256').update(key).digest('hex');
}

export const STREAM_TYPES = ['application/x-ndjson', 'application/jsonl', 'text/csv', ARROW_STREAM_TYPE, PARQUET_TYPE];

const STREAM_DESCRIPTIONS: Record<string, string> = {
  'text/csv': 'A header line of feature names (and optionally `id`), then one row a line.',
  [ARROW_STREAM_TYPE]:
    'An Arrow IPC stream, read as it arrives: one column per feature, by name (numbers of any width; a FixedSizeList of ' +
    'numbers, FixedSizeBinary or Binary for a tensor or image; Utf8 or a dictionary of Utf8 for text), and an optional `id` ' +
    'column (Utf8 or integer). No nulls in features. Must end with its end-of-stream marker. Record batches may be ' +
    'ZSTD-compressed; LZ4 is refused.',
  [PARQUET_TYPE]:
    'A Parquet file, spooled to disk and read a row group at a time: the same columns as Arrow (a BLOB or a LIST of numbers ' +
    'for a tensor or image). A row group larger than PARQUET_MAX_ROW_GROUP_BYTES is refused with 413.',
};

const CONTENT_ROWS_PARAMETER = {
  name: 'Content-Rows',
  in: 'header',
  required: false,
  description: 'Arrow and Parquet bodies: the rows the body holds; a body holding another count is refused with 400.',
  schema: { type: 'integer', minimum: 0 },
};

/** `Content-Rows`: the row count a columnar upload declares, checked when it has been read. */
function declaredRows(req: Request): number | undefined {
  const header = req.get('content-rows');
  if (header === undefined) return undefined;
  if (!/^\d{1,15}$/.test(header.trim())) {
    throw new ProblemError('OB_ERR_INVALID_REQUEST', "header 'Content-Rows' must be a row count", {
      errors: [{ field: 'Content-Rows', message: 'must be a non-negative integer' }],
    });
  }
  return Number(header.trim());
}

/** A download of a job's results (all, or its failed rows) waits for the job to finish: 409 cancelled or unfinished. */
function mustHaveResults(record: JobRecord): void {
  if (record.status === 'cancelled') throw new ProblemError('OB_ERR_JOB_CANCELLED', 'the job was cancelled; it has no results');
  if (!isFinished(record.status)) {
    throw new ProblemError(
      'OB_ERR_JOB_NOT_FINISHED',
      `the job is ${record.status} (${record.done} of ${record.total} rows done); results come when it finishes`,
    );
  }
}

/**
 * Submit, poll, download, cancel, delete. Mounted twice: under /v1, and at the root for the
 * seed's unversioned paths, where `model` defaults to DEFAULT_MODEL and a bare JSON array is
 * the inputs.
 */
export function batchRoutes(deps: BatchRouteDeps, basePath: '/v1' | ''): Router {
  const router = Router();
  const { config, repository, store, submitter } = deps;
  const checkCallback = async (url: string | undefined): Promise<string | null> => (url === undefined ? null : deps.checkCallbackUrl(url));

  const loadJob = (req: Request): Promise<JobRecord> => findJob(store, String(req.params.id), req.caller.tenant);

  const accepted = (res: Response, outcome: { record: JobRecord; created: boolean }): void => {
    const { record } = outcome;
    res.locals.jobId = record.id;
    const resultUrl = `${basePath}/batch-result/${record.id}`;
    res
      .status(outcome.created ? 202 : 200)
      .location(resultUrl)
      .json({ jobId: record.id, status: record.status, resultUrl });
  };

  /** NDJSON and CSV bodies stream through validation and staging; anything else falls through to JSON. */
  const streamedSubmit = async (req: Request, res: Response, next: NextFunction): Promise<void> => {
    if (!req.is(STREAM_TYPES)) {
      next();
      return;
    }
    const query = { ...(req.query as Record<string, unknown>) };
    if (basePath === '' && query.model === undefined) query.model = config.DEFAULT_MODEL;
    const envelope = checkEnvelope<{ model: string; version?: string; priority: number; callbackUrl?: string; passthrough?: string }>(
      validateSubmitQuery,
      query,
    );
    const model = await deps.router.select(envelope.model, envelope.version);
    const keyHash = idempotencyKeyHash(req);
    const callbackUrl = await checkCallback(envelope.callbackUrl);
    const rows = declaredRows(req);
    const metered = streamedBody(req, config.MAX_STREAM_BYTES);
    const body = metered.stream;
    const { manifest } = model.parsing;
    const passthrough = passthroughNames(envelope.passthrough, Boolean(req.is([ARROW_STREAM_TYPE, PARQUET_TYPE])), manifest);
    const common = {
      model,
      tenant: req.caller.tenant,
      priority: envelope.priority,
      callbackUrl,
      ...(keyHash ? { idempotency: { keyHash, bodyHash: () => `${req.originalUrl} ${metered.hash()}` } } : {}),
    };
    if (req.is(PARQUET_TYPE)) {
      // Parquet's schema is in its footer: the whole file is on disk before a row is read.
      const spooled = await spoolBody(body, config.SPOOL_DIR);
      try {
        const columns = parquetColumnBatches(spooled.path, manifest, {
          maxRowGroupBytes: config.PARQUET_MAX_ROW_GROUP_BYTES,
          declaredRows: rows,
          passthrough,
        });
        accepted(res, await submitter.submit({ ...common, columns, passthrough }));
      } finally {
        await spooled.remove();
      }
      return;
    }
    if (req.is(ARROW_STREAM_TYPE)) {
      const columns = arrowColumnBatches(body, manifest, { declaredRows: rows, passthrough });
      accepted(res, await submitter.submit({ ...common, columns, passthrough }));
      return;
    }
    const source = req.is('text/csv') ? csvRows(body, manifest, config.MAX_ROW_BYTES) : ndjsonRows(body, config.MAX_ROW_BYTES);
    accepted(res, await submitter.submit({ ...common, rows: source.rows, rowLocation: source.currentLine }));
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
    const poll = { basePath, id: String(req.params.id), tenant: req.caller.tenant, wait: waitSeconds(req.query.wait) };
    const body = await pollJob(deps, poll, (jobId) => (res.locals.jobId = jobId));
    res.type('application/json').send(body);
  });

  router.get('/batch-result/:id/results', async (req: Request, res: Response) => {
    const record = await loadJob(req);
    res.locals.jobId = record.id;
    const format = resultFormatOf(req);
    mustHaveResults(record);
    const { format: _format, ...pageQuery } = req.query as Record<string, unknown>;
    const query = format === 'json' ? checkEnvelope<{ offset: number; limit: number }>(validateResultsQuery, pageQuery) : null;
    await streamResults({ record, store, repository, logger: deps.logger, format, page: query, basePath, req, res });
  });

  router.get('/batch-result/:id/failed-rows', async (req: Request, res: Response) => {
    const record = await loadJob(req);
    res.locals.jobId = record.id;
    mustHaveResults(record);
    await streamFailedRows({ record, store, logger: deps.logger, req, res });
  });

  router.post('/batch-result/:id/cancel', async (req: Request, res: Response) => {
    const record = await loadJob(req);
    res.locals.jobId = record.id;
    const outcome = await store.cancel(record.id, new Date());
    if (outcome === 'gone') throw new ProblemError('OB_ERR_JOB_NOT_FOUND', `no job with id '${record.id}'`);
    const now = (await store.get(record.id)) ?? record;
    if (outcome === 'finished') {
      throw new ProblemError('OB_ERR_JOB_FINISHED', `the job already finished as ${now.status}; it cannot be cancelled`, {
        job: jobStatusDocument(now, basePath),
      });
    }
    deps.onCancelled?.(now);
    await deps.notifyFinished(now);
    res.json(jobStatusDocument(now, basePath));
  });

  router.delete('/batch-result/:id', async (req: Request, res: Response) => {
    const record = await loadJob(req);
    res.locals.jobId = record.id;
    // Cancel first so no chunk starts after the keys are gone, then remove everything. Redis at
    // maxmemory refuses the cancel's write; deleting is how room is made, so delete all the same
    // (a chunk that starts afterwards finds no record and is skipped).
    const cancelled = await store.cancel(record.id, new Date()).catch((error: unknown) => {
      if (isOutOfMemoryError(error)) return 'refused' as const;
      throw error;
    });
    if (cancelled === 'cancelled') deps.onCancelled?.(record);
    await store.remove(record.id, record.chunks, record.tenant);
    // The predictions kept for labels outlive the results; deleting the job removes them too.
    await deps.quality.forgetJob(record.id);
    res.status(204).end();
  });

  return router;
}

// ---------------------------------------------------------------------------------------------
// OpenAPI: the fragment of these routes (api/src/openapi.ts merges it).

/** The submit bodies (per model, its rows from model-routes' row components), the job and its results. */
export function batchSchemas(
  entries: readonly ModelEntry[],
  config: Pick<Config, 'DEFAULT_MODEL' | 'INLINE_RESULTS_LIMIT'>,
): Record<string, Schema> {
  const timestamp = { type: 'string', format: 'date-time' };
  const nullableTimestamp = { type: ['string', 'null'], format: 'date-time' };
  const variants: Schema[] = entries.map((entry) => {
    const body = copy(SUBMIT_BODY_SCHEMA);
    const properties = body.properties as Record<string, Schema>;
    properties.model = { ...properties.model, const: entry.name };
    properties.version = {
      ...properties.version,
      enum: entry.versions.flatMap((v) => [v.manifest.version, Number(v.manifest.version)]),
      description: `Version of ${entry.name}; ${entry.defaultVersion} (its default) when absent.`,
    };
    properties.inputs = { ...properties.inputs, items: { anyOf: entry.versions.map((v) => ref(componentName(v, 'Row'))) } };
    return { title: entry.name, ...body };
  });
  const defaultEntry = entries.find((e) => e.name === config.DEFAULT_MODEL);
  const legacy = copy(SUBMIT_BODY_SCHEMA);
  legacy.required = ['inputs'];
  return {
    SubmitRequest: {
      description: 'A JSON batch: the envelope (validated as is) plus, per model, the rows its manifest accepts.',
      oneOf: variants,
    },
    LegacySubmitRequest: {
      description: `The unversioned form: \`model\` defaults to ${config.DEFAULT_MODEL}, and a bare array is the inputs.`,
      anyOf: [
        legacy,
        { type: 'array', items: defaultEntry ? { anyOf: defaultEntry.versions.map((v) => ref(componentName(v, 'Row'))) } : {} },
      ],
    },
    Submitted: {
      type: 'object',
      required: ['jobId', 'status', 'resultUrl'],
      properties: { jobId: { type: 'string', format: 'uuid' }, status: { enum: [...JOB_STATUSES] }, resultUrl: { type: 'string' } },
    },
    JobView: {
      type: 'object',
      required: ['jobId', 'status', 'model', 'progress', 'createdAt', 'startedAt', 'finishedAt', 'resultsUrl', 'error'],
      properties: {
        jobId: { type: 'string', format: 'uuid' },
        status: { enum: [...JOB_STATUSES] },
        model: {
          type: 'object',
          required: ['name', 'version', 'route'],
          properties: {
            name: { type: 'string' },
            version: { type: 'string', description: 'The version that served the job.' },
            route: {
              enum: ['pinned', 'default', 'canary'],
              description: 'How the version was chosen: named by the client, or by the model\u2019s rollout.',
            },
          },
        },
        progress: {
          type: 'object',
          required: ['done', 'total', 'failed'],
          properties: {
            done: { type: 'integer', minimum: 0 },
            total: { type: 'integer', minimum: 0 },
            failed: { type: 'integer', minimum: 0 },
          },
        },
        createdAt: timestamp,
        startedAt: nullableTimestamp,
        finishedAt: nullableTimestamp,
        resultsUrl: { type: 'string' },
        error: { anyOf: [ref('Problem'), { type: 'null' }] },
      },
    },
    JobStatus: {
      description:
        `The job's status; \`results\` holds every result line once it has finished, when it has at most ` +
        `${config.INLINE_RESULTS_LIMIT} rows (null otherwise: page through \`resultsUrl\`).`,
      allOf: [
        ref('JobView'),
        { type: 'object', required: ['results'], properties: { results: { type: ['array', 'null'], items: ref('ResultRow') } } },
      ],
    },
    FailedRow: {
      type: 'object',
      description: 'One line of `…/failed-rows`: a row of the job the model could not run.',
      required: ['index', 'id', 'code', 'message'],
      additionalProperties: false,
      properties: {
        index: { type: 'integer', minimum: 0, description: "The row's 0-based place in the job's input." },
        id: { type: ['string', 'number', 'null'], description: "The row's `id` as submitted; null when it had none." },
        code: { type: 'string', description: 'The error code (docs/errors.md), e.g. `OB_ERR_INFERENCE_FAILED`.' },
        message: { type: 'string', description: 'Why the row failed.' },
      },
    },
    ResultsPage: {
      type: 'object',
      required: ['jobId', 'offset', 'limit', 'total', 'next', 'results'],
      properties: {
        jobId: { type: 'string', format: 'uuid' },
        offset: { type: 'integer', minimum: 0 },
        limit: { type: 'integer', minimum: 1, maximum: MAX_PAGE },
        total: { type: 'integer', minimum: 0 },
        next: { type: ['string', 'null'], description: 'URL of the next page; null on the last.' },
        results: { type: 'array', items: ref('ResultRow') },
      },
    },
  };
}

const JOB_ID_PARAMETER = { name: 'id', in: 'path', required: true, description: 'Job id (a UUID).', schema: { type: 'string' } };
const IDEMPOTENCY_PARAMETER = {
  name: 'Idempotency-Key',
  in: 'header',
  required: false,
  description:
    'Any 1–255 printable ASCII characters: the same key with the same body answers the first job (200) instead of creating another.',
  schema: { type: 'string', minLength: 1, maxLength: 255 },
};

/** Query parameters from a JSON Schema object's properties. */
function queryParameters(schema: Schema, note = ''): Schema[] {
  const required = new Set((schema.required as string[] | undefined) ?? []);
  return Object.entries(schema.properties as Record<string, Schema>).map(([name, property]) => ({
    name,
    in: 'query',
    required: false,
    ...(note || required.has(name) ? { description: `${required.has(name) ? 'Required. ' : ''}${note}`.trim() } : {}),
    schema: property,
  }));
}

/** The paths of these routes as mounted at `base` (`/v1`, or `''` for the deprecated unversioned ones). */
export function batchPaths(base: '/v1' | '', entries: readonly ModelEntry[], config: Pick<Config, 'DEFAULT_MODEL'>): Paths {
  const legacy = base === '';
  const tags = ['batches'];
  const flags = legacy ? { deprecated: true } : {};
  const examples = Object.fromEntries(
    entries.map((entry) => {
      const version = exampleVersion(entry);
      return [
        entry.name,
        {
          summary: `${entry.name} (${entry.defaultVersion})`,
          value: { model: entry.name, inputs: version ? [exampleRow(version.manifest)] : [] },
        },
      ];
    }),
  );
  const orderedExamples = Object.fromEntries(
    Object.entries(examples).sort(([a], [b]) => (a === config.DEFAULT_MODEL ? -1 : b === config.DEFAULT_MODEL ? 1 : a.localeCompare(b))),
  );
  const streamed = Object.fromEntries(
    STREAM_TYPES.map((type) => [
      type,
      {
        schema: {
          type: 'string',
          ...(type === ARROW_STREAM_TYPE || type === PARQUET_TYPE ? { format: 'binary' } : {}),
          description: STREAM_DESCRIPTIONS[type] ?? 'One row (JSON object or array) a line.',
        },
      },
    ]),
  );
  const accepted = {
    description: 'The job was created; poll `resultUrl`.',
    headers: { Location: { description: 'The job’s status URL.', schema: { type: 'string' } } },
    ...json(ref('Submitted')),
  };
  const formatList = RESULT_FORMAT_NAMES.map((f) => `${f} (${RESULT_FORMATS[f]})`).join(', ');
  return {
    [`${base}/batch-predict`]: {
      post: {
        ...flags,
        tags,
        operationId: legacy ? 'legacySubmitBatch' : 'submitBatch',
        summary: legacy ? 'Submit a batch (unversioned; the default model).' : 'Submit a batch of rows for a model.',
        description:
          'A JSON body carries the envelope and its rows; an NDJSON, JSONL, CSV, Arrow IPC stream or Parquet body carries only ' +
          'rows, streamed (the envelope then comes in the query). ' +
          'Every row is validated before anything runs: one bad row refuses the batch with 400 naming it.',
        parameters: [
          IDEMPOTENCY_PARAMETER,
          CONTENT_ROWS_PARAMETER,
          ...queryParameters(
            copy(SUBMIT_QUERY_SCHEMA),
            'Streamed (NDJSON, CSV, Arrow, Parquet) bodies only; JSON bodies carry it in the body.',
          ),
        ],
        requestBody: {
          required: true,
          content: {
            'application/json': { schema: ref(legacy ? 'LegacySubmitRequest' : 'SubmitRequest'), examples: orderedExamples },
            ...streamed,
          },
        },
        responses: {
          '200': { description: 'The same Idempotency-Key and body were sent before: the job they created.', ...json(ref('Submitted')) },
          '202': accepted,
          ...problemResponses([
            ...SUBMIT_GUARD_CODES,
            'OB_ERR_MALFORMED_JSON',
            'OB_ERR_INVALID_REQUEST',
            'OB_ERR_INVALID_ROWS',
            'OB_ERR_MODEL_NOT_FOUND',
            'OB_ERR_VERSION_NOT_FOUND',
            'OB_ERR_IDEMPOTENCY_CONFLICT',
            'OB_ERR_PAYLOAD_TOO_LARGE',
            'OB_ERR_TOO_MANY_ROWS',
            'OB_ERR_UNSUPPORTED_MEDIA_TYPE',
            'OB_ERR_TOO_MANY_ACTIVE_JOBS',
          ]),
        },
      },
    },
    [`${base}/batch-result/{id}`]: {
      get: {
        ...flags,
        tags,
        operationId: legacy ? 'legacyGetJob' : 'getJob',
        summary: 'A job’s status, progress and (when small and finished) its results.',
        parameters: [
          JOB_ID_PARAMETER,
          {
            name: 'wait',
            in: 'query',
            required: false,
            description: 'Hold the request until the job finishes, at most this many seconds (long poll).',
            schema: { type: 'number', minimum: 0, maximum: MAX_WAIT_SECONDS, default: 0 },
          },
        ],
        responses: {
          '200': { description: 'The job.', ...json(ref('JobStatus')) },
          ...problemResponses([...GUARD_CODES, 'OB_ERR_INVALID_REQUEST', 'OB_ERR_JOB_NOT_FOUND']),
        },
      },
      delete: {
        ...flags,
        tags,
        operationId: legacy ? 'legacyDeleteJob' : 'deleteJob',
        summary: 'Cancel the job if it is unfinished, then delete it with its inputs and results.',
        parameters: [JOB_ID_PARAMETER],
        responses: { '204': { description: 'Deleted.' }, ...problemResponses([...GUARD_CODES, 'OB_ERR_JOB_NOT_FOUND']) },
      },
    },
    [`${base}/batch-result/{id}/results`]: {
      get: {
        ...flags,
        tags,
        operationId: legacy ? 'legacyGetResults' : 'getResults',
        summary:
          'A finished job’s results, in input order: JSON pages, or the whole of them streamed as NDJSON, CSV, an Arrow IPC ' +
          'stream or Parquet (by Accept or `format`).',
        parameters: [
          JOB_ID_PARAMETER,
          {
            name: 'format',
            in: 'query',
            required: false,
            description: `The form of the results, overriding Accept: ${formatList}.`,
            schema: { ...RESULT_FORMAT_SCHEMA, enum: [...RESULT_FORMAT_SCHEMA.enum] },
          },
          ...queryParameters(copy(RESULTS_QUERY_SCHEMA), 'JSON pages only.'),
        ],
        responses: {
          '200': {
            description:
              'One page (application/json), or every result (as an attachment): a line each (application/x-ndjson, text/csv), ' +
              'or the columns of the CSV, typed, one Arrow record batch or Parquet row group per stored chunk.',
            content: {
              [RESULT_FORMATS.json]: { schema: ref('ResultsPage') },
              [RESULT_FORMATS.ndjson]: { schema: { type: 'string', description: 'One result line (ResultRow) a line.' } },
              [RESULT_FORMATS.csv]: { schema: { type: 'string' } },
              [RESULT_FORMATS.arrow]: {
                schema: {
                  type: 'string',
                  format: 'binary',
                  description:
                    'An Arrow IPC stream: `id` Utf8, the result columns (float32; a tensor output FixedSizeList<float32> or JSON ' +
                    'Utf8), `error` Utf8; ends with the end-of-stream marker.',
                },
              },
              [RESULT_FORMATS.parquet]: {
                schema: { type: 'string', format: 'binary', description: 'A Parquet file (snappy) with the columns of the Arrow stream.' },
              },
            },
          },
          ...problemResponses([
            ...GUARD_CODES,
            'OB_ERR_INVALID_REQUEST',
            'OB_ERR_JOB_NOT_FOUND',
            'OB_ERR_NOT_ACCEPTABLE',
            'OB_ERR_JOB_NOT_FINISHED',
            'OB_ERR_JOB_CANCELLED',
          ]),
        },
      },
    },
    [`${base}/batch-result/{id}/failed-rows`]: {
      get: {
        ...flags,
        tags,
        operationId: legacy ? 'legacyGetFailedRows' : 'getFailedRows',
        summary: 'Only the rows of a finished job that failed, in input order, streamed as NDJSON (an attachment).',
        parameters: [JOB_ID_PARAMETER],
        responses: {
          '200': {
            description:
              'One FailedRow a line (`<jobId>.failed.ndjson`); an empty body when no row failed. A body cut short (no final chunk) ' +
              'means the stored results could not be read part-way.',
            content: {
              [FAILED_ROWS_TYPE]: { schema: { type: 'string', description: 'One FailedRow (components.schemas.FailedRow) a line.' } },
            },
          },
          ...problemResponses([...GUARD_CODES, 'OB_ERR_JOB_NOT_FOUND', 'OB_ERR_JOB_NOT_FINISHED', 'OB_ERR_JOB_CANCELLED']),
        },
      },
    },
    [`${base}/batch-result/{id}/cancel`]: {
      post: {
        ...flags,
        tags,
        operationId: legacy ? 'legacyCancelJob' : 'cancelJob',
        summary: 'Cancel an unfinished job: chunks not yet started never run.',
        parameters: [JOB_ID_PARAMETER],
        responses: {
          '200': { description: 'The cancelled job.', ...json(ref('JobView')) },
          ...problemResponses([...WRITE_GUARD_CODES, 'OB_ERR_JOB_NOT_FOUND', 'OB_ERR_JOB_FINISHED']),
        },
      },
    },
  };
}
