import { Router, type Request, type RequestHandler, type Response } from 'express';
import Ajv2020 from 'ajv/dist/2020';
import type { RedisClient } from '@onnx-batch/shared';
import {
  MAX_ROLLOUT_REASON,
  ProblemError,
  ROLLOUT_SPEC_SCHEMA,
  type ErrorCode,
  type ModelManifest,
  type QualityGateOutcome,
  type Rollout,
  type RolloutHistory,
  type RolloutSpec,
  type RolloutState,
} from '@onnx-batch/contracts';
import {
  nextRollout,
  readRolloutReport,
  RolloutError,
  RolloutPreconditionError,
  servingDefault,
  type Config,
  type EvaluationService,
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
  /** The quality gate a canary must pass (evaluations of its version against the default). */
  evaluations: Pick<EvaluationService, 'gate'>;
}

/** Most audit entries one history page shows. */
export const MAX_HISTORY = 1000;

const validateSpec = new Ajv2020({ strict: false, allErrors: false }).compile(ROLLOUT_SPEC_SCHEMA);
/** The optional body of a promote or rollback: why, for the audit trail. */
const CHANGE_REASON_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: { reason: { type: 'string', minLength: 1, maxLength: MAX_ROLLOUT_REASON, description: 'Why, recorded in the audit trail.' } },
} as const;
const validateChangeReason = new Ajv2020({ strict: false }).compile(CHANGE_REASON_SCHEMA);

/** A request that carries no body at all (no length, or 0, and not chunked): a promote or rollback without a reason. */
function hasNoBody(req: Request): boolean {
  return req.get('transfer-encoding') === undefined && (req.get('content-length') ?? '0') === '0';
}

const validateHistoryQuery = new Ajv2020({ strict: false, coerceTypes: true, useDefaults: true }).compile({
  type: 'object',
  additionalProperties: false,
  properties: { limit: { type: 'integer', minimum: 1, maximum: MAX_HISTORY, default: 100 } },
});

/**
 * A model's rollout (docs/models-in-production.md): read it with its canary and shadow report,
 * replace it, promote the canary, roll back, and read who changed it when. Changes need the
 * `admin` role; every replica sees a change at once (Redis + pub/sub). Every answer carries the
 * rollout's ETag (its revision); a change sent with `If-Match` is refused with 412 when the
 * rollout has changed since (compared atomically with the write). Starting a canary passes the
 * quality gate first (docs/models-in-production.md#quality-gate), unless forced with a reason.
 */
export function rolloutRoutes(deps: RolloutRouteDeps): Router {
  const router = Router();
  const { repository, rollouts } = deps;
  const admin = requireRole('admin');

  const entryOf = (req: Request): ModelEntry => repository.entry(String(req.params.name));

  const document = async (entry: ModelEntry, rollout: Rollout): Promise<RolloutState> => {
    const serving = servingDefault(entry, rollout);
    return {
      model: entry.name,
      servingDefault: serving,
      rollout,
      report: await readRolloutReport(deps.redis, deps.keys, rollout),
      gate: rollout.canary ? await deps.evaluations.gate(entry, rollout.canary.version, serving) : null,
    };
  };

  const answer = async (res: Response, entry: ModelEntry, rollout: Rollout): Promise<void> => {
    res.set('ETag', rolloutETag(rollout.revision)).json(await document(entry, rollout));
  };

  const change = async (req: Request, res: Response, action: 'promote' | 'rollback'): Promise<void> => {
    const { reason } = checkEnvelope<{ reason?: string }>(validateChangeReason, req.body ?? {});
    const entry = entryOf(req);
    const actor = { tenant: req.caller.tenant, keyId: req.caller.keyId };
    const next = await rollouts.update(
      entry.name,
      action,
      actor,
      reason?.trim() ? reason.trim() : null,
      (current) => {
        const proposed = nextRollout(current, action, servingDefault(entry, current));
        checkVersions(entry, proposed);
        return proposed;
      },
      { ifMatch: ifMatchOf(req) },
    );
    await answer(res, entry, next);
  };

  router.get('/models/:name/rollout', async (req: Request, res: Response) => {
    const entry = entryOf(req);
    await answer(res, entry, await rollouts.get(entry.name));
  });

  router.put('/models/:name/rollout', admin, jsonBody(deps.config.MAX_BODY_BYTES), async (req: Request, res: Response) => {
    const { force, reason, ...spec } = checkEnvelope<RolloutSpec>(validateSpec, req.body);
    const why = reason?.trim() ? reason.trim() : null;
    if (force && !why)
      throw new ProblemError('OB_ERR_INVALID_REQUEST', "field 'reason' is required with force: say why the quality gate is overridden", {
        errors: [{ field: 'reason', message: 'is required with force' }],
      });
    const ifMatch = ifMatchOf(req);
    const entry = entryOf(req);
    const actor = { tenant: req.caller.tenant, keyId: req.caller.keyId };
    const current = await rollouts.fresh(entry.name);
    // A stale tag is refused before the gate is asked (the write compares again, atomically).
    if (ifMatch && !ifMatch.includes(current.revision)) throw new RolloutPreconditionError(current.revision);
    const proposed = nextRollout(current, 'put', servingDefault(entry, current), spec);
    checkVersions(entry, proposed);
    const gated = canaryStart(entry, current, proposed);
    let gate: QualityGateOutcome | null = null;
    if (gated) {
      gate = await deps.evaluations.gate(entry, gated.version, gated.baseline);
      if (!gate.passes && !force) {
        throw new ProblemError(
          'OB_ERR_QUALITY_GATE',
          `version ${gated.version} does not pass the quality gate against the default ${gated.baseline}: ${gate.detail}. ` +
            'Start the canary once a passing evaluation has finished, or send "force": true with a "reason"',
          { gate },
        );
      }
      if (!gate.passes) gate = { ...gate, forced: true };
    }
    const next = await rollouts.update(
      entry.name,
      'put',
      actor,
      why,
      (latest) => {
        const again = nextRollout(latest, 'put', servingDefault(entry, latest), spec);
        checkVersions(entry, again);
        const start = canaryStart(entry, latest, again);
        // The gate judged one canary against one default: a rollout changed meanwhile into another start is judged afresh.
        if ((start === null) !== (gated === null) || (start && (start.version !== gated?.version || start.baseline !== gated.baseline)))
          throw new RolloutError('the rollout changed while its quality gate was checked; send the change again');
        return again;
      },
      { ifMatch, gate },
    );
    await answer(res, entry, next);
  });

  // The reason is optional: a bare POST (the CLI's, a script's) promotes as before.
  const parseBody = jsonBody(deps.config.MAX_BODY_BYTES);
  const reasonBody: RequestHandler = (req, res, next) => (hasNoBody(req) ? next() : parseBody(req, res, next));

  router.post('/models/:name/rollout/promote', admin, reasonBody, async (req: Request, res: Response) => {
    await change(req, res, 'promote');
  });

  router.post('/models/:name/rollout/rollback', admin, reasonBody, async (req: Request, res: Response) => {
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

/** The ETag of a rollout: its revision, quoted (strong): `"7"`. */
export function rolloutETag(revision: number): string {
  return `"${revision}"`;
}

/**
 * The revisions an `If-Match` header accepts, or null when it accepts any (absent, or `*`).
 * Weak tags and tags that are no revision of ours match nothing (strong comparison, RFC 9110
 * §13.1.1); a header that is not a list of entity tags is a bad request.
 */
export function ifMatchOf(req: Request): number[] | null {
  const header = req.get('if-match');
  if (header === undefined || header.trim() === '*') return null;
  const tags = header.split(',').map((t) => t.trim());
  if (tags.some((t) => !/^(W\/)?"[\x21\x23-\x7e]*"$/.test(t)))
    throw new ProblemError('OB_ERR_INVALID_REQUEST', 'header \'If-Match\' must be * or a list of entity tags, e.g. "7"', {
      errors: [{ field: 'If-Match', message: 'must be * or a list of entity tags' }],
    });
  return tags.flatMap((t) => (/^"[0-9]{1,15}"$/.test(t) ? [Number(t.slice(1, -1))] : []));
}

/**
 * The canary a change starts, judged by the quality gate: a canary in the new rollout whose
 * version, or whose default, differs from the current rollout's (changing only its percent
 * starts nothing); null when it starts none.
 */
function canaryStart(entry: ModelEntry, current: Rollout, next: Rollout): { version: string; baseline: string } | null {
  if (!next.canary) return null;
  const baseline = servingDefault(entry, next);
  if (current.canary?.version === next.canary.version && servingDefault(entry, current) === baseline) return null;
  return { version: next.canary.version, baseline };
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
    QualityGateOutcome: {
      type: 'object',
      required: ['version', 'baseline', 'state', 'passes', 'evaluationId', 'primary', 'detail'],
      properties: {
        version: { type: 'string', description: 'The canary version judged.' },
        baseline: { type: 'string', description: 'The default it was judged against.' },
        state: {
          enum: ['not-gated', 'passed', 'failed', 'insufficient-data', 'missing', 'running', 'errored'],
          description: '`not-gated`: the version has no evaluation set (none in its manifest, none uploaded).',
        },
        passes: { type: 'boolean', description: '`not-gated` or `passed`: a canary may start without `force`.' },
        evaluationId: { type: ['string', 'null'], description: 'The latest evaluation of the version against this default.' },
        primary: { anyOf: [ref('MetricComparison'), { type: 'null' }] },
        forced: { type: 'boolean', description: 'In the audit trail: an admin started the canary with `force` past this outcome.' },
        detail: { type: 'string' },
      },
    },
    RolloutState: {
      type: 'object',
      required: ['model', 'servingDefault', 'rollout', 'report', 'gate'],
      properties: {
        model: { type: 'string' },
        servingDefault: { type: 'string' },
        rollout: ref('Rollout'),
        report: ref('RolloutReport'),
        gate: {
          anyOf: [ref('QualityGateOutcome'), { type: 'null' }],
          description: 'The quality gate\u2019s view of the canary against the serving default; null without a canary.',
        },
      },
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
            required: ['id', 'at', 'action', 'actor', 'from', 'to', 'reason', 'gate'],
            properties: {
              id: { type: 'string' },
              at: { type: 'string' },
              action: { enum: ['put', 'promote', 'rollback', 'auto-rollback'] },
              actor: { type: 'object', properties: { tenant: { type: 'string' }, keyId: { type: 'string' } } },
              from: ref('Rollout'),
              to: ref('Rollout'),
              reason: { type: ['string', 'null'] },
              gate: {
                anyOf: [ref('QualityGateOutcome'), { type: 'null' }],
                description: 'The quality gate\u2019s outcome when the change started a canary (`forced` when overridden).',
              },
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
  const etag = { ETag: { description: 'The rollout\u2019s entity tag: its revision, quoted (`"7"`).', schema: { type: 'string' } } };
  const state = {
    '200': {
      description: 'The rollout, the version serving jobs that name none, the canary/shadow report and the canary\u2019s gate.',
      headers: etag,
      ...json(ref('RolloutState')),
    },
  };
  const ifMatch = {
    name: 'If-Match',
    in: 'header',
    required: false,
    description:
      'The ETag of the rollout as read: the change is made only if nobody changed the rollout since (412 otherwise, compared ' +
      'atomically with the write). `*` or no header: change it whatever its revision.',
    schema: { type: 'string' },
  };
  const reasonBody = {
    requestBody: { required: false, description: 'Optional: why, recorded in the audit history.', ...json(copy(CHANGE_REASON_SCHEMA)) },
  };
  const change = (operationId: string, summary: string, extra: Schema = {}, codes: ErrorCode[] = []): Schema => ({
    tags,
    operationId,
    summary,
    parameters: [name, ifMatch],
    ...extra,
    responses: {
      ...state,
      ...problemResponses([
        ...WRITE_GUARD_CODES,
        'OB_ERR_MODEL_NOT_FOUND',
        'OB_ERR_INVALID_REQUEST',
        'OB_ERR_ROLLOUT_CONFLICT',
        'OB_ERR_PRECONDITION_FAILED',
        ...codes,
      ]),
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
      put: change(
        'putRollout',
        'Set the rollout (admin): default, canary share, shadow share, auto-rollback rule.',
        {
          description:
            'Starting a canary (a new canary version, or a new default beside it) passes the quality gate first: a version with an ' +
            'evaluation set needs a passing, finished evaluation against the default (the latest one), else 409 ' +
            '`OB_ERR_QUALITY_GATE` naming the metric and figures, unless `force` with a `reason`. A version without an evaluation ' +
            'set is not gated (the answer\u2019s `gate` says so).',
          requestBody: { required: true, ...json(ref('RolloutSpec')) },
        },
        ['OB_ERR_MALFORMED_JSON', 'OB_ERR_QUALITY_GATE'],
      ),
    },
    '/v1/models/{name}/rollout/promote': {
      post: change('promoteRollout', 'Make the canary the default (admin).', reasonBody, ['OB_ERR_MALFORMED_JSON']),
    },
    '/v1/models/{name}/rollout/rollback': {
      post: change('rollbackRollout', 'Return to the previous default, clearing canary and shadow (admin).', reasonBody, [
        'OB_ERR_MALFORMED_JSON',
      ]),
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
