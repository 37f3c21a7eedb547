import express, { type Express } from 'express';
import type { Queue } from 'bullmq';
import type { ModelManifest } from '@onnx-batch/contracts';
import type {
  Config,
  EvaluationService,
  JobEvents,
  JobRecord,
  JobStore,
  JobSubmitter,
  Logger,
  ModelRepository,
  ModelRouter,
  PredictionCache,
  QualityStore,
  RedisClient,
  RolloutStore,
  StorageGuard,
} from '@onnx-batch/shared';
import { authenticate, requireRole, roleForMethod, type KeyRing } from './http/auth';
import { methodNotAllowed } from './http/method-not-allowed';
import { notFoundHandler, problemHandler } from './http/problem';
import { rateLimit, type RateLimiter } from './http/rate-limit';
import { requestContext } from './http/request-context';
import { securityHeaders } from './http/security-headers';
import { OpenApiProvider } from './openapi';
import { BatchService } from './compat/batch-service';
import { FileStore } from './compat/file-store';
import { batchApiRoutes } from './routes/batch-api-routes';
import { compatErrorHandler } from './compat/compat-errors';
import { batchRoutes } from './routes/batch-routes';
import { consolePageRoutes } from './routes/console-page-routes';
import { jobRoutes } from './routes/job-routes';
import { consoleRoutes } from './routes/console-routes';
import { driftRoutes } from './routes/drift-routes';
import { embeddingsRoutes } from './routes/embeddings-routes';
import { evaluationRoutes } from './routes/evaluation-routes';
import { healthRoutes } from './routes/health-routes';
import { modelRoutes } from './routes/model-routes';
import { openInferenceErrors, openInferenceRoutes } from './routes/open-inference-routes';
import { opsRoutes, type OpsRouteDeps } from './routes/ops-routes';
import { qualityRoutes } from './routes/quality-routes';
import { rolloutRoutes } from './routes/rollout-routes';
import { scheduleRoutes } from './routes/schedule-routes';
import type { ScheduleService } from './schedules/schedule-service';

export interface AppDeps {
  config: Config;
  logger: Logger;
  redis: RedisClient;
  repository: ModelRepository;
  store: JobStore;
  submitter: JobSubmitter;
  events: JobEvents;
  router: ModelRouter;
  rollouts: RolloutStore;
  /** Kept predictions, labels and quality counters (routes/quality-routes.ts). */
  quality: QualityStore;
  /** Evaluations of model versions and the quality gate of a canary (routes/evaluation-routes.ts). */
  evaluations: EvaluationService;
  cache?: PredictionCache | null;
  onCacheLookup?: (manifest: ModelManifest, answer: string | null) => void;
  keys: KeyRing;
  /** RATE_LIMIT_PER_MINUTE's limiter (null: no limit), shared with the fast poll path. */
  limiter: RateLimiter | null;
  checkCallbackUrl: (url: string) => Promise<string>;
  notifyFinished: (record: JobRecord) => Promise<void>;
  onCancelled?: (record: JobRecord) => void;
  isShuttingDown?: () => boolean;
  /** The Redis eviction-policy and memory checks (readiness reads them). */
  storage: StorageGuard;
  /** Every BullMQ queue the API knows (each shard of the chunk queues): `GET /v1/workers` counts their workers. */
  queues: readonly Queue[];
  metrics?: OpsRouteDeps['metrics'];
  adminQueues?: OpsRouteDeps['adminQueues'];
  /** Built-in schedules; absent when SCHEDULES_ROOT is not set. */
  schedules?: ScheduleService | undefined;
}

/** The paths of the OpenAI-compatible surface (docs/interop.md): their errors take that API's shape. */
export const COMPAT_PATHS = ['/v1/files', '/v1/batches', '/v1/embeddings'];

/** The Batch API's stores over the app's own: files in Redis, batches as jobs of the one submission path. */
function batchApiStores(deps: Pick<AppDeps, 'config' | 'redis' | 'store' | 'submitter' | 'router' | 'repository' | 'storage'>): {
  files: FileStore;
  batches: BatchService;
} {
  const { config } = deps;
  const files = new FileStore(
    deps.redis,
    deps.store.keys,
    { ttlSeconds: config.FILES_TTL_SECONDS, maxBytes: config.FILES_MAX_BYTES, stagingTtlSeconds: config.STAGING_TTL_SECONDS },
    deps.storage,
  );
  const batches = new BatchService(deps.redis, deps.store, deps.submitter, deps.router, deps.repository, files, {
    maxRequests: config.BATCH_MAX_REQUESTS,
    resultTtlSeconds: config.RESULT_TTL_SECONDS,
  });
  return { files, batches };
}

/** The HTTP application, wired to its dependencies (main.ts builds them; tests build their own). */
export function createApp(deps: AppDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('query parser', 'simple');
  app.use(requestContext(deps.logger));
  if (deps.metrics) app.use(deps.metrics.httpMiddleware);
  app.use(securityHeaders);
  // 405 and OPTIONS from the route table, before the guard (the table is public: /openapi.json).
  app.use(methodNotAllowed(app));
  app.use(healthRoutes(deps.redis, deps.repository, deps.storage, deps.isShuttingDown ?? (() => false)));
  app.use(opsRoutes({ ...deps, openapi: new OpenApiProvider(deps.repository, deps.config) }));
  // The console's shell and assets are open (they carry no data); everything it shows comes from /v1 with the key typed into it.
  app.use(consolePageRoutes());
  // Every job and model route needs a key once keys are configured; reads need `read`, the rest `submit`.
  // Plain polls never get here: http/fast-polls.ts answers them first with these same guards (ADR 0006).
  const guard = [authenticate(deps.keys), rateLimit(deps.limiter), requireRole(roleForMethod)];
  app.use(['/v1', '/batch-predict', '/batch-result'], ...guard);
  app.use('/v1', batchRoutes(deps, '/v1'));
  app.use('/v1', jobRoutes(deps));
  app.use('/v1', consoleRoutes(deps));
  app.use('/v1', modelRoutes(deps));
  app.use('/v1', embeddingsRoutes(deps));
  app.use('/v1', rolloutRoutes({ ...deps, keys: deps.store.keys }));
  app.use('/v1', driftRoutes({ ...deps, keys: deps.store.keys }));
  app.use('/v1', qualityRoutes(deps));
  app.use('/v1', evaluationRoutes(deps));
  app.use('/v1', scheduleRoutes(deps));
  app.use('/v1', batchApiRoutes({ config: deps.config, ...batchApiStores(deps) }));
  app.use('/', batchRoutes(deps, ''));
  // The OpenAI-compatible routes answer every error of theirs (the guard's 401/403/429 too) in that API's shape.
  app.use(COMPAT_PATHS, compatErrorHandler(deps.logger));
  // Open Inference Protocol v2: guards per route inside (health and server metadata are open, like /livez), errors as {"error"}.
  app.use('/v2', openInferenceRoutes(deps));
  app.use('/v2', openInferenceErrors(deps.logger));
  app.use(notFoundHandler);
  app.use(problemHandler(deps.logger));
  return app;
}
