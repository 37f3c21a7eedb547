import { Router } from 'express';
import type { RedisClient } from '@onnx-batch/shared';
import { makeProblem, PROBLEM_CONTENT_TYPE } from '@onnx-batch/contracts';
import { type ModelRepository } from '@onnx-batch/shared';
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

/** Liveness (the process answers) and readiness (Redis answers and models are loaded). */
export function healthRoutes(redis: RedisClient, repository: ModelRepository, isShuttingDown: () => boolean): Router {
  const router = Router();
  router.get('/livez', (_req, res) => {
    res.json({ status: 'ok' });
  });
  router.get('/readyz', async (_req, res) => {
    const checks = {
      redis: await redisAnswers(redis),
      models: repository.list().length > 0,
      accepting: !isShuttingDown(),
    };
    if (checks.redis && checks.models && checks.accepting) {
      res.json({ status: 'ready', checks, modelProblems: repository.problems });
      return;
    }
    const failing = Object.entries(checks)
      .filter(([, ok]) => !ok)
      .map(([name]) => name);
    const problem = makeProblem('OB_ERR_NOT_READY', `not ready: ${failing.join(', ')}`, { checks });
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
        summary: 'Readiness: Redis answers, models are loaded, and the process is not shutting down.',
        responses: {
          '200': {
            description: 'Ready.',
            ...json({
              type: 'object',
              required: ['status', 'checks'],
              properties: {
                status: { const: 'ready' },
                checks: { type: 'object', additionalProperties: { type: 'boolean' } },
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
