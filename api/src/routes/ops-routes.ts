import { Router } from 'express';
import type { Queue } from 'bullmq';
import { authenticate, requireRole, type KeyRing } from '../http/auth';
import type { ApiMetrics } from '../metrics';
import { type Paths } from '../openapi-parts';
import { bullBoardRouter } from './admin-routes';
import { docsRoutes, type OpenApiSource } from './docs-routes';

export interface OpsRouteDeps {
  /** The OpenAPI document served at `/openapi.json` (app.ts builds it: openapi.ts merges this file's fragment). */
  openapi: OpenApiSource;
  keys: KeyRing;
  /** The API's metrics; without them `/metrics` is not served. */
  metrics?: ApiMetrics;
  /** Queues Bull Board shows; without them `/admin/queues` is not served. */
  adminQueues?: readonly Queue[];
}

/**
 * What operators use: `GET /metrics`, `GET /openapi.json` and Swagger UI at `/docs` (open, like
 * the health routes), and Bull Board at `/admin/queues` behind an API key with the `admin` role.
 */
export function opsRoutes(deps: OpsRouteDeps): Router {
  const router = Router();
  if (deps.metrics) router.get('/metrics', deps.metrics.handler);
  router.use(docsRoutes(deps.openapi));
  if (deps.adminQueues) router.use(bullBoardRouter(deps.adminQueues, undefined, authenticate(deps.keys), requireRole('admin')));
  return router;
}

/** OpenAPI: `/metrics` (docs-routes.ts and admin-routes.ts have the fragments of the rest). Open: no key needed. */
export function opsPaths(): Paths {
  return {
    '/metrics': {
      get: {
        security: [],
        tags: ['operations'],
        operationId: 'metrics',
        summary: 'Prometheus metrics of this API process (docs/operations.md lists them).',
        responses: {
          '200': { description: 'Prometheus text exposition format.', content: { 'text/plain': { schema: { type: 'string' } } } },
        },
      },
    },
  };
}
