import { Router, type Request, type Response } from 'express';
import Ajv2020 from 'ajv/dist/2020';
import type { ModelManifest } from '@onnx-batch/contracts';
import {
  resultNames,
  ChunkEncoder,
  ROW_ID_SCHEMA,
  decodeChunk,
  newJobId,
  renderResultLines,
  rowDigests,
  rowSchema,
  type PredictionCache,
  type Config,
  type JobEvents,
  type JobStore,
  type JobSubmitter,
  type ModelEntry,
  type ModelRepository,
  type ModelRouter,
  type ModelSelection,
  type ModelVersion,
} from '@onnx-batch/shared';
import { jsonBody } from '../http/body';
import { checkSyncRows, runSynchronously } from '../sync-run';
import { checkEnvelope } from '../http/envelope';
import { renderJob } from '../job-view';
import {
  componentName,
  copy,
  exampleRow,
  exampleVersion,
  GUARD_CODES,
  SUBMIT_GUARD_CODES,
  json,
  modelNameParameter,
  problemResponses,
  ref,
  type Paths,
  type Schema,
} from '../openapi-parts';

export interface ModelRouteDeps {
  config: Config;
  repository: ModelRepository;
  store: JobStore;
  submitter: JobSubmitter;
  events: JobEvents;
  router: ModelRouter;
  /** The prediction cache (null: none configured): a request whose every row it holds is answered from it. */
  cache?: PredictionCache | null;
  /** Told of every synchronous predict of a cached model: hit (an answer) or miss (null). */
  onCacheLookup?: (manifest: ModelManifest, answer: string | null) => void;
}

/**
 * The answer of a synchronous predict whose every row the cache holds, or null (then a job runs):
 * the rows are validated and encoded as a submit would, looked up by their digests in one MGET,
 * and rendered like a finished job's results. No job is made: `jobId` is null, `cached` true.
 */
async function answerFromCache(cache: PredictionCache, selection: ModelSelection, rows: unknown[]): Promise<string | null> {
  const routed = selection.choose(newJobId());
  const { manifest, validator } = routed.model;
  if (!cache.enabledFor(manifest.name) || rows.length === 0 || manifest.result.kind === 'tensor' || manifest.result.kind === 'embedding')
    return null;
  const encoder = new ChunkEncoder(manifest, rows.length);
  for (const row of rows) if (validator.check(row) ?? encoder.add(row)) return null; // the submit path reports it
  const chunk = decodeChunk(encoder.finish());
  const hits = await cache.get(manifest.name, manifest.version, rowDigests(manifest, chunk));
  if (hits.some((hit) => hit === null)) return null;
  const names = resultNames(manifest.result);
  const values = new Float32Array(rows.length * names.length);
  hits.forEach((hit, row) => values.set((hit as Float32Array).subarray(0, names.length), row * names.length));
  const results = renderResultLines({
    rows: rows.length,
    kind: manifest.result.kind,
    names,
    values,
    ids: chunk.ids,
    errors: new Map(),
    lines: null,
  });
  const now = new Date().toISOString();
  const document = {
    jobId: null,
    status: 'completed',
    model: { name: manifest.name, version: manifest.version, route: routed.arm },
    progress: { done: rows.length, total: rows.length, failed: 0 },
    createdAt: now,
    startedAt: now,
    finishedAt: now,
    resultsUrl: null,
    error: null,
    cached: true,
  };
  return `${JSON.stringify(document).slice(0, -1)},"results":[${results.join(',')}]}`;
}

/** What the API says about one model version: all of it read from the manifest. */
export function describeVersion(version: ModelVersion): Record<string, unknown> {
  const m = version.manifest;
  return {
    name: m.name,
    version: m.version,
    task: m.task,
    description: m.description ?? null,
    labels: m.result.labels ?? null,
    dimensions: m.result.dimensions ?? null,
    accuracy: m.metrics?.accuracy ?? null,
    evaluation: m.metrics?.evaluation ?? null,
    reference: m.metrics?.reference ?? null,
    createdAt: version.createdAt,
    driftBaseline: version.baseline !== null,
    features: m.features,
    inputSchema: rowSchema(m),
    chunkSize: m.chunkSize ?? null,
  };
}

/** `defaultVersion`: the version serving jobs that name none (the rollout's, or the repository's). */
export function describeModel(entry: ModelEntry, defaultVersion: string = entry.defaultVersion): Record<string, unknown> {
  return {
    name: entry.name,
    defaultVersion,
    versions: entry.versions.map(describeVersion),
  };
}

export const PREDICT_BODY_SCHEMA = {
  type: 'object',
  required: ['inputs'],
  additionalProperties: false,
  properties: {
    inputs: { type: 'array', minItems: 1, description: 'Rows, as for /v1/batch-predict; at most SYNC_MAX_ROWS.' },
    priority: {
      type: 'integer',
      minimum: 1,
      maximum: 1000,
      default: 10,
      description: 'Defaults to 10: interactive work goes ahead of bulk batches.',
    },
  },
} as const;

export const validatePredict = new Ajv2020({ strict: false, useDefaults: true }).compile(PREDICT_BODY_SCHEMA);

/** The model repository, read-only, and the synchronous predict facade over the same queue. */
export function modelRoutes(deps: ModelRouteDeps): Router {
  const router = Router();
  const { config, repository, store } = deps;

  router.get('/models', async (_req, res) => {
    const models = await Promise.all(
      repository.list().map(async (entry) => describeModel(entry, await deps.router.defaultVersion(entry.name))),
    );
    res.json({ models, problems: repository.problems });
  });

  router.get('/models/:name', async (req, res) => {
    const entry = repository.entry(String(req.params.name));
    res.json(describeModel(entry, await deps.router.defaultVersion(entry.name)));
  });

  router.get('/models/:name/versions/:version', (req, res) => {
    res.json(describeVersion(repository.resolve(String(req.params.name), String(req.params.version))));
  });

  const predict = async (req: Request, res: Response): Promise<void> => {
    const model = await deps.router.select(
      String(req.params.name),
      req.params.version === undefined ? undefined : String(req.params.version),
    );
    const body = checkEnvelope<{ inputs: unknown[]; priority: number }>(validatePredict, req.body);
    checkSyncRows(config, body.inputs.length);
    const cached = deps.cache ? await answerFromCache(deps.cache, model, body.inputs) : null;
    deps.onCacheLookup?.(model.parsing.manifest, cached);
    if (cached) {
      res.type('application/json').send(cached);
      return;
    }
    const finished = await runSynchronously(deps, res, { model, rows: body.inputs, tenant: req.caller.tenant, priority: body.priority });
    res.type('application/json').send(await renderJob(finished, store, '/v1', { INLINE_RESULTS_LIMIT: Number.MAX_SAFE_INTEGER }));
  };
  router.post('/models/:name/predict', jsonBody(config.MAX_BODY_BYTES), predict);
  router.post('/models/:name/versions/:version/predict', jsonBody(config.MAX_BODY_BYTES), predict);
  return router;
}

// ---------------------------------------------------------------------------------------------
// OpenAPI: the fragment of these routes (api/src/openapi.ts merges it).

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
            values: {
              type: 'object',
              required: spec.names,
              properties: Object.fromEntries(spec.names.map((n) => [n, { type: ['number', 'string'] }])),
            },
          },
        };
      }
      return { type: 'object', required: ['value'], properties: { ...id, value: { type: ['number', 'string'] } } };
    case 'embedding': {
      const size = spec.dimensions ?? 0;
      return {
        type: 'object',
        required: ['embedding'],
        properties: {
          ...id,
          embedding: {
            type: 'array',
            description: `The L2-normalised embedding of the row, ${size} floats (6 significant digits).`,
            minItems: size,
            maxItems: size,
            items: { type: ['number', 'string'] },
          },
        },
      };
    }
    case 'tensor': {
      const names = spec.outputs ?? manifest.outputs.map((o) => o.name);
      return {
        type: 'object',
        required: ['outputs'],
        properties: {
          ...id,
          outputs: { type: 'object', required: names, properties: Object.fromEntries(names.map((n) => [n, { type: 'array' }])) },
        },
      };
    }
  }
}

/**
 * The models and their versions, each version's row and result (from its manifest), the result
 * line of any version (`ResultRow`, which the batch routes' answers refer to), and the predict
 * body and cached answer.
 */
export function modelSchemas(versions: readonly ModelVersion[], config: Pick<Config, 'SYNC_MAX_ROWS'>): Record<string, Schema> {
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
        task: { enum: ['classification', 'regression', 'tensor', 'embedding'] },
        description: { type: ['string', 'null'] },
        labels: { type: ['array', 'null'], items: { type: 'string' } },
        dimensions: { type: ['integer', 'null'], description: "An embedding model's vector length (null for other tasks)." },
        accuracy: { type: ['number', 'null'] },
        evaluation: { type: ['string', 'null'] },
        reference: {
          type: ['object', 'null'],
          description:
            'The version\u2019s scores on its evaluation set (manifest `metrics.reference`: accuracy, F1, log loss, calibration for ' +
            'a classifier; R², MAE, RMSE for a regression model), null when it has none.',
        },
        createdAt: { type: 'string', format: 'date-time', description: 'When model.onnx was written into the repository (its mtime).' },
        driftBaseline: {
          type: 'boolean',
          description: 'Whether the version has a drift reference (baseline.json): its drift can be read.',
        },
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
          items: {
            type: 'object',
            required: ['file', 'message'],
            properties: { file: { type: 'string' }, field: { type: 'string' }, message: { type: 'string' } },
          },
        },
      },
    },
    RowError: {
      type: 'object',
      description: 'The result line of a row that could not be run.',
      required: ['error'],
      properties: {
        id: ROW_ID_SCHEMA,
        error: { type: 'object', required: ['code', 'message'], properties: { code: { type: 'string' }, message: { type: 'string' } } },
      },
    },
  };
  for (const version of versions) {
    schemas[componentName(version, 'Row')] = {
      description:
        `A row for ${version.manifest.name} v${version.manifest.version}: an object keyed by feature name (optionally ` +
        `with an \`id\`), or an array of the feature values in manifest order.`,
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
  schemas.PredictRequest = {
    ...copy(PREDICT_BODY_SCHEMA),
    description:
      `Rows of the model in the path (at most ${config.SYNC_MAX_ROWS}); each is validated against that model ` + `version's row schema.`,
  };
  schemas.CachedPrediction = {
    type: 'object',
    description: 'A synchronous predict answered from the prediction cache: the shape of a finished job, without a job.',
    required: ['jobId', 'status', 'model', 'progress', 'results', 'cached'],
    properties: {
      jobId: { type: 'null' },
      status: { const: 'completed' },
      model: {
        type: 'object',
        properties: { name: { type: 'string' }, version: { type: 'string' }, route: { enum: ['pinned', 'default', 'canary'] } },
      },
      progress: { type: 'object', properties: { done: { type: 'integer' }, total: { type: 'integer' }, failed: { const: 0 } } },
      resultsUrl: { type: 'null' },
      cached: { const: true },
      results: { type: 'array', items: ref('ResultRow') },
    },
  };
  return schemas;
}

export function modelPaths(entries: readonly ModelEntry[], config: Pick<Config, 'SYNC_MAX_ROWS'>): Paths {
  const tags = ['models'];
  const name = modelNameParameter(entries);
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
            const v = exampleVersion(e);
            return [e.name, { summary: e.name, value: { inputs: v ? [exampleRow(v.manifest)] : [] } }];
          }),
        ),
      },
    },
  };
  const predictResponses = {
    '200': {
      description:
        'The finished job with its results inline; or, when the model has a prediction cache (PREDICTION_CACHE_MODELS) holding ' +
        'every row, the cached results without a job (`jobId` null, `cached` true).',
      ...json({ oneOf: [ref('JobStatus'), ref('CachedPrediction')] }),
    },
    ...problemResponses([
      ...SUBMIT_GUARD_CODES,
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
  const predictDescription =
    `Runs up to ${config.SYNC_MAX_ROWS} rows through the same queue as batches (ahead of them: priority ` +
    `10) and answers when they are done; 504 with the job id if that takes too long.`;
  return {
    '/v1/models': {
      get: {
        tags,
        operationId: 'listModels',
        summary: 'Every model and version served, described from its manifest.',
        responses: { '200': { description: 'The models.', ...json(ref('ModelList')) }, ...problemResponses(GUARD_CODES) },
      },
    },
    '/v1/models/{name}': {
      get: {
        tags,
        operationId: 'getModel',
        summary: 'One model and its versions.',
        parameters: [name],
        responses: {
          '200': { description: 'The model.', ...json(ref('Model')) },
          ...problemResponses([...GUARD_CODES, 'OB_ERR_MODEL_NOT_FOUND']),
        },
      },
    },
    '/v1/models/{name}/versions/{version}': {
      get: {
        tags,
        operationId: 'getModelVersion',
        summary: 'One model version: features, labels, the JSON Schema of its rows.',
        parameters: [name, version],
        responses: {
          '200': { description: 'The version.', ...json(ref('ModelVersion')) },
          ...problemResponses([...GUARD_CODES, 'OB_ERR_MODEL_NOT_FOUND', 'OB_ERR_VERSION_NOT_FOUND']),
        },
      },
    },
    '/v1/models/{name}/predict': {
      post: {
        tags,
        operationId: 'predict',
        summary: 'Synchronous predict with the model’s default version.',
        description: predictDescription,
        parameters: [name],
        requestBody: predictBody,
        responses: predictResponses,
      },
    },
    '/v1/models/{name}/versions/{version}/predict': {
      post: {
        tags,
        operationId: 'predictVersion',
        summary: 'Synchronous predict with one version.',
        description: predictDescription,
        parameters: [name, version],
        requestBody: predictBody,
        responses: predictResponses,
      },
    },
  };
}
