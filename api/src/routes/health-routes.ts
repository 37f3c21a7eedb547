import { Router } from 'express';
import type { RedisClient } from '@onnx-batch/shared';
import { makeProblem, PROBLEM_CONTENT_TYPE, type ModelRepository } from '@onnx-batch/shared';

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
    const failing = Object.entries(checks).filter(([, ok]) => !ok).map(([name]) => name);
    const problem = makeProblem('OB_ERR_NOT_READY', `not ready: ${failing.join(', ')}`, { checks });
    res.status(503).type(PROBLEM_CONTENT_TYPE).send(JSON.stringify(problem));
  });
  return router;
}
