import { Router, type Request, type Response } from 'express';
import Ajv2020 from 'ajv/dist/2020';
import { ProblemError } from '@onnx-batch/contracts';
import {
  DRIFT_WINDOWS,
  readDriftReport,
  type Config,
  type DriftSettings,
  type DriftWindow,
  type ModelEntry,
  type ModelRepository,
  type RedisClient,
  type RedisKeys,
} from '@onnx-batch/shared';
import { checkEnvelope } from '../http/envelope';
import { GUARD_CODES, json, modelNameParameter, problemResponses, ref, type Paths, type Schema } from '../openapi-parts';

export type DriftConfig = Pick<Config, 'DRIFT_WARN_PSI' | 'DRIFT_ALERT_PSI' | 'DRIFT_MIN_ROWS'>;

export interface DriftRouteDeps {
  config: DriftConfig;
  repository: ModelRepository;
  redis: RedisClient;
  keys: RedisKeys;
}

/** Thresholds and minimum of drift verdicts, from configuration. */
export function driftSettings(config: DriftConfig): DriftSettings {
  return { thresholds: { warn: config.DRIFT_WARN_PSI, drift: config.DRIFT_ALERT_PSI }, minRows: config.DRIFT_MIN_ROWS };
}

const WINDOWS = Object.keys(DRIFT_WINDOWS) as DriftWindow[];
const DEFAULT_WINDOW: DriftWindow = '1h';

const validateQuery = new Ajv2020({ strict: false, useDefaults: true }).compile({
  type: 'object',
  additionalProperties: false,
  properties: { window: { enum: WINDOWS, default: DEFAULT_WINDOW } },
});

/**
 * Drift of a model version's production rows against its baseline (docs/drift.md): PSI per
 * statistic and of the predictions over a window, from the counts workers keep in Redis.
 */
export function driftRoutes(deps: DriftRouteDeps): Router {
  const router = Router();
  const settings = driftSettings(deps.config);

  router.get('/models/:name/versions/:version/drift', async (req: Request, res: Response) => {
    const version = deps.repository.resolve(String(req.params.name), String(req.params.version));
    const { window } = checkEnvelope<{ window: DriftWindow }>(validateQuery, { ...(req.query as Record<string, unknown>) });
    const { name, version: number } = version.manifest;
    if (!version.baseline) {
      throw new ProblemError(
        'OB_ERR_BASELINE_NOT_FOUND',
        `model '${name}' version '${number}' has no baseline.json: there is nothing to measure drift against (see docs/model-manifest.md)`,
      );
    }
    res.json(await readDriftReport(deps.redis, deps.keys, name, number, version.baseline, window, settings));
  });

  return router;
}

// ---------------------------------------------------------------------------------------------
// OpenAPI: the fragment of this route (api/src/openapi.ts merges it).

const STATUSES = ['ok', 'warn', 'drift', 'insufficient-data'];

export function driftSchemas(): Record<string, Schema> {
  const nullableNumber = { type: ['number', 'null'] };
  return {
    DriftBin: {
      type: 'object',
      description:
        'One bin of the baseline: its bounds (`from` ≤ value < `to`, null for an open end) or its label, the share of reference ' +
        'rows in it and the share of the window\u2019s rows (null when none).',
      required: ['reference', 'current'],
      properties: {
        from: nullableNumber,
        to: nullableNumber,
        label: { type: 'string' },
        reference: { type: 'number' },
        current: nullableNumber,
      },
    },
    DriftStatistic: {
      type: 'object',
      required: ['psi', 'status', 'rows', 'bins'],
      properties: {
        psi: { ...nullableNumber, description: 'Population stability index against the baseline; null with `insufficient-data`.' },
        status: { enum: STATUSES },
        rows: { type: 'integer', description: 'Rows counted in these bins.' },
        bins: { type: 'array', items: ref('DriftBin') },
      },
    },
    DriftReport: {
      type: 'object',
      required: ['model', 'version', 'window', 'from', 'to', 'rows', 'status', 'minRows', 'thresholds', 'features', 'prediction'],
      properties: {
        model: { type: 'string' },
        version: { type: 'string' },
        window: { enum: WINDOWS },
        from: { type: 'string', format: 'date-time', description: 'Start of the oldest minute of the window.' },
        to: { type: 'string', format: 'date-time' },
        rows: { type: 'integer', description: 'Rows counted in the window (all of them, or the DRIFT_SAMPLE_RATE sample).' },
        status: {
          enum: STATUSES,
          description: 'The worst status of the features and the prediction; `insufficient-data` below `minRows`.',
        },
        minRows: { type: 'integer' },
        thresholds: { type: 'object', properties: { warn: { type: 'number' }, drift: { type: 'number' } } },
        features: {
          type: 'object',
          description:
            'By statistic: a number feature by its name, a string feature as `<feature>.length` (and `<feature>.oov`), a tensor ' +
            'as `<feature>.mean` and `<feature>.std`.',
          additionalProperties: ref('DriftStatistic'),
        },
        prediction: {
          oneOf: [ref('DriftStatistic'), { type: 'null' }],
          description: 'Predicted labels (or values); null for models returning raw tensors.',
        },
      },
    },
  };
}

/** The OpenAPI paths of this route (openapi.ts merges them). */
export function driftPaths(entries: readonly ModelEntry[]): Paths {
  return {
    '/v1/models/{name}/versions/{version}/drift': {
      get: {
        tags: ['models'],
        operationId: 'getDrift',
        summary: 'Drift of a model version\u2019s production rows against its baseline: PSI per feature statistic and of the predictions.',
        parameters: [
          modelNameParameter(entries),
          { name: 'version', in: 'path', required: true, schema: { type: 'string' } },
          {
            name: 'window',
            in: 'query',
            schema: { enum: WINDOWS, default: DEFAULT_WINDOW },
            description: 'The last 15 minutes, hour or 24 hours.',
          },
        ],
        responses: {
          '200': { description: 'The drift report.', ...json(ref('DriftReport')) },
          ...problemResponses([
            ...GUARD_CODES,
            'OB_ERR_MODEL_NOT_FOUND',
            'OB_ERR_VERSION_NOT_FOUND',
            'OB_ERR_BASELINE_NOT_FOUND',
            'OB_ERR_INVALID_REQUEST',
          ]),
        },
      },
    },
  };
}
