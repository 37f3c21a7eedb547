import { readFileSync } from 'node:fs';
import path from 'node:path';
import {
  ERRORS,
  JOB_STATUSES,
  PROBLEM_CONTENT_TYPE,
  ROW_ID_SCHEMA,
  rowSchema,
  type Config,
  type ErrorCode,
  type ModelEntry,
  type ModelManifest,
  type ModelRepository,
  type ModelVersion,
} from '@onnx-batch/shared';
import { ROLES } from './http/auth';
import { MAX_PAGE, MAX_WAIT_SECONDS, RESULTS_QUERY_SCHEMA, STREAM_TYPES, SUBMIT_BODY_SCHEMA, SUBMIT_QUERY_SCHEMA } from './routes/batch-routes';
import { PREDICT_BODY_SCHEMA } from './routes/model-routes';
import { driftPaths, driftSchemas } from './routes/drift-routes';
import { rolloutPaths, rolloutSchemas } from './routes/rollout-routes';
import { SCHEDULE_BODY_SCHEMA } from './schedules/schedule-definition';

/**
 * The OpenAPI 3.1 description of the API, generated from the schemas the API validates with
 * (the submit envelope of batch-routes.ts, the predict body of model-routes.ts) and from every
 * model's manifest (row and result schemas), so it cannot drift from what the code accepts.
 */

type Schema = Record<string, unknown>;
type Operation = Record<string, unknown>;
type PathItem = Record<string, Operation>;

export type OpenApiDocument = {
  openapi: string;
  info: Record<string, unknown>;
  paths: Record<string, PathItem>;
  components: { schemas: Record<string, Schema>; [part: string]: unknown };
  [field: string]: unknown;
};

export type OpenApiConfig = Pick<Config, 'DEFAULT_MODEL' | 'SYNC_MAX_ROWS' | 'INLINE_RESULTS_LIMIT'>;

const API_VERSION = (() => {
  try {
    return (JSON.parse(readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8')) as { version?: string }).version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
})();

/** A mutable deep copy of a (readonly, `as const`) schema. */
function copy<T>(schema: T): Schema {
  return JSON.parse(JSON.stringify(schema)) as Schema;
}

const ref = (name: string): Schema => ({ $ref: `#/components/schemas/${name}` });

/** Component names allow [A-Za-z0-9._-]; model names are [a-z0-9-] and versions digits. */
function componentName(version: ModelVersion, part: 'Row' | 'Result'): string {
  return `${version.manifest.name}.v${version.manifest.version}.${part}`;
}

// ---------------------------------------------------------------------------------------------
// Errors

/** Guard failures any authenticated route can answer. */
const GUARD_CODES: ErrorCode[] = ['OB_ERR_UNAUTHORIZED', 'OB_ERR_FORBIDDEN', 'OB_ERR_RATE_LIMITED', 'OB_ERR_INTERNAL'];

/** problem+json answers, one per status, each naming the codes it can carry. */
function problemResponses(codes: readonly ErrorCode[]): Record<string, unknown> {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of new Set(codes)) {
    const status = ERRORS[code].status;
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  const responses: Record<string, unknown> = {};
  for (const [status, list] of [...byStatus].sort(([a], [b]) => a - b)) {
    responses[String(status)] = {
      description: list.map((code) => `\`${code}\`: ${ERRORS[code].title}`).join('; '),
      ...(status === 429 ? { headers: { 'Retry-After': { description: 'Seconds to wait before trying again.', schema: { type: 'integer' } } } } : {}),
      content: {
        [PROBLEM_CONTENT_TYPE]: {
          schema: { allOf: [ref('Problem'), { properties: { status: { const: status }, code: { enum: list } } }] },
        },
      },
    };
  }
  return responses;
}

function problemSchemas(): Record<string, Schema> {
  return {
    FieldError: {
      type: 'object',
      description: 'One offending field (of one row, when `row` or `line` is present).',
      required: ['message'],
      properties: {
        row: { type: 'integer', minimum: 0, description: '0-based row index (JSON bodies).' },
        line: { type: 'integer', minimum: 1, description: '1-based line (streamed NDJSON/CSV bodies).' },
        field: { type: 'string' },
        message: { type: 'string' },
      },
    },
    Problem: {
      type: 'object',
      description: 'RFC 9457 problem details (`application/problem+json`); docs/errors.md lists every code.',
      required: ['type', 'title', 'status', 'detail', 'code'],
      properties: {
        type: { type: 'string', description: '`urn:onnx-batch:problem:<kind>`' },
        title: { type: 'string' },
        status: { type: 'integer' },
        detail: { type: 'string' },
        code: { type: 'string', enum: Object.keys(ERRORS) },
        instance: { type: 'string' },
        errors: { type: 'array', items: ref('FieldError') },
        jobId: { type: 'string' },
        requestId: { type: 'string' },
      },
      additionalProperties: true,
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Models

/** A value that passes a feature's schema, for examples. */
function exampleValue(feature: ModelManifest['features'][number]): unknown {
  switch (feature.type) {
    case 'number': {
      const low = feature.minimum ?? 0;
      const high = feature.maximum ?? low + 1;
      return Math.round(((low + high) / 2) * 100) / 100;
    }
    case 'integer':
      return Math.ceil(feature.minimum ?? 0);
    case 'string':
      return 'example text'.slice(0, feature.maxLength ?? 12).padEnd(feature.minLength ?? 0, 'x');
    case 'tensor': {
      const shape = feature.shape ?? [];
      const fill = Math.max(0, feature.minimum ?? 0);
      if (feature.base64 === 'uint8') return Buffer.alloc(shape.reduce((a, b) => a * b, 1), fill).toString('base64');
      const nest = (dims: readonly number[]): unknown => (dims.length === 0 ? fill : Array.from({ length: dims[0] ?? 0 }, () => nest(dims.slice(1))));
      return nest(shape);
    }
  }
}

export function exampleRow(manifest: ModelManifest): Record<string, unknown> {
  return Object.fromEntries(manifest.features.map((f) => [f.name, exampleValue(f)]));
}

/** The JSON Schema of one result line of a model version, from its manifest's `result`. */
function resultSchema(manifest: ModelManifest): Schema {
  const spec = manifest.result;
  const id = { id: ROW_ID_SCHEMA };
  switch (spec.kind) {
    case 'classification': {
      const labels = spec.labels ?? [];
      return {
        type: 'object',
        required: ['label', 'confidence', 'probabilities'],
        properties: {
          ...id,
          label: { type: 'string', enum: labels },
          confidence: { type: 'number', minimum: 0, maximum: 1 },
          probabilities: {
            type: 'object',
            required: labels,
            additionalProperties: false,
            properties: Object.fromEntries(labels.map((l) => [l, { type: 'number', minimum: 0, maximum: 1 }])),
          },
        },
      };
    }
    case 'regression':
      if (spec.names && spec.names.length > 1) {
        return {
          type: 'object',
          required: ['values'],
          properties: {
            ...id,
            values: { type: 'object', required: spec.names, properties: Object.fromEntries(spec.names.map((n) => [n, { type: ['number', 'string'] }])) },
          },
        };
      }
      return { type: 'object', required: ['value'], properties: { ...id, value: { type: ['number', 'string'] } } };
    case 'tensor': {
      const names = spec.outputs ?? manifest.outputs.map((o) => o.name);
      return {
        type: 'object',
        required: ['outputs'],
        properties: { ...id, outputs: { type: 'object', required: names, properties: Object.fromEntries(names.map((n) => [n, { type: 'array' }])) } },
      };
    }
  }
}

function modelSchemas(versions: readonly ModelVersion[]): Record<string, Schema> {
  const schemas: Record<string, Schema> = {
    Feature: {
      type: 'object',
      description: 'One feature of a row, as the manifest declares it (docs/model-manifest.md).',
      required: ['name', 'type'],
      properties: {
        name: { type: 'string' },
        type: { enum: ['number', 'integer', 'string', 'tensor'] },
        description: { type: 'string' },
        minimum: { type: 'number' },
        maximum: { type: 'number' },
        minLength: { type: 'integer' },
        maxLength: { type: 'integer' },
        shape: { type: 'array', items: { type: 'integer' } },
        base64: { const: 'uint8' },
      },
    },
    ModelVersion: {
      type: 'object',
      required: ['name', 'version', 'task', 'features', 'inputSchema'],
      properties: {
        name: { type: 'string' },
        version: { type: 'string' },
        task: { enum: ['classification', 'regression', 'tensor'] },
        description: { type: ['string', 'null'] },
        labels: { type: ['array', 'null'], items: { type: 'string' } },
        accuracy: { type: ['number', 'null'] },
        evaluation: { type: ['string', 'null'] },
        features: { type: 'array', items: ref('Feature') },
        inputSchema: { type: 'object', description: 'JSON Schema of one row (the one rows are validated against).' },
        chunkSize: { type: ['integer', 'null'] },
      },
    },
    Model: {
      type: 'object',
      required: ['name', 'defaultVersion', 'versions'],
      properties: { name: { type: 'string' }, defaultVersion: { type: 'string' }, versions: { type: 'array', items: ref('ModelVersion') } },
    },
    ModelList: {
      type: 'object',
      required: ['models', 'problems'],
      properties: {
        models: { type: 'array', items: ref('Model') },
        problems: {
          type: 'array',
          description: 'Model files that failed to load since start-up (the rest keep serving).',
          items: { type: 'object', required: ['file', 'message'], properties: { file: { type: 'string' }, field: { type: 'string' }, message: { type: 'string' } } },
        },
      },
    },
    RowError: {
      type: 'object',
      description: 'The result line of a row that could not be run.',
      required: ['error'],
      properties: { id: ROW_ID_SCHEMA, error: { type: 'object', required: ['code', 'message'], properties: { code: { type: 'string' }, message: { type: 'string' } } } },
    },
  };
  for (const version of versions) {
    schemas[componentName(version, 'Row')] = {
      description: `A row for ${version.manifest.name} v${version.manifest.version}: an object keyed by feature name (optionally with an \`id\`), or an array of the feature values in manifest order.`,
      ...rowSchema(version.manifest),
    };
    schemas[componentName(version, 'Result')] = {
      description: `A result line of ${version.manifest.name} v${version.manifest.version} (${version.manifest.task}).`,
      ...resultSchema(version.manifest),
    };
  }
  schemas.ResultRow = {
    description: 'One result line, in input order: the model version’s result, or the row’s error.',
    anyOf: [...versions.map((v) => ref(componentName(v, 'Result'))), ref('RowError')],
  };
  return schemas;
}

// ---------------------------------------------------------------------------------------------
// Jobs

function jobSchemas(entries: readonly ModelEntry[], config: OpenApiConfig): Record<string, Schema> {
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
      anyOf: [legacy, { type: 'array', items: defaultEntry ? { anyOf: defaultEntry.versions.map((v) => ref(componentName(v, 'Row'))) } : {} }],
    },
    PredictRequest: {
      ...copy(PREDICT_BODY_SCHEMA),
      description: `Rows of the model in the path (at most ${config.SYNC_MAX_ROWS}); each is validated against that model version's row schema.`,
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
            route: { enum: ['pinned', 'default', 'canary'], description: 'How the version was chosen: named by the client, or by the model\u2019s rollout.' },
          },
        },
        progress: {
          type: 'object',
          required: ['done', 'total', 'failed'],
          properties: { done: { type: 'integer', minimum: 0 }, total: { type: 'integer', minimum: 0 }, failed: { type: 'integer', minimum: 0 } },
        },
        createdAt: timestamp,
        startedAt: nullableTimestamp,
        finishedAt: nullableTimestamp,
        resultsUrl: { type: 'string' },
        error: { anyOf: [ref('Problem'), { type: 'null' }] },
      },
    },
    CachedPrediction: {
      type: 'object',
      description: 'A synchronous predict answered from the prediction cache: the shape of a finished job, without a job.',
      required: ['jobId', 'status', 'model', 'progress', 'results', 'cached'],
      properties: {
        jobId: { type: 'null' },
        status: { const: 'completed' },
        model: { type: 'object', properties: { name: { type: 'string' }, version: { type: 'string' }, route: { enum: ['pinned', 'default', 'canary'] } } },
        progress: { type: 'object', properties: { done: { type: 'integer' }, total: { type: 'integer' }, failed: { const: 0 } } },
        resultsUrl: { type: 'null' },
        cached: { const: true },
        results: { type: 'array', items: ref('ResultRow') },
      },
    },
    JobStatus: {
      description: `The job's status; \`results\` holds every result line once it has finished, when it has at most ${config.INLINE_RESULTS_LIMIT} rows (null otherwise: page through \`resultsUrl\`).`,
      allOf: [ref('JobView'), { type: 'object', required: ['results'], properties: { results: { type: ['array', 'null'], items: ref('ResultRow') } } }],
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

// ---------------------------------------------------------------------------------------------
// Paths

const JOB_ID_PARAMETER = { name: 'id', in: 'path', required: true, description: 'Job id (a UUID).', schema: { type: 'string' } };
const IDEMPOTENCY_PARAMETER = {
  name: 'Idempotency-Key',
  in: 'header',
  required: false,
  description: 'Any 1–255 printable ASCII characters: the same key with the same body answers the first job (200) instead of creating another.',
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

const json = (schema: Schema, extra: Schema = {}): Schema => ({ content: { 'application/json': { schema, ...extra } } });

function batchPaths(base: '/v1' | '', entries: readonly ModelEntry[], config: OpenApiConfig): Record<string, PathItem> {
  const legacy = base === '';
  const tags = ['batches'];
  const flags = legacy ? { deprecated: true } : {};
  const examples = Object.fromEntries(
    entries.map((entry) => {
      const version = entry.versions.find((v) => v.manifest.version === entry.defaultVersion) ?? entry.versions[0];
      return [entry.name, { summary: `${entry.name} (${entry.defaultVersion})`, value: { model: entry.name, inputs: version ? [exampleRow(version.manifest)] : [] } }];
    }),
  );
  const orderedExamples = Object.fromEntries(Object.entries(examples).sort(([a], [b]) => (a === config.DEFAULT_MODEL ? -1 : b === config.DEFAULT_MODEL ? 1 : a.localeCompare(b))));
  const streamed = Object.fromEntries(
    STREAM_TYPES.map((type) => [
      type,
      { schema: { type: 'string', description: type === 'text/csv' ? 'A header line of feature names (and optionally `id`), then one row a line.' : 'One row (JSON object or array) a line.' } },
    ]),
  );
  const accepted = {
    description: 'The job was created; poll `resultUrl`.',
    headers: { Location: { description: 'The job’s status URL.', schema: { type: 'string' } } },
    ...json(ref('Submitted')),
  };
  return {
    [`${base}/batch-predict`]: {
      post: {
        ...flags,
        tags,
        operationId: legacy ? 'legacySubmitBatch' : 'submitBatch',
        summary: legacy ? 'Submit a batch (unversioned; the default model).' : 'Submit a batch of rows for a model.',
        description:
          'A JSON body carries the envelope and its rows; an NDJSON, JSONL or CSV body carries only rows, streamed (the envelope then comes in the query). ' +
          'Every row is validated before anything runs: one bad row refuses the batch with 400 naming it.',
        parameters: [IDEMPOTENCY_PARAMETER, ...queryParameters(copy(SUBMIT_QUERY_SCHEMA), 'Streamed (NDJSON/CSV) bodies only; JSON bodies carry it in the body.')],
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
            ...GUARD_CODES,
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
        responses: { '200': { description: 'The job.', ...json(ref('JobStatus')) }, ...problemResponses([...GUARD_CODES, 'OB_ERR_INVALID_REQUEST', 'OB_ERR_JOB_NOT_FOUND']) },
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
        summary: 'A finished job’s results, in input order: JSON pages, or the whole of them streamed as NDJSON or CSV (by Accept).',
        parameters: [JOB_ID_PARAMETER, ...queryParameters(copy(RESULTS_QUERY_SCHEMA), 'JSON pages only.')],
        responses: {
          '200': {
            description: 'One page (application/json), or every result line (application/x-ndjson, text/csv; as an attachment).',
            content: {
              'application/json': { schema: ref('ResultsPage') },
              'application/x-ndjson': { schema: { type: 'string', description: 'One result line (ResultRow) a line.' } },
              'text/csv': { schema: { type: 'string' } },
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
    [`${base}/batch-result/{id}/cancel`]: {
      post: {
        ...flags,
        tags,
        operationId: legacy ? 'legacyCancelJob' : 'cancelJob',
        summary: 'Cancel an unfinished job: chunks not yet started never run.',
        parameters: [JOB_ID_PARAMETER],
        responses: {
          '200': { description: 'The cancelled job.', ...json(ref('JobView')) },
          ...problemResponses([...GUARD_CODES, 'OB_ERR_JOB_NOT_FOUND', 'OB_ERR_JOB_FINISHED']),
        },
      },
    },
  };
}

function modelPaths(entries: readonly ModelEntry[], config: OpenApiConfig): Record<string, PathItem> {
  const tags = ['models'];
  const name = { name: 'name', in: 'path', required: true, schema: { type: 'string', enum: entries.map((e) => e.name) } };
  const version = {
    name: 'version',
    in: 'path',
    required: true,
    schema: { type: 'string', enum: [...new Set(entries.flatMap((e) => e.versions.map((v) => v.manifest.version)))] },
  };
  const predictBody = {
    required: true,
    content: {
      'application/json': {
        schema: {
          allOf: [
            ref('PredictRequest'),
            { properties: { inputs: { items: { anyOf: entries.flatMap((e) => e.versions.map((v) => ref(componentName(v, 'Row')))) } } } },
          ],
        },
        examples: Object.fromEntries(
          entries.map((e) => {
            const v = e.versions.find((x) => x.manifest.version === e.defaultVersion) ?? e.versions[0];
            return [e.name, { summary: e.name, value: { inputs: v ? [exampleRow(v.manifest)] : [] } }];
          }),
        ),
      },
    },
  };
  const predictResponses = {
    '200': {
      description: 'The finished job with its results inline; or, when the model has a prediction cache (PREDICTION_CACHE_MODELS) holding every row, the cached results without a job (`jobId` null, `cached` true).',
      ...json({ oneOf: [ref('JobStatus'), ref('CachedPrediction')] }),
    },
    ...problemResponses([
      ...GUARD_CODES,
      'OB_ERR_MALFORMED_JSON',
      'OB_ERR_INVALID_REQUEST',
      'OB_ERR_INVALID_ROWS',
      'OB_ERR_MODEL_NOT_FOUND',
      'OB_ERR_VERSION_NOT_FOUND',
      'OB_ERR_PAYLOAD_TOO_LARGE',
      'OB_ERR_TOO_MANY_ROWS',
      'OB_ERR_UNSUPPORTED_MEDIA_TYPE',
      'OB_ERR_TOO_MANY_ACTIVE_JOBS',
      'OB_ERR_TIMEOUT',
    ]),
  };
  const predictDescription = `Runs up to ${config.SYNC_MAX_ROWS} rows through the same queue as batches (ahead of them: priority 10) and answers when they are done; 504 with the job id if that takes too long.`;
  return {
    '/v1/models': {
      get: { tags, operationId: 'listModels', summary: 'Every model and version served, described from its manifest.', responses: { '200': { description: 'The models.', ...json(ref('ModelList')) }, ...problemResponses(GUARD_CODES) } },
    },
    '/v1/models/{name}': {
      get: {
        tags,
        operationId: 'getModel',
        summary: 'One model and its versions.',
        parameters: [name],
        responses: { '200': { description: 'The model.', ...json(ref('Model')) }, ...problemResponses([...GUARD_CODES, 'OB_ERR_MODEL_NOT_FOUND']) },
      },
    },
    '/v1/models/{name}/versions/{version}': {
      get: {
        tags,
        operationId: 'getModelVersion',
        summary: 'One model version: features, labels, the JSON Schema of its rows.',
        parameters: [name, version],
        responses: { '200': { description: 'The version.', ...json(ref('ModelVersion')) }, ...problemResponses([...GUARD_CODES, 'OB_ERR_MODEL_NOT_FOUND', 'OB_ERR_VERSION_NOT_FOUND']) },
      },
    },
    '/v1/models/{name}/predict': {
      post: { tags, operationId: 'predict', summary: 'Synchronous predict with the model’s default version.', description: predictDescription, parameters: [name], requestBody: predictBody, responses: predictResponses },
    },
    '/v1/models/{name}/versions/{version}/predict': {
      post: { tags, operationId: 'predictVersion', summary: 'Synchronous predict with one version.', description: predictDescription, parameters: [name, version], requestBody: predictBody, responses: predictResponses },
    },
  };
}

function scheduleSchemas(): Record<string, Schema> {
  const spec = copy(SCHEDULE_BODY_SCHEMA);
  const timestamp = { type: 'string', format: 'date-time' };
  const nullableTimestamp = { type: ['string', 'null'], format: 'date-time' };
  const properties = spec.properties as Record<string, Schema>;
  return {
    ScheduleRequest: { ...spec, description: 'A schedule to create (POST) or replace (PUT): docs/schedules.md.' },
    Schedule: {
      type: 'object',
      required: ['name', 'cron', 'timezone', 'model', 'version', 'input', 'output', 'createdAt', 'updatedAt', 'nextRunAt'],
      properties: {
        ...properties,
        version: { type: ['string', 'null'], description: 'Pinned version; null: the model\u2019s default at each run.' },
        createdAt: timestamp,
        updatedAt: timestamp,
        nextRunAt: nullableTimestamp,
      },
    },
    ScheduleRun: {
      type: 'object',
      required: ['schedule', 'runId', 'tick', 'startedAt', 'finishedAt', 'status', 'summary', 'files'],
      properties: {
        schedule: { type: 'string' },
        runId: { type: 'string' },
        tick: timestamp,
        startedAt: timestamp,
        finishedAt: nullableTimestamp,
        status: { enum: ['running', 'completed', 'failed'] },
        summary: { type: ['string', 'null'] },
        files: {
          type: 'array',
          items: {
            type: 'object',
            required: ['input', 'output', 'jobId', 'rows', 'failedRows', 'status'],
            properties: {
              input: { type: 'string' },
              output: { type: ['string', 'null'] },
              jobId: { type: ['string', 'null'] },
              rows: { type: 'integer', minimum: 0 },
              failedRows: { type: 'integer', minimum: 0 },
              status: { enum: [...JOB_STATUSES, 'rejected'] },
              error: { type: 'string' },
            },
          },
        },
        error: { type: 'string' },
      },
    },
  };
}

function schedulePaths(): Record<string, PathItem> {
  const tags = ['schedules'];
  const name = { name: 'name', in: 'path', required: true, schema: (copy(SCHEDULE_BODY_SCHEMA).properties as Record<string, Schema>).name };
  const disabled: ErrorCode[] = [...GUARD_CODES, 'OB_ERR_SCHEDULE_NOT_FOUND'];
  const writeCodes: ErrorCode[] = [
    ...disabled,
    'OB_ERR_MALFORMED_JSON',
    'OB_ERR_INVALID_REQUEST',
    'OB_ERR_MODEL_NOT_FOUND',
    'OB_ERR_VERSION_NOT_FOUND',
    'OB_ERR_PAYLOAD_TOO_LARGE',
    'OB_ERR_UNSUPPORTED_MEDIA_TYPE',
  ];
  const body = { required: true, ...json(ref('ScheduleRequest')) };
  const location = { Location: { description: 'The schedule\u2019s URL.', schema: { type: 'string' } } };
  const note = ' Every schedule route answers 404 when SCHEDULES_ROOT is not set.';
  return {
    '/v1/schedules': {
      post: {
        tags,
        operationId: 'createSchedule',
        summary: 'Create a schedule: at each cron tick, the matching input files are submitted as jobs and their results written to the output directory.',
        description: `See docs/schedules.md.${note}`,
        requestBody: body,
        responses: { '201': { description: 'Created.', headers: location, ...json(ref('Schedule')) }, ...problemResponses([...writeCodes, 'OB_ERR_SCHEDULE_EXISTS']) },
      },
      get: {
        tags,
        operationId: 'listSchedules',
        summary: 'The caller\u2019s schedules.',
        description: note.trim(),
        responses: {
          '200': { description: 'The schedules.', ...json({ type: 'object', required: ['schedules'], properties: { schedules: { type: 'array', items: ref('Schedule') } } }) },
          ...problemResponses(disabled),
        },
      },
    },
    '/v1/schedules/{name}': {
      get: { tags, operationId: 'getSchedule', summary: 'One schedule.', parameters: [name], responses: { '200': { description: 'The schedule.', ...json(ref('Schedule')) }, ...problemResponses(disabled) } },
      put: {
        tags,
        operationId: 'replaceSchedule',
        summary: 'Replace a schedule (its name in the body, if any, must be the one in the path).',
        parameters: [name],
        requestBody: body,
        responses: { '200': { description: 'The schedule as now stored.', headers: location, ...json(ref('Schedule')) }, ...problemResponses(writeCodes) },
      },
      delete: { tags, operationId: 'deleteSchedule', summary: 'Delete a schedule (runs already started finish).', parameters: [name], responses: { '204': { description: 'Deleted.' }, ...problemResponses(disabled) } },
    },
    '/v1/schedules/{name}/runs': {
      get: {
        tags,
        operationId: 'listScheduleRuns',
        summary: 'The schedule\u2019s recent runs, newest first, each with its files, jobs and outcome.',
        parameters: [name],
        responses: {
          '200': { description: 'The runs.', ...json({ type: 'object', required: ['runs'], properties: { runs: { type: 'array', items: ref('ScheduleRun') } } }) },
          ...problemResponses(disabled),
        },
      },
    },
  };
}

function operationsPaths(): Record<string, PathItem> {
  const tags = ['operations'];
  const open = { security: [] };
  const html = { content: { 'text/html': { schema: { type: 'string' } } } };
  return {
    '/livez': {
      get: { ...open, tags, operationId: 'livez', summary: 'Liveness: the process answers.', responses: { '200': { description: 'Alive.', ...json({ type: 'object', properties: { status: { const: 'ok' } } }) } } },
    },
    '/readyz': {
      get: {
        ...open,
        tags,
        operationId: 'readyz',
        summary: 'Readiness: Redis answers, models are loaded, and the process is not shutting down.',
        responses: {
          '200': {
            description: 'Ready.',
            ...json({
              type: 'object',
              required: ['status', 'checks'],
              properties: { status: { const: 'ready' }, checks: { type: 'object', additionalProperties: { type: 'boolean' } }, modelProblems: { type: 'array' } },
            }),
          },
          ...problemResponses(['OB_ERR_NOT_READY']),
        },
      },
    },
    '/metrics': {
      get: {
        ...open,
        tags,
        operationId: 'metrics',
        summary: 'Prometheus metrics of this API process (docs/operations.md lists them).',
        responses: { '200': { description: 'Prometheus text exposition format.', content: { 'text/plain': { schema: { type: 'string' } } } } },
      },
    },
    '/openapi.json': {
      get: { ...open, tags, operationId: 'openapi', summary: 'This document (rebuilt when the model repository changes).', responses: { '200': { description: 'OpenAPI 3.1.', ...json({ type: 'object' }) } } },
    },
    '/docs': {
      get: { ...open, tags, operationId: 'docs', summary: 'Swagger UI over this document.', responses: { '200': { description: 'The UI.', ...html }, '301': { description: 'To `/docs/`.' } } },
    },
    '/admin/queues': {
      get: {
        tags,
        operationId: 'adminQueues',
        summary: 'Bull Board: the BullMQ queues, their jobs, retries and failures. Needs the `admin` role.',
        responses: { '200': { description: 'The UI.', ...html }, ...problemResponses(['OB_ERR_UNAUTHORIZED', 'OB_ERR_FORBIDDEN']) },
      },
    },
  };
}

/** Builds the document for the models the repository serves now. */
export function buildOpenApiDocument(entries: readonly ModelEntry[], config: OpenApiConfig): OpenApiDocument {
  const versions = entries.flatMap((e) => e.versions);
  return {
    openapi: '3.1.0',
    jsonSchemaDialect: 'https://spec.openapis.org/oas/3.1/dialect/base',
    info: {
      title: 'onnx-batch',
      version: API_VERSION,
      summary: 'Queue-backed batch inference for ONNX models.',
      description:
        'Submit a batch of rows, get a job id at once, poll (or long-poll with `wait`) for its status and download the results. ' +
        'Every error is `application/problem+json` (RFC 9457); a method a path does not serve is answered `405` with `Allow` (and `OPTIONS` with `204` and `Allow`), before authentication. ' +
        'Request bodies may be gzip-compressed (`Content-Encoding: gzip`): size limits count the bytes after decompression, and any other coding is refused with `415`. ' +
        `Models served now: ${entries.map((e) => `${e.name} (${e.versions.map((v) => v.manifest.version).join(', ')})`).join('; ')}.`,
      license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
    },
    servers: [{ url: '/' }],
    tags: [
      { name: 'batches', description: 'Submit, poll, download, cancel, delete.' },
      { name: 'models', description: 'The model repository and synchronous predict.' },
      { name: 'schedules', description: 'Built-in schedules over files (docs/schedules.md).' },
      { name: 'rollouts', description: 'Default, canary and shadow versions of a model, their report, promote and roll back (docs/models-in-production.md).' },
      { name: 'operations', description: 'Health, metrics, documentation and the queue board.' },
    ],
    security: [{ bearerAuth: [] }, { apiKey: [] }, {}],
    paths: {
      ...batchPaths('/v1', entries, config),
      ...modelPaths(entries, config),
      ...schedulePaths(),
      ...rolloutPaths((codes) => problemResponses(codes as ErrorCode[]), GUARD_CODES, { name: 'name', in: 'path', required: true, schema: { type: 'string', enum: entries.map((e) => e.name) } }),
      ...driftPaths((codes) => problemResponses(codes as ErrorCode[]), GUARD_CODES, { name: 'name', in: 'path', required: true, schema: { type: 'string', enum: entries.map((e) => e.name) } }),
      ...batchPaths('', entries, config),
      ...operationsPaths(),
    },
    components: {
      securitySchemes: {
        bearerAuth: {
          type: 'http',
          scheme: 'bearer',
          description: `An API key (API_KEYS). Roles: ${ROLES.join(', ')}; reading needs \`read\`, anything else \`submit\`. No key is needed when none is configured (loopback only).`,
        },
        apiKey: { type: 'apiKey', in: 'header', name: 'X-API-Key', description: 'The same key, in a header of its own.' },
      },
      schemas: {
        ...problemSchemas(),
        ...modelSchemas(versions),
        ...jobSchemas(entries, config),
        ...scheduleSchemas(),
        ...rolloutSchemas(),
        ...driftSchemas(),
      },
    },
  };
}

/**
 * The document for the repository as it is now: rebuilt whenever a model version is added,
 * removed or changed (the repository rescans itself), otherwise served from memory.
 */
export class OpenApiProvider {
  private signature = '';
  private cached: OpenApiDocument | null = null;
  private serialised = '';

  constructor(
    private readonly repository: Pick<ModelRepository, 'list'>,
    private readonly config: OpenApiConfig,
  ) {}

  document(): OpenApiDocument {
    this.refresh();
    return this.cached as OpenApiDocument;
  }

  /** The document as JSON text (serialised once per change). */
  json(): string {
    this.refresh();
    return this.serialised;
  }

  private refresh(): void {
    const entries = this.repository.list();
    const signature = entries.map((e) => `${e.name}@${e.defaultVersion}:${e.versions.map((v) => v.fingerprint).join(',')}`).join(';');
    if (this.cached && signature === this.signature) return;
    this.cached = buildOpenApiDocument(entries, this.config);
    this.serialised = JSON.stringify(this.cached);
    this.signature = signature;
  }
}
