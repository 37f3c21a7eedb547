import { Router } from 'express';
import { makeProblem, PROBLEM_CONTENT_TYPE } from '@onnx-batch/contracts';
import { memoryRatio, type ModelRepository, type RedisClient, type StorageGuard } from '@onnx-batch/shared';
import { json, problemResponses, type Paths } from '../openapi-parts';

const PING_TIMEOUT_MS = 1000;

async function redisAnswers(redis: RedisClient): Promise<boolean> {
  if (redis.status !== 'ready') return false;
  let timer: NodeJS.Timeout | undefined;
  try {
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('timeout')), PING_TIMEOUT_MS);
    });
    return (await Promise.race([redis.ping(), timeout])) === 'PONG';
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}

/** Reads every Redis server's policy and memory again; false when they did not all answer in time. */
async function storageChecked(storage: StorageGuard): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  try {
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('timeout')), PING_TIMEOUT_MS);
    });
    await Promise.race([storage.refresh(), timeout]);
    return true;
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}

/** What readiness tells of Redis memory: the verdicts, the figures of each server, and why new jobs are refused. */
function storageReport(storage: StorageGuard): Record<string, unknown> {
  const { nodes, memoryRatio: ratio } = storage.state;
  return {
    memoryRatio: Number(ratio.toFixed(4)),
    highWatermark: storage.settings.highWatermark,
    acceptingJobs: storage.refusal() === null,
    evictionAllowed: storage.settings.allowEvicting,
    refusal: storage.refusal()?.message ?? null,
    nodes: nodes.map((n) => ({
      node: n.node,
      policy: n.policy,
      policySource: n.policySource,
      usedBytes: n.usedBytes,
      maxBytes: n.maxBytes,
      memoryRatio: Number(memoryRatio(n).toFixed(4)),
    })),
  };
}

export interface Readiness {
  ready: boolean;
  checks: Record<string, boolean>;
  report: Record<string, unknown>;
  /** Why not ready (`not ready: redis, …`); empty when ready. */
  reason: string;
}

/** The readiness checks of `/readyz` (and of the Open Inference Protocol's `/v2/health/ready`). */
export async function readiness(
  redis: RedisClient,
  repository: ModelRepository,
  storage: StorageGuard,
  isShuttingDown: () => boolean,
): Promise<Readiness> {
  const [answers, checked] = await Promise.all([redisAnswers(redis), storageChecked(storage)]);
  const checks = {
    redis: answers && checked,
    redisEviction: checked && storage.policyAccepted,
    models: repository.list().length > 0,
    accepting: !isShuttingDown(),
    storage: checked && storage.belowWatermark,
  };
  const report = storageReport(storage);
  const ready = checks.redis && checks.redisEviction && checks.models && checks.accepting;
  const failing = Object.entries(checks)
    .filter(([name, ok]) => !ok && name !== 'storage')
    .map(([name]) => name);
  const why = checks.redis && !checks.redisEviction ? `: ${String(report.refusal)}` : '';
  return { ready, checks, report, reason: ready ? '' : `not ready: ${failing.join(', ')}${why}` };
}

/**
 * Liveness (the process answers) and readiness: Redis answers and evicts no key (its
 * maxmemory-policy is noeviction, or ALLOW_EVICTING_REDIS), models are loaded, the process is not
 * shutting down. Redis above REDIS_MEMORY_HIGH_WATERMARK keeps the API ready (polls and downloads
 * go on) and says so in `checks.storage`: only new jobs are refused.
 */
export function healthRoutes(
  redis: RedisClient,
  repository: ModelRepository,
  storage: StorageGuard,
  isShuttingDown: () => boolean,
): Router {
  const router = Router();
  router.get('/livez', (_req, res) => {
    res.json({ status: 'ok' });
  });
  router.get('/readyz', async (_req, res) => {
    const { ready, checks, report, reason } = await readiness(redis, repository, storage, isShuttingDown);
    if (ready) {
      res.json({ status: 'ready', checks, storage: report, modelProblems: repository.problems });
      return;
    }
    const problem = makeProblem('OB_ERR_NOT_READY', reason, { checks, storage: report });
    res.status(503).type(PROBLEM_CONTENT_TYPE).send(JSON.stringify(problem));
  });
  return router;
}

/** OpenAPI: the fragment of these routes (api/src/openapi.ts merges it). Open: no key needed. */
export function healthPaths(): Paths {
  const tags = ['operations'];
  const open = { security: [] };
  return {
    '/livez': {
      get: {
        ...open,
        tags,
        operationId: 'livez',
        summary: 'Liveness: the process answers.',
        responses: { '200': { description: 'Alive.', ...json({ type: 'object', properties: { status: { const: 'ok' } } }) } },
      },
    },
    '/readyz': {
      get: {
        ...open,
        tags,
        operationId: 'readyz',
        summary:
          'Readiness: Redis answers and cannot evict keys (maxmemory-policy noeviction), models are loaded, and the process is ' +
          'not shutting down. Redis above REDIS_MEMORY_HIGH_WATERMARK keeps it ready (checks.storage false: only new jobs are refused).',
        responses: {
          '200': {
            description: 'Ready.',
            ...json({
              type: 'object',
              required: ['status', 'checks'],
              properties: {
                status: { const: 'ready' },
                checks: { type: 'object', additionalProperties: { type: 'boolean' } },
                storage: {
                  type: 'object',
                  description:
                    'Redis memory: the fullest server\u2019s share of maxmemory, the watermark, each server\u2019s policy and figures.',
                },
                modelProblems: { type: 'array' },
              },
            }),
          },
          ...problemResponses(['OB_ERR_NOT_READY']),
        },
      },
    },
  };
}
