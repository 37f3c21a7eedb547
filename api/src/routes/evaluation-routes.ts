import { Router, type Request, type RequestHandler, type Response } from 'express';
import Ajv2020 from 'ajv/dist/2020';
import { ProblemError, type EvaluationList, type FeatureSpec } from '@onnx-batch/contracts';
import {
  csvRows,
  MAX_EVALUATIONS_PER_VERSION,
  ndjsonRows,
  truthField,
  type Config,
  type EvaluationService,
  type LabelledRows,
  type ModelEntry,
  type ModelRepository,
} from '@onnx-batch/shared';
import { requireRole } from '../http/auth';
import { jsonBody, streamedBody } from '../http/body';
import { checkEnvelope } from '../http/envelope';
import {
  GUARD_CODES,
  json,
  modelNameParameter,
  problemResponses,
  ref,
  SUBMIT_GUARD_CODES,
  type Paths,
  type Schema,
} from '../openapi-parts';

export interface EvaluationRouteDeps {
  config: Pick<Config, 'MAX_BODY_BYTES' | 'MAX_STREAM_BYTES' | 'MAX_ROW_BYTES'>;
  repository: ModelRepository;
  evaluations: EvaluationService;
}

const STREAM_TYPES = ['application/x-ndjson', 'application/jsonl', 'text/csv'];

const validateListQuery = new Ajv2020({ strict: false, coerceTypes: true, useDefaults: true }).compile({
  type: 'object',
  additionalProperties: false,
  properties: { limit: { type: 'integer', minimum: 1, maximum: MAX_EVALUATIONS_PER_VERSION, default: 20 } },
});

/**
 * Evaluations of a model version against the serving default (docs/models-in-production.md#quality-gate):
 * start one over the version's own evaluation set (an empty body) or an uploaded labelled set
 * (admin), read them (read). The work runs as two ordinary jobs; the report is made when both
 * have finished, by the first read after that.
 */
export function evaluationRoutes(deps: EvaluationRouteDeps): Router {
  const router = Router();
  const { config, repository, evaluations } = deps;
  const admin = requireRole('admin');
  const parseJson = jsonBody(config.MAX_BODY_BYTES);
  // NDJSON and CSV stream; no body at all is the repository's set; anything else must be JSON (MAX_BODY_BYTES).
  const body: RequestHandler = (req, res, next) => (req.is(STREAM_TYPES) || bodyless(req) ? next() : parseJson(req, res, next));

  const base = '/models/:name/versions/:version/evaluations';

  router.post(base, admin, body, async (req: Request, res: Response) => {
    const name = String(req.params.name);
    const version = String(req.params.version);
    const candidate = repository.resolve(name, version);
    const kind = candidate.manifest.result.kind === 'regression' ? 'regression' : 'classification';
    let set: ReturnType<EvaluationService['repositorySet']>;
    if (req.is(STREAM_TYPES)) {
      const stream = streamedBody(req, config.MAX_STREAM_BYTES).stream;
      let rows: LabelledRows;
      if (req.is('text/csv')) {
        // The header names the features (and optionally `id`) and the truth column, `label` or `value`.
        const truth: FeatureSpec = { name: truthField(kind), type: kind === 'regression' ? 'number' : 'string' };
        const source = csvRows(stream, { ...candidate.manifest, features: [...candidate.manifest.features, truth] }, config.MAX_ROW_BYTES);
        rows = { rows: source.rows, location: source.currentLine };
      } else {
        const source = ndjsonRows(stream, config.MAX_ROW_BYTES);
        rows = { rows: source.rows, location: source.currentLine };
      }
      set = { rows, source: { kind: 'upload', contentType: String(req.get('content-type')).split(';')[0]?.trim() ?? '' } };
    } else if (bodyless(req) || isEmptyObject(req.body)) {
      set = evaluations.repositorySet(name, version);
    } else {
      const list: unknown = Array.isArray(req.body) ? req.body : (req.body as { rows?: unknown } | null)?.rows;
      if (!Array.isArray(list) || Object.keys(req.body as object).some((k) => !Array.isArray(req.body) && k !== 'rows'))
        throw new ProblemError(
          'OB_ERR_INVALID_REQUEST',
          'a JSON body is {} (the version\u2019s own evaluation set), an array of labelled rows, or {"rows": [...]}',
          { errors: [{ field: 'rows', message: 'must be an array of labelled rows' }] },
        );
      set = { rows: { rows: list as unknown[], location: 'row' }, source: { kind: 'upload', contentType: 'application/json' } };
    }
    const evaluation = await evaluations.start({
      model: name,
      version,
      rows: set.rows,
      source: set.source,
      actor: { tenant: req.caller.tenant, keyId: req.caller.keyId },
    });
    res.status(202).location(`/v1/models/${evaluation.model}/versions/${evaluation.version}/evaluations/${evaluation.id}`).json(evaluation);
  });

  router.get(base, async (req: Request, res: Response) => {
    const version = repository.resolve(String(req.params.name), String(req.params.version)).manifest;
    const { limit } = checkEnvelope<{ limit: number }>(validateListQuery, { ...(req.query as Record<string, unknown>) });
    const answer: EvaluationList = {
      model: version.name,
      version: version.version,
      evaluations: await evaluations.list(version.name, version.version, limit),
    };
    res.json(answer);
  });

  router.get(`${base}/:id`, async (req: Request, res: Response) => {
    const version = repository.resolve(String(req.params.name), String(req.params.version)).manifest;
    res.json(await evaluations.get(version.name, version.version, String(req.params.id)));
  });

  return router;
}

/** A request without a body (none declared, or an empty one). */
function bodyless(req: Request): boolean {
  return req.is('*/*') === null || (req.get('content-length') === '0' && req.get('transfer-encoding') === undefined);
}

function isEmptyObject(value: unknown): boolean {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && Object.keys(value).length === 0;
}

// ---------------------------------------------------------------------------------------------
// OpenAPI: the fragment of these routes (api/src/openapi.ts merges it).

export function evaluationSchemas(): Record<string, Schema> {
  const nullableNumber = { type: ['number', 'null'] };
  const progress = {
    type: 'object',
    properties: { done: { type: 'integer', minimum: 0 }, total: { type: 'integer', minimum: 0 } },
  };
  return {
    MetricComparison: {
      type: 'object',
      required: ['metric', 'better', 'candidate', 'baseline', 'difference', 'ci'],
      properties: {
        metric: { enum: ['accuracy', 'macroF1', 'logLoss', 'rmse', 'mae'] },
        better: { enum: ['higher', 'lower'] },
        candidate: nullableNumber,
        baseline: nullableNumber,
        difference: { ...nullableNumber, description: 'candidate − baseline.' },
        ci: {
          type: ['object', 'null'],
          description: 'Paired bootstrap percentile interval of the difference.',
          properties: { low: { type: 'number' }, high: { type: 'number' } },
        },
      },
    },
    EvaluationReport: {
      type: 'object',
      required: ['kind', 'rows', 'comparedRows', 'failedRows', 'primary', 'metrics', 'bootstrap', 'rule', 'verdict', 'reason'],
      properties: {
        kind: { enum: ['classification', 'regression'] },
        rows: { type: 'integer' },
        comparedRows: { type: 'integer', description: 'Rows predicted on both versions: every metric is over these.' },
        failedRows: { type: 'object', properties: { candidate: { type: 'integer' }, baseline: { type: 'integer' } } },
        primary: { enum: ['accuracy', 'rmse'] },
        metrics: { type: 'array', items: ref('MetricComparison'), description: 'The primary metric first.' },
        bootstrap: {
          type: 'object',
          properties: {
            resamples: { type: 'integer' },
            confidence: { type: 'number' },
            seed: { type: 'integer', description: 'From the evaluation id: the same evaluation always reports the same interval.' },
            method: { const: 'paired-percentile' },
          },
        },
        rule: { type: 'object', properties: { allowedRegression: { type: 'number' }, minRows: { type: 'integer' } } },
        verdict: {
          enum: ['pass', 'fail', 'insufficient-data'],
          description:
            '`fail`: the primary metric is worse than the baseline\u2019s by more than the allowed regression (absolute for ' +
            'accuracy, relative for RMSE) and its interval excludes no change; `insufficient-data`: fewer than GATE_MIN_ROWS rows.',
        },
        reason: { type: 'string' },
      },
    },
    Evaluation: {
      type: 'object',
      required: ['id', 'model', 'version', 'baseline', 'source', 'rows', 'jobs', 'createdAt', 'finishedAt', 'status', 'report', 'error'],
      properties: {
        id: { type: 'string', format: 'uuid' },
        model: { type: 'string' },
        version: { type: 'string', description: 'The candidate version.' },
        baseline: { type: 'string', description: 'The version serving jobs that name none when the evaluation started.' },
        source: {
          type: 'object',
          required: ['kind'],
          properties: {
            kind: { enum: ['repository', 'upload'] },
            file: { type: 'string' },
            description: { type: ['string', 'null'] },
            contentType: { type: 'string' },
          },
        },
        rows: { type: 'integer' },
        jobs: {
          type: 'object',
          description: 'The two jobs, pinned to their versions (ordinary jobs of the tenant that started the evaluation).',
          properties: { candidate: { type: 'string', format: 'uuid' }, baseline: { type: 'string', format: 'uuid' } },
        },
        createdAt: { type: 'string', format: 'date-time' },
        finishedAt: { type: ['string', 'null'], format: 'date-time' },
        createdBy: { type: 'object', properties: { tenant: { type: 'string' }, keyId: { type: 'string' } } },
        status: { enum: ['running', 'completed', 'failed'] },
        progress: { type: ['object', 'null'], properties: { candidate: progress, baseline: progress } },
        report: { anyOf: [ref('EvaluationReport'), { type: 'null' }] },
        error: { type: ['string', 'null'] },
        fingerprints: { type: 'object', properties: { candidate: { type: 'string' }, baseline: { type: 'string' } } },
      },
    },
    EvaluationList: {
      type: 'object',
      required: ['model', 'version', 'evaluations'],
      properties: {
        model: { type: 'string' },
        version: { type: 'string' },
        evaluations: { type: 'array', items: ref('Evaluation'), description: 'Newest first.' },
      },
    },
  };
}

export function evaluationPaths(entries: readonly ModelEntry[]): Paths {
  const tags = ['rollouts'];
  const parameters = [
    modelNameParameter(entries),
    { name: 'version', in: 'path', required: true, schema: { type: 'string', pattern: '^[0-9]{1,9}$' } },
  ];
  const row = {
    type: 'string',
    description:
      'One labelled row a line: the row as a client submits it (its features, optionally `id`) plus `label` (a classifier: one ' +
      'of its labels) or `value` (regression: a number). CSV: a header of the features, optionally `id`, and `label` or `value`.',
  };
  return {
    '/v1/models/{name}/versions/{version}/evaluations': {
      post: {
        tags,
        operationId: 'startEvaluation',
        summary: 'Evaluate the version against the serving default over a labelled set (admin).',
        description:
          'No body (or `{}`): the version\u2019s own evaluation set (the file its manifest names). Otherwise an upload of labelled ' +
          'rows, streamed (NDJSON, CSV) or JSON (an array, or `{"rows": [...]}`), at most EVALUATION_MAX_ROWS: every bad row is ' +
          'named and nothing starts. The rows run as two ordinary jobs pinned to the version and to the default; the report ' +
          'comes with the first read after both have finished.',
        parameters,
        requestBody: {
          required: false,
          content: {
            'application/json': {
              schema: {
                anyOf: [
                  { type: 'object', additionalProperties: false, description: 'The repository\u2019s evaluation set.' },
                  { type: 'array', items: { type: 'object' } },
                  { type: 'object', required: ['rows'], properties: { rows: { type: 'array', items: { type: 'object' } } } },
                ],
              },
            },
            'application/x-ndjson': { schema: row },
            'application/jsonl': { schema: row },
            'text/csv': { schema: row },
          },
        },
        responses: {
          '202': {
            description: 'Started: its two jobs are queued.',
            headers: { Location: { description: 'The evaluation\u2019s URL.', schema: { type: 'string' } } },
            ...json(ref('Evaluation')),
          },
          ...problemResponses([
            ...SUBMIT_GUARD_CODES,
            'OB_ERR_MALFORMED_JSON',
            'OB_ERR_INVALID_REQUEST',
            'OB_ERR_INVALID_ROWS',
            'OB_ERR_MODEL_NOT_FOUND',
            'OB_ERR_VERSION_NOT_FOUND',
            'OB_ERR_EVALUATION_NOT_FOUND',
            'OB_ERR_PAYLOAD_TOO_LARGE',
            'OB_ERR_TOO_MANY_ROWS',
            'OB_ERR_UNSUPPORTED_MEDIA_TYPE',
            'OB_ERR_TOO_MANY_ACTIVE_JOBS',
          ]),
        },
      },
      get: {
        tags,
        operationId: 'listEvaluations',
        summary: 'The version\u2019s evaluations, newest first.',
        parameters: [
          ...parameters,
          { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: MAX_EVALUATIONS_PER_VERSION, default: 20 } },
        ],
        responses: {
          '200': { description: 'The evaluations.', ...json(ref('EvaluationList')) },
          ...problemResponses([...GUARD_CODES, 'OB_ERR_MODEL_NOT_FOUND', 'OB_ERR_VERSION_NOT_FOUND', 'OB_ERR_INVALID_REQUEST']),
        },
      },
    },
    '/v1/models/{name}/versions/{version}/evaluations/{id}': {
      get: {
        tags,
        operationId: 'getEvaluation',
        summary: 'An evaluation: its jobs\u2019 progress, then its report and verdict.',
        parameters: [...parameters, { name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
        responses: {
          '200': { description: 'The evaluation.', ...json(ref('Evaluation')) },
          ...problemResponses([...GUARD_CODES, 'OB_ERR_MODEL_NOT_FOUND', 'OB_ERR_VERSION_NOT_FOUND', 'OB_ERR_EVALUATION_NOT_FOUND']),
        },
      },
    },
  };
}
