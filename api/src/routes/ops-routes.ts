import { Router } from 'express';
import type { Queue } from 'bullmq';
import type { Config, ModelRepository } from '@onnx-batch/shared';
import { authenticate, requireRole, type KeyRing } from '../http/auth';
import type { ApiMetrics } from '../metrics';
import { OpenApiProvider } from '../openapi';
import { bullBoardRouter } from './admin-routes';
import { docsRoutes } from './docs-routes';

export interface OpsRouteDeps {
  config: Config;
  repository: ModelRepository;
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
  router.use(docsRoutes(new OpenApiProvider(deps.repository, deps.config)));
  if (deps.adminQueues) router.use(bullBoardRouter(deps.adminQueues, undefined, authenticate(deps.keys), requireRole('admin')));
  return router;
}
