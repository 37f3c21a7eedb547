import { Router, type Request, type Response } from 'express';
import type { Queue } from 'bullmq';
import { ProblemError } from '@onnx-batch/contracts';
import type { Logger } from '@onnx-batch/shared';
import { ROLES, type KeyRing } from '../http/auth';
import { queueWorkerCount } from '../metrics';
import { GUARD_CODES, json, problemResponses, ref, type Paths, type Schema } from '../openapi-parts';

export interface ConsoleRouteDeps {
  keys: KeyRing;
  /** Every BullMQ queue the API knows (each shard of the chunk queues): what `GET /v1/workers` counts. */
  queues: readonly Queue[];
  logger: Logger;
}

/** `GET /v1/me`'s answer: who the presented key is. */
export interface MeAnswer {
  tenant: string;
  roles: string[];
  /** The key's non-secret id (first 12 hex of its SHA-256), `open` while no key is configured. */
  keyId: string;
  auth: 'keys' | 'off';
}

/** `GET /v1/workers`' answer: worker connections per queue name, and their sum. */
export interface WorkersAnswer {
  connected: number;
  queues: { name: string; workers: number }[];
}

/**
 * What a web console reads about its session and the service: `GET /v1/me` (the caller's tenant,
 * roles and key id) and `GET /v1/workers` (worker connections per queue). Behind the /v1 guard, so
 * both need a key with `read` once keys are configured.
 */
export function consoleRoutes(deps: ConsoleRouteDeps): Router {
  const router = Router();

  router.get('/me', (req: Request, res: Response) => {
    const { caller } = req;
    // ROLES' order, not the key's: a console compares answers, and a Set keeps the order of the configuration.
    const answer: MeAnswer = {
      tenant: caller.tenant,
      roles: ROLES.filter((role) => caller.roles.has(role)),
      keyId: caller.keyId,
      auth: deps.keys.open ? 'off' : 'keys',
    };
    res.json(answer);
  });

  router.get('/workers', async (_req: Request, res: Response) => {
    let counts: number[];
    try {
      counts = await Promise.all(deps.queues.map((queue) => queueWorkerCount(queue)));
    } catch (error) {
      // Better no answer than a wrong one: a console would show "no workers" (or BullMQ's made-up one).
      deps.logger.warn('could not count worker connections', { error: (error as Error).message });
      throw new ProblemError('OB_ERR_NOT_READY', `worker connections cannot be counted: ${(error as Error).message}`);
    }
    // The shards of a queue (QUEUE_SHARDS) add up under its name, as in the queue metrics.
    const byName = new Map<string, number>();
    deps.queues.forEach((queue, i) => byName.set(queue.name, (byName.get(queue.name) ?? 0) + (counts[i] ?? 0)));
    const queues = [...byName].map(([name, workers]) => ({ name, workers }));
    const answer: WorkersAnswer = { connected: queues.reduce((sum, q) => sum + q.workers, 0), queues };
    res.json(answer);
  });

  return router;
}

// ---------------------------------------------------------------------------------------------
// OpenAPI: the fragment of these routes (api/src/openapi.ts merges it).

export function consoleSchemas(): Record<string, Schema> {
  return {
    Me: {
      type: 'object',
      required: ['tenant', 'roles', 'keyId', 'auth'],
      properties: {
        tenant: { type: 'string', description: "The key's tenant; `default` while no key is configured." },
        roles: {
          type: 'array',
          items: { enum: [...ROLES] },
          uniqueItems: true,
          description: `The key's roles, in the order ${ROLES.join(', ')}; all of them while no key is configured.`,
        },
        keyId: {
          type: 'string',
          pattern: '^([0-9a-f]{12}|open)$',
          description: 'Non-secret id of the key (first 12 hex characters of its SHA-256); `open` while no key is configured.',
        },
        auth: { enum: ['keys', 'off'], description: '`off`: no key is configured (development), anyone who can reach the API is let in.' },
      },
    },
    Workers: {
      type: 'object',
      required: ['connected', 'queues'],
      properties: {
        connected: { type: 'integer', minimum: 0, description: 'The sum of `queues[].workers`.' },
        queues: {
          type: 'array',
          description:
            'Every queue the API knows, by name, with the worker connections consuming it (BullMQ getWorkersCount, from CLIENT LIST; ' +
            'the shards of a queue added up). Connections, not processes: a worker process holds one per queue and shard it consumes.',
          items: {
            type: 'object',
            required: ['name', 'workers'],
            properties: { name: { type: 'string' }, workers: { type: 'integer', minimum: 0 } },
          },
        },
      },
    },
  };
}

export function consolePaths(): Paths {
  return {
    '/v1/me': {
      get: {
        tags: ['operations'],
        operationId: 'getMe',
        summary: 'Who the presented API key is: its tenant, roles and key id, and whether keys are configured at all.',
        responses: { '200': { description: 'The caller.', ...json(ref('Me')) }, ...problemResponses(GUARD_CODES) },
      },
    },
    '/v1/workers': {
      get: {
        tags: ['operations'],
        operationId: 'getWorkers',
        summary: 'Worker connections consuming each queue, wherever they run.',
        responses: {
          '200': { description: 'The worker connections.', ...json(ref('Workers')) },
          ...problemResponses([...GUARD_CODES, 'OB_ERR_NOT_READY']),
        },
      },
    },
  };
}
