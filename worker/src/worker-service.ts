import { Worker, type Job } from 'bullmq';
import {
  AtRestCipher,
  connectRedis,
  createWebhookQueue,
  DriftRecorder,
  enqueueWebhook,
  isOutOfMemoryError,
  jobDispatcher,
  JobName,
  JobStore,
  ModelRepository,
  PredictionCache,
  queuePrefix,
  qualityStoreFromConfig,
  QueueName,
  QueueShards,
  RolloutStatsRecorder,
  RolloutStore,
  StorageGuard,
  type Config,
  type Logger,
  type JobRecord,
} from '@onnx-batch/shared';
import { BatchFinalizer } from './batch-finalizer';
import { ChunkProcessor, type ChunkProcessorHooks } from './chunk-processor';
import { DriftObserver } from './drift-observer';
import { InferencePool } from './inference-pool';
import { onnxRuntimeReader } from './onnx-runtime-reader';
import { Reconciler } from './reconciler';
import { RolloutGuard } from './rollout-guard';
import { RolloutObserver } from './rollout-observer';
import { WorkerMetrics } from './metrics';
import { startMetricsServer } from './metrics-server';
import { PauseWhileFull } from './pause-while-full';
import { WebhookDeliverer } from './webhook-deliverer';

export interface WorkerService {
  readonly repository: ModelRepository;
  readonly pool: InferencePool;
  /** Finishes (or hands back) the chunks in hand, then closes every connection and thread. */
  close(): Promise<void>;
}

export interface WorkerServiceOptions {
  /** Test hooks of the chunk processor (a test makes Redis full between taking a chunk and beginning it). */
  processorHooks?: ChunkProcessorHooks;
}

/** Starts a worker process's machinery: BullMQ worker, inference threads, model repository. */
export async function startWorkerService(config: Config, logger: Logger, options: WorkerServiceOptions = {}): Promise<WorkerService> {
  const repository = await ModelRepository.open(config.MODELS_DIR, onnxRuntimeReader);
  repository.watch(config.MODEL_RELOAD_INTERVAL_MS, (error) => logger.error('model repository rescan failed', { error: String(error) }));

  const redis = connectRedis(config);
  const blocking = connectRedis(config);
  const subscriber = connectRedis(config);
  for (const connection of [redis, blocking, subscriber])
    connection.on('error', (error: Error) => logger.warn('redis connection error', { error: error.message }));
  const store = new JobStore(redis, config.REDIS_PREFIX, config.RESULT_TTL_SECONDS, AtRestCipher.fromConfig(config));
  // Logs an evicting Redis at start; a write refused at maxmemory waits here for room (docs/operations.md, "Redis memory").
  const storage = StorageGuard.fromConfig(redis, config, logger, false);
  storage.start();
  const closing = new AbortController();
  const metrics = new WorkerMetrics();
  const webhooks = createWebhookQueue(redis, config);
  webhooks.on('error', (error: Error) => logger.warn('queue error', { queue: webhooks.name, error: error.message }));
  /** A finished job with a callback URL gets its webhook queued (once: its BullMQ job id is fixed). */
  const notifyFinished = async (record: JobRecord): Promise<void> => {
    await enqueueWebhook(webhooks, record);
  };
  const pool = new InferencePool(
    {
      threads: config.INFERENCE_THREADS,
      intraOpThreads: config.INTRA_OP_THREADS,
      maxBatchRows: config.MAX_BATCH_ROWS,
      driftSampleRate: config.DRIFT_SAMPLE_RATE,
      onBatch: metrics.observeBatch,
    },
    logger,
  );
  repository.onChange(({ removed }) => removed.forEach((version) => pool.release(version.fingerprint)));
  const rollouts = new RolloutStore(redis, store.keys, subscriber);
  const rolloutStats = new RolloutStatsRecorder(redis, store.keys, 1000, (error) =>
    logger.warn('could not write rollout statistics', { error: String(error) }),
  );
  const quality = qualityStoreFromConfig(redis, store.keys, config);
  const observer = new RolloutObserver(rollouts, rolloutStats, repository, pool, logger, quality);
  const cache = config.PREDICTION_CACHE_MODELS ? new PredictionCache(redis, store.keys, config) : null;
  const drift = new DriftRecorder(redis, store.keys, {
    retentionSeconds: config.DRIFT_RETENTION_HOURS * 3600,
    onError: (error) => logger.warn('could not write drift statistics', { error: String(error) }),
  });
  const processor = new ChunkProcessor({
    store,
    repository,
    pool,
    logger,
    notifyFinished,
    listeners: [metrics, observer, new DriftObserver(repository, drift)],
    cache,
    storage,
    closing: closing.signal,
    quality,
    ...(options.processorHooks ? { hooks: options.processorHooks } : {}),
  });
  const finalizer = new BatchFinalizer(store, processor, logger, notifyFinished);
  const deliverer = new WebhookDeliverer(store, config, logger);
  const queues = QueueShards.open(redis, config);
  queues.onError((error: Error): void => {
    logger.warn('queue error', { error: error.message });
  });
  const guard = new RolloutGuard(repository, rollouts, redis, store.keys, logger, { quality, config });
  const reconciler = new Reconciler({ store, redis, queues, processor, finalizer, guard, config, logger });

  const dispatch = jobDispatcher(
    'worker',
    {
      [JobName.RunChunk]: (job) => processor.process(job),
      [JobName.RunChunkGroup]: (job) => processor.processGroup(job),
      [JobName.FinalizeBatch]: (job) => finalizer.process(job),
      [JobName.DeliverWebhook]: (job) => deliverer.process(job),
    },
    logger,
  );

  const workerFor = (queue: QueueName, concurrency: number, prefix = queuePrefix(config)): Worker =>
    new Worker(queue, dispatch, {
      connection: blocking,
      prefix,
      concurrency,
      lockDuration: config.LOCK_DURATION_MS,
      stalledInterval: config.STALLED_INTERVAL_MS,
      maxStalledCount: config.MAX_STALLED_COUNT,
      autorun: false,
    });
  // Every shard is consumed; WORKER_CONCURRENCY is shared out between them.
  const perShard = (concurrency: number): number => Math.max(1, Math.ceil(concurrency / queues.all.length));
  const workers = [
    ...queues.all.flatMap((shard) => [
      workerFor(QueueName.Chunks, perShard(config.WORKER_CONCURRENCY), shard.prefix),
      workerFor(QueueName.Batches, perShard(config.FINALIZE_CONCURRENCY), shard.prefix),
    ]),
    workerFor(QueueName.Webhooks, config.WEBHOOK_CONCURRENCY),
  ];
  const pause = new PauseWhileFull(workers, storage, closing.signal, logger);
  for (const w of workers) {
    w.on('error', (error) => {
      // BullMQ retries a refused fetch at once, thousands of times a second: pause instead, and say so once.
      if (isOutOfMemoryError(error)) pause.outOfMemory();
      else logger.warn('worker error', { queue: w.name, error: error.message });
    });
    w.on('failed', (job: Job<{ jobId: string }> | undefined, error) => {
      if (!job) return;
      logger.warn('job attempt failed', { queue: w.name, jobId: job.data.jobId, error: error.message });
      reconciler
        .onFailed(job, error.message)
        .catch((e: unknown) =>
          logger.warn('could not end a failed job; the recovery sweep will', { jobId: job.data.jobId, error: String(e) }),
        );
    });
    void w.run();
  }
  reconciler.start();
  metrics.observeWorkers(workers);
  metrics.observeBacklog(() => pool.backlog);
  const metricsServer = await startMetricsServer(metrics.registry, { port: config.METRICS_PORT, host: config.HOST }, logger);
  logger.info('worker started', {
    concurrency: config.WORKER_CONCURRENCY,
    inferenceThreads: config.INFERENCE_THREADS,
    intraOpThreads: config.INTRA_OP_THREADS,
    models: repository.list().map((m) => m.name),
  });

  return {
    repository,
    pool,
    async close() {
      closing.abort();
      storage.close();
      await pause.settled();
      await reconciler.close();
      await Promise.all(workers.map((w) => w.close()));
      await queues.close();
      await rolloutStats.close().catch((error: unknown) => logger.warn('could not write rollout statistics', { error: String(error) }));
      await drift.close().catch((error: unknown) => logger.warn('could not write drift statistics', { error: String(error) }));
      await metricsServer?.close();
      metrics.close();
      await webhooks.close();
      await pool.close();
      repository.close();
      await Promise.all([redis, blocking, subscriber].map((c) => c.quit().catch(() => c.disconnect())));
    },
  };
}
