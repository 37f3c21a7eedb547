import express, { type Express } from 'express';
import helmet from 'helmet';
import type { Redis } from 'ioredis';
import { ProblemError, type Config, type JobRecord, type JobStore, type Logger, type ModelRepository } from '@onnx-batch/shared';
import { authenticate, requireRole, roleForMethod, type KeyRing } from './http/auth';
import { notFoundHandler, problemHandler } from './http/problem';
import { rateLimit } from './http/rate-limit';
import { requestContext } from './http/request-context';
import type { JobEvents } from './job-events';
import type { JobSubmitter } from './job-submitter';
import { batchRoutes } from './routes/batch-routes';
import { healthRoutes } from './routes/health-routes';
import { modelRoutes } from './routes/model-routes';

export interface AppDeps {
  config: Config;
  logger: Logger;
  redis: Redis;
  repository: ModelRepository;
  store: JobStore;
  submitter: JobSubmitter;
  events: JobEvents;
  keys: KeyRing;
  checkCallbackUrl: (url: string) => Promise<string>;
  notifyFinished: (record: JobRecord) => Promise<void>;
  isShuttingDown?: () => boolean;
}

/** The HTTP application, wired to its dependencies (main.ts builds them; tests build their own). */
export function createApp(deps: AppDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('query parser', 'simple');
  app.use(requestContext(deps.logger));
  app.use(helmet());
  app.use(healthRoutes(deps.redis, deps.repository, deps.isShuttingDown ?? (() => false)));
  // Every job and model route needs a key once keys are configured; reads need `read`, the rest `submit`.
  const guard = [
    authenticate(deps.keys),
    rateLimit(deps.redis, deps.store.keys.rateLimitPrefix(), deps.config.RATE_LIMIT_PER_MINUTE, deps.logger),
    requireRole(roleForMethod),
  ];
  app.use(['/v1', '/batch-predict', '/batch-result'], ...guard);
  app.use('/v1', batchRoutes(deps, '/v1'));
  app.use('/v1', modelRoutes(deps));
  app.use('/', batchRoutes(deps, ''));
  app.use(notFoundHandler);
  app.use(problemHandler(deps.logger));
  return app;
}

export { ProblemError };
