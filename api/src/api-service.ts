import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Express } from 'express';
import { makeProblem, PROBLEM_CONTENT_TYPE } from '@onnx-batch/contracts';
import {
  AtRestCipher,
  callbackUrlChecker,
  connectRedis,
  createWebhookQueue,
  enqueueWebhook,
  JobEvents,
  JobStore,
  JobSubmitter,
  ModelRepository,
  ModelRouter,
  onnxFileReader,
  PredictionCache,
  QueueShards,
  readRolloutReport,
  replicaWaitFor,
  RolloutStore,
  ShardedEnqueuer,
  EvaluationService,
  EvaluationStore,
  StorageGuard,
  type Config,
  type Logger,
  type SubmitterHooks,
  qualityStoreFromConfig,
} from '@onnx-batch/shared';
import { createApp } from './app';
import { KeyRing } from './http/auth';
import { fastPolls } from './http/fast-polls';
import { rateLimiterFor } from './http/rate-limit';
import { createApiOps } from './ops';
import { driftReportsReader, registerDriftGauges } from './drift-metrics';
import { qualityReadingsReader, registerQualityGauges } from './quality-metrics';
import { registerRolloutGauges } from './rollout-metrics';
import { driftSettings } from './routes/drift-routes';
import { startSchedules } from './schedules/schedules';
import { createApiServer } from './tls-server';

export interface ApiService {
  readonly server: Server;
  /** The Express application the server dispatches to (tests walk its routes). */
  readonly app: Express;
  /** How many polls the server answered without Express (http/fast-polls.ts). */
  readonly fastPollsTaken: () => number;
  readonly url: string;
  readonly repository: ModelRepository;
  /** Stops taking requests, lets those in flight finish, then closes every connection. */
  close(): Promise<void>;
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

export interface ApiServiceOptions {
  /** Test hooks of the submitter (a test build crashes the process right after a commit). */
  submitterHooks?: SubmitterHooks;
}

/** Builds the API's dependencies from configuration and starts listening. */
export async function startApiService(config: Config, logger: Logger, options: ApiServiceOptions = {}): Promise<ApiService> {
  const repository = await ModelRepository.open(config.MODELS_DIR, onnxFileReader);
  repository.watch(config.MODEL_RELOAD_INTERVAL_MS, (error) => logger.error('model repository rescan failed', { error: String(error) }));

  const redis = connectRedis(config);
  const subscriber = connectRedis(config);
  // Job-store commands of concurrent requests share network writes (auto-pipelining); BullMQ keeps its own connection.
  const storeRedis = connectRedis(config, { enableAutoPipelining: true });
  const replicaWait = replicaWaitFor(config);
  for (const connection of [redis, subscriber, storeRedis, ...(replicaWait ? [replicaWait.redis] : [])]) {
    connection.on('error', (error: Error) => logger.warn('redis connection error', { error: error.message }));
  }
  const store = new JobStore(storeRedis, config.REDIS_PREFIX, config.RESULT_TTL_SECONDS, AtRestCipher.fromConfig(config), replicaWait);
  const webhooks = createWebhookQueue(redis, config);
  webhooks.on('error', (error: Error) => logger.warn('queue error', { error: error.message }));
  const queues = QueueShards.open(redis, config);
  queues.onError((error: Error) => logger.warn('queue error', { error: error.message }));
  const events = new JobEvents(subscriber, store.keys.finishedChannel(), logger);
  const rollouts = new RolloutStore(storeRedis, store.keys, subscriber);
  const router = new ModelRouter(repository, rollouts);
  const cache = config.PREDICTION_CACHE_MODELS ? new PredictionCache(storeRedis, store.keys, config) : null;
  // Refuses new jobs while a Redis server may evict keys or is short of room (docs/operations.md, "Redis memory").
  const storage = StorageGuard.fromConfig(redis, config, logger, true);
  storage.start();
  const submitter = new JobSubmitter(store, new ShardedEnqueuer(queues, config), config, logger, {
    hooks: options.submitterHooks,
    admission: storage,
  });
  const evaluations = new EvaluationService(
    repository,
    rollouts,
    store,
    submitter,
    new EvaluationStore(storeRedis, store.keys, config.EVALUATION_RETENTION_DAYS * 86_400),
    config,
    logger,
  );
  const ops = createApiOps({ config, logger, redis, submitter, storage, existing: [...queues.queues(), webhooks] });
  registerRolloutGauges(ops.metrics.registry, async () => {
    const reports = await Promise.all(
      repository.list().map(async (entry) => {
        const rollout = await rollouts.get(entry.name);
        return rollout.canary || rollout.shadow
          ? [{ model: entry.name, report: await readRolloutReport(storeRedis, store.keys, rollout) }]
          : [];
      }),
    );
    return reports.flat();
  });
  registerDriftGauges(ops.metrics.registry, driftReportsReader(repository, storeRedis, store.keys, driftSettings(config)));
  const quality = qualityStoreFromConfig(storeRedis, store.keys, config);
  registerQualityGauges(ops.metrics.registry, qualityReadingsReader(repository, quality), repository, config.QUALITY_MIN_LABELS);
  const schedules = await startSchedules({ config, logger, redis, repository });

  const keys = KeyRing.fromConfig(config);
  let host = config.HOST;
  if (keys.open) {
    if (!LOOPBACK.has(host)) host = '127.0.0.1';
    logger.warn(
      'no API key is configured: the API is open to anyone who can reach it, so it listens on loopback only. Set API_KEYS or ' +
        'API_KEYS_FILE to serve other hosts.',
      {
        host,
        configuredHost: config.HOST,
      },
    );
  }

  const limiter = rateLimiterFor(redis, store.keys.rateLimitPrefix(), config.RATE_LIMIT_PER_MINUTE, logger);
  let closing = false;
  const app = createApp({
    config,
    logger,
    redis,
    repository,
    store,
    submitter,
    events,
    router,
    rollouts,
    quality,
    evaluations,
    cache,
    onCacheLookup: (manifest, answer) => {
      if (cache?.enabledFor(manifest.name)) ops.metrics.observeCacheLookup(manifest, answer !== null);
    },
    keys,
    limiter,
    checkCallbackUrl: callbackUrlChecker(config),
    notifyFinished: async (record) => {
      await enqueueWebhook(webhooks, record);
    },
    onCancelled: ops.metrics.jobCancelled,
    isShuttingDown: () => closing,
    storage,
    queues: ops.queues,
    metrics: ops.metrics,
    adminQueues: ops.queues,
    schedules: schedules?.service,
  });
  // Express's router gives up on a request target it cannot parse (`GET http://[::1`) and its
  // default final handler would answer text/html; answer problem+json instead.
  const handle = app as unknown as (req: IncomingMessage, res: ServerResponse, done: () => void) => void;
  const polls = fastPolls({ config, logger, store, events, keys, limiter, metrics: ops.metrics });
  const listening = await createApiServer(
    config,
    (req, res) =>
      polls.take(req, res) ||
      handle(req, res, () => {
        res.statusCode = 400;
        res.setHeader('Content-Type', PROBLEM_CONTENT_TYPE);
        res.end(JSON.stringify(makeProblem('OB_ERR_INVALID_REQUEST', 'the request target cannot be parsed')));
      }),
    logger,
  );
  const server = listening.server;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.PORT, host, () => resolve());
  });
  // While closing, answers end their connection so idle keep-alive clients do not hold the exit.
  server.on('request', (_req: IncomingMessage, res: ServerResponse) => {
    if (closing) res.setHeader('Connection', 'close');
  });
  const address = server.address() as AddressInfo;
  const url = `${listening.protocol}://${host.includes(':') ? `[${host}]` : host}:${address.port}`;
  logger.info('api listening', {
    url,
    models: repository.list().map((m) => `${m.name}@${m.versions.map((v) => v.manifest.version).join(',')}`),
  });

  return {
    server,
    app,
    fastPollsTaken: () => polls.taken,
    url,
    repository,
    async close() {
      closing = true;
      await new Promise<void>((resolve) => {
        listening.stopWatching();
        server.close(() => resolve());
        server.closeIdleConnections();
      });
      await schedules?.close();
      storage.close();
      repository.close();
      await events.close();
      await ops.close();
      await queues.close();
      await webhooks.close();
      await storeRedis.quit().catch(() => storeRedis.disconnect());
      await redis.quit().catch(() => redis.disconnect());
      if (replicaWait) await replicaWait.redis.quit().catch(() => replicaWait.redis.disconnect());
    },
  };
}
