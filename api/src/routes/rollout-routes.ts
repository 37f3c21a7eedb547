import { Router, type Request, type Response } from 'express';
import Ajv2020 from 'ajv/dist/2020';
import type { RedisClient } from '@onnx-batch/shared';
import {
  ROLLOUT_SPEC_SCHEMA,
  type ModelManifest,
  type Rollout,
  type RolloutAction,
  type RolloutHistory,
  type RolloutSpec,
  type RolloutState,
} from '@onnx-batch/contracts';
import {
  nextRollout,
  readRolloutReport,
  RolloutError,
  servingDefault,
  type Config,
  type ModelEntry,
  type ModelRepository,
  type RedisKeys,
  type RolloutStore,
} from '@onnx-batch/shared';
import { requireRole } from '../http/auth';
import { jsonBody } from '../http/body';
import { checkEnvelope } from '../http/envelope';
import {
  copy,
  GUARD_CODES,
  WRITE_GUARD_CODES,
  json,
  modelNameParameter,
  problemResponses,
  ref,
  type Paths,
  type Schema,
} from '../openapi-parts';

export interface RolloutRouteDeps {
  config: Pick<Config, 'MAX_BODY_BYTES'>;
  repository: ModelRepository;
  rollouts: RolloutStore;
  redis: RedisClient;
  keys: RedisKeys;
}

/** Most audit entries one history page shows. */
export const MAX_HISTORY = 1000;

const validateSpec = new Ajv2020({ strict: false, allErrors: false }).compile(ROLLOUT_SPEC_SCHEMA);
const validateHistoryQuery = new Ajv2020({ strict: false, coerceTypes: true, useDefaults: true }).compile({
  type: 'object',
  additionalProperties: false,
  properties: { limit: { type: 'integer', minimum: 1, maximum: MAX_HISTORY, default: 100 } },
});

/**
 * A model's rollout (docs/models-in-production.md): read it with its canary and shadow report,
 * replace it, promote the canary, roll back, and read who changed it when. Changes need the
 * `admin` role; every replica sees a change at once (Redis + pub/sub).
 */
export function rolloutRoutes(deps: RolloutRouteDeps): Router {
  const router = Router();
  const { repository, rollouts } = deps;
  const admin = requireRole('admin');

  const entryOf = (req: Request): ModelEntry => repository.entry(String(req.params.name));

  const document = async (entry: ModelEntry, rollout: Rollout): Promise<RolloutState> => ({
    model: entry.name,
    servingDefault: servingDefault(entry, rollout),
    rollout,
    report: await readRolloutReport(deps.redis, deps.keys, rollout),
  });

  const change = async (req: Request, res: Response, action: RolloutAction, spec?: RolloutSpec): Promise<void> => {
    const entry = entryOf(req);
    const actor = { tenant: req.caller.tenant, keyId: req.caller.keyId };
    const next = await rollouts.update(entry.name, action, actor, null, (current) => {
      const serving = servingDefault(entry, current);
      const proposed = nextRollout(current, action, serving, spec);
      checkVersions(entry, proposed);
      return proposed;
    });
    res.json(await document(entry, next));
  };

  router.get('/models/:name/rollout', async (req: Request, res: Response) => {
    const entry = entryOf(req);
    res.json(await document(entry, await rollouts.get(entry.name)));
  });

  router.put('/models/:name/rollout', admin, jsonBody(deps.config.MAX_BODY_BYTES), async (req: Request, res: Response) => {
    await change(req, res, 'put', checkEnvelope<RolloutSpec>(validateSpec, req.body));
  });

  router.post('/models/:name/rollout/promote', admin, async (req: Request, res: Response) => {
    await change(req, res, 'promote');
  });

  router.post('/models/:name/rollout/rollback', admin, async (req: Request, res: Response) => {
    await change(req, res, 'rollback');
  });

  router.get('/models/:name/rollout/history', async (req: Request, res: Response) => {
    const entry = entryOf(req);
    const { limit } = checkEnvelope<{ limit: number }>(validateHistoryQuery, { ...(req.query as Record<string, unknown>) });
    const history: RolloutHistory = { model: entry.name, entries: await rollouts.history(entry.name, limit) };
    res.json(history);
  });

  return router;
}

/**
 * A rollout may only name versions the repository serves, a canary or shadow must differ from
 * the default, and they must take the same rows as the default (same features): jobs are read
 * and validated before their version is chosen, and a shadow runs the default's rows.
 */
function checkVersions(entry: ModelEntry, rollout: Rollout): void {
  const find = (version: string, field: string): ModelManifest => {
    const found = entry.versions.find((v) => v.manifest.version === version);
    if (!found)
      throw new RolloutError(
        `model '${entry.name}' has no version '${version}' (versions: ${entry.versions.map((v) => v.manifest.version).join(', ')})`,
        field,
      );
    return found.manifest;
  };
  const defaultVersion = servingDefault(entry, rollout);
  const base = find(rollout.default ?? defaultVersion, 'default');
  for (const [field, share] of [
    ['canary', rollout.canary],
    ['shadow', rollout.shadow],
  ] as const) {
    if (!share) continue;
    const manifest = find(share.version, `${field}.version`);
    if (share.version === defaultVersion)
      throw new RolloutError(`the ${field} must be another version than the default (${defaultVersion})`, `${field}.version`);
    if (featureSignature(manifest) !== featureSignature(base)) {
      throw new RolloutError(
        `version ${share.version} takes other features than the default ${defaultVersion}: a ${field} must take the same rows`,
        `${field}.version`,
      );
    }
  }
}

function featureSignature(manifest: ModelManifest): string {
  return JSON.stringify(manifest.features.map((f) => [f.name, f.type, f.shape ?? null]));
}

// ---------------------------------------------------------------------------------------------
// OpenAPI: the fragment of these routes (api/src/openapi.ts merges it).

export function rolloutSchemas(): Record<string, Schema> {
  const share = {
    type: ['object', 'null'],
    required: ['version', 'percent'],
    properties: { version: { type: 'string' }, percent: { type: 'number' } },
  };
  const sides = (value: Schema): Schema => ({ type: 'object', properties: { default: value, shadow: value } });
  const arms = (value: Schema): Schema => ({ type: 'object', properties: { default: value, canary: value } });
  const nullableNumber = { type: ['number', 'null'] };
  return {
    RolloutSpec: { ...copy(ROLLOUT_SPEC_SCHEMA), description: 'A rollout to set (PUT): fields left out are cleared.' },
    Rollout: {
      type: 'object',
      required: ['model', 'default', 'canary', 'shadow', 'autoRollback', 'previousDefault', 'revision', 'updatedAt'],
      properties: {
        model: { type: 'string' },
        default: { type: ['string', 'null'] },
        canary: share,
        shadow: share,
        autoRollback: { type: ['object', 'null'] },
        previousDefault: { type: ['string', 'null'], description: 'What a rollback returns to.' },
        revision: { type: 'integer' },
        updatedAt: { type: 'string' },
      },
    },
    RolloutReport: {
      type: 'object',
      properties: {
        revision: { type: 'integer' },
        since: { type: 'string' },
        shadow: {
          type: ['object', 'null'],
          properties: {
            version: { type: 'string' },
            rowsCompared: { type: 'integer' },
            agreement: nullableNumber,
            meanAbsDifference: nullableNumber,
            failedRows: sides({ type: 'integer' }),
            p50MsPerRow: sides(nullableNumber),
          },
        },
        canary: {
          type: ['object', 'null'],
          properties: {
            version: { type: 'string' },
            percent: { type: 'number' },
            jobs: arms({ type: 'integer' }),
            rows: arms({ type: 'integer' }),
            failedRowRate: arms(nullableNumber),
            p50MsPerRow: arms(nullableNumber),
            p50JobMs: arms(nullableNumber),
          },
        },
      },
    },
    RolloutState: {
      type: 'object',
      required: ['model', 'servingDefault', 'rollout', 'report'],
      properties: { model: { type: 'string' }, servingDefault: { type: 'string' }, rollout: ref('Rollout'), report: ref('RolloutReport') },
    },
    RolloutHistory: {
      type: 'object',
      required: ['model', 'entries'],
      properties: {
        model: { type: 'string' },
        entries: {
          type: 'array',
          items: {
            type: 'object',
            required: ['id', 'at', 'action', 'actor', 'from', 'to', 'reason'],
            properties: {
              id: { type: 'string' },
              at: { type: 'string' },
              action: { enum: ['put', 'promote', 'rollback', 'auto-rollback'] },
              actor: { type: 'object', properties: { tenant: { type: 'string' }, keyId: { type: 'string' } } },
              from: ref('Rollout'),
              to: ref('Rollout'),
              reason: { type: ['string', 'null'] },
            },
          },
        },
      },
    },
  };
}

export function rolloutPaths(entries: readonly ModelEntry[]): Paths {
  const tags = ['rollouts'];
  const name = modelNameParameter(entries);
  const state = {
    '200': {
      description: 'The rollout, the version serving jobs that name none, and the canary/shadow report.',
      ...json(ref('RolloutState')),
    },
  };
  const change = (operationId: string, summary: string, extra: Schema = {}): Schema => ({
    tags,
    operationId,
    summary,
    parameters: [name],
    ...extra,
    responses: {
      ...state,
      ...problemResponses([...WRITE_GUARD_CODES, 'OB_ERR_MODEL_NOT_FOUND', 'OB_ERR_INVALID_REQUEST', 'OB_ERR_ROLLOUT_CONFLICT']),
    },
  });
  return {
    '/v1/models/{name}/rollout': {
      get: {
        tags,
        operationId: 'getRollout',
        summary: 'The model\u2019s rollout with its canary and shadow report.',
        parameters: [name],
        responses: { ...state, ...problemResponses([...GUARD_CODES, 'OB_ERR_MODEL_NOT_FOUND']) },
      },
      put: change('putRollout', 'Set the rollout (admin): default, canary share, shadow share, auto-rollback rule.', {
        requestBody: { required: true, ...json(ref('RolloutSpec')) },
      }),
    },
    '/v1/models/{name}/rollout/promote': { post: change('promoteRollout', 'Make the canary the default (admin).') },
    '/v1/models/{name}/rollout/rollback': {
      post: change('rollbackRollout', 'Return to the previous default, clearing canary and shadow (admin).'),
    },
    '/v1/models/{name}/rollout/history': {
      get: {
        tags,
        operationId: 'getRolloutHistory',
        summary: 'Every change of the rollout, newest first: who, when, from, to, why.',
        parameters: [name, { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: MAX_HISTORY, default: 100 } }],
        responses: {
          '200': { description: 'The audit trail.', ...json(ref('RolloutHistory')) },
          ...problemResponses([...GUARD_CODES, 'OB_ERR_MODEL_NOT_FOUND', 'OB_ERR_INVALID_REQUEST']),
        },
      },
    },
  };
}
