import { Worker, type Job, type Queue } from 'bullmq';
import {
  AtRestCipher,
  createFlowProducer,
  createQueue,
  createRedis,
  createWebhookQueue,
  DriftRecorder,
  enqueueWebhook,
  JobName,
  jobNamesFor,
  JobStore,
  ModelRepository,
  QueueName,
  RolloutStatsRecorder,
  RolloutStore,
  type Config,
  type Logger,
  type DeliverWebhookData,
  type FinalizeBatchData,
  type JobRecord,
  type JobNameFor,
  type RunChunkData,
} from '@onnx-batch/shared';
import { BatchFinalizer } from './batch-finalizer';
import { ChunkProcessor } from './chunk-processor';
import { DriftObserver } from './drift-observer';
import { InferencePool } from './inference-pool';
import { Reconciler } from './reconciler';
import { RolloutGuard } from './rollout-guard';
import { RolloutObserver } from './rollout-observer';
import { WorkerMetrics } from './metrics';
import { startMetricsServer } from './metrics-server';
import { WebhookDeliverer } from './webhook-deliverer';

export interface WorkerService {
  readonly repository: ModelRepository;
  readonly pool: InferencePool;
  /** Finishes (or hands back) the chunks in hand, then closes every connection and thread. */
  close(): Promise<void>;
}

/** One handler per job name; the mapped type makes a forgotten name a compile error. */
type Handlers = { [N in JobNameFor<'worker'>]: (job: Job) => Promise<unknown> };

/** Concurrency of the finalize-batch worker: parents do a few Redis reads each. */
const FINALIZE_CONCURRENCY = 4;
/** Webhook deliveries one worker process makes at once: each mostly waits on the network. */
const WEBHOOK_CONCURRENCY = 8;

/** Starts a worker process's machinery: BullMQ worker, inference threads, model repository. */
export async function startWorkerService(config: Config, logger: Logger): Promise<WorkerService> {
  const repository = await ModelRepository.open(config.MODELS_DIR);
  repository.watch(config.MODEL_RELOAD_INTERVAL_MS, (error) => logger.error('model repository rescan failed', { error: String(error) }));

  const redis = createRedis(config.REDIS_URL);
  const blocking = createRedis(config.REDIS_URL);
  for (const connection of [redis, blocking]) connection.on('error', (error: Error) => logger.warn('redis connection error', { error: error.message }));
  const store = new JobStore(redis, config.REDIS_PREFIX, config.RESULT_TTL_SECONDS, AtRestCipher.fromConfig(config));
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
  const subscriber = createRedis(config.REDIS_URL);
  subscriber.on('error', (error: Error) => logger.warn('redis connection error', { error: error.message }));
  const rollouts = new RolloutStore(redis, store.keys, subscriber);
  const rolloutStats = new RolloutStatsRecorder(redis, store.keys, 1000, (error) => logger.warn('could not write rollout statistics', { error: String(error) }));
  const observer = new RolloutObserver(rollouts, rolloutStats, repository, pool, logger);
  const drift = new DriftRecorder(redis, store.keys, {
    retentionSeconds: config.DRIFT_RETENTION_HOURS * 3600,
    onError: (error) => logger.warn('could not write drift statistics', { error: String(error) }),
  });
  const processor = new ChunkProcessor(store, repository, pool, logger, notifyFinished, [metrics, observer, new DriftObserver(repository, drift)]);
  const finalizer = new BatchFinalizer(store, processor, logger, notifyFinished);
  const deliverer = new WebhookDeliverer(store, config, logger);
  const chunkQueue = createQueue(QueueName.Chunks, redis, config) as Queue<RunChunkData>;
  const batchQueue = createQueue(QueueName.Batches, redis, config) as Queue<FinalizeBatchData>;
  const flows = createFlowProducer(redis, config);
  const onQueueError = (error: Error): void => {
    logger.warn('queue error', { error: error.message });
  };
  chunkQueue.on('error', onQueueError);
  batchQueue.on('error', onQueueError);
  flows.on('error', onQueueError);
  const guard = new RolloutGuard(repository, rollouts, redis, store.keys, logger);
  const reconciler = new Reconciler({ store, redis, chunks: chunkQueue, batches: batchQueue, flows, processor, finalizer, guard, config, logger });

  const handlers: Handlers = {
    [JobName.RunChunk]: (job) => processor.process(job as Job<RunChunkData>),
    [JobName.FinalizeBatch]: (job) => finalizer.process(job as Job<FinalizeBatchData>),
    [JobName.DeliverWebhook]: (job) => deliverer.process(job as Job<DeliverWebhookData>),
  };
  for (const name of jobNamesFor('worker')) {
    if (typeof handlers[name] !== 'function') throw new Error(`no handler for job name '${name}'`);
  }
  const dispatch = async (job: Job): Promise<unknown> => {
    const handler = handlers[job.name as JobNameFor<'worker'>] as Handlers[JobNameFor<'worker'>] | undefined;
    if (!handler) throw new Error(`no handler for job name '${job.name}'`);
    return handler(job);
  };

  const workerFor = (queue: QueueName, concurrency: number): Worker =>
    new Worker(queue, dispatch, {
      connection: blocking,
      prefix: config.REDIS_PREFIX,
      concurrency,
      lockDuration: config.LOCK_DURATION_MS,
      stalledInterval: config.STALLED_INTERVAL_MS,
      maxStalledCount: config.MAX_STALLED_COUNT,
      autorun: false,
    });
  const workers = [
    workerFor(QueueName.Chunks, config.WORKER_CONCURRENCY),
    workerFor(QueueName.Batches, FINALIZE_CONCURRENCY),
    workerFor(QueueName.Webhooks, WEBHOOK_CONCURRENCY),
  ];
  for (const w of workers) {
    w.on('error', (error) => logger.warn('worker error', { queue: w.name, error: error.message }));
    w.on('failed', (job: Job<{ jobId: string }> | undefined, error) => {
      if (!job) return;
      logger.warn('job attempt failed', { queue: w.name, jobId: job.data.jobId, error: error.message });
      reconciler.onFailed(job, error.message).catch((e: unknown) => logger.warn('could not end a failed job; the recovery sweep will', { jobId: job.data.jobId, error: String(e) }));
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
      await reconciler.close();
      await Promise.all(workers.map((w) => w.close()));
      await Promise.all([chunkQueue.close(), batchQueue.close(), flows.close()]);
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
