import { Worker, type Job } from 'bullmq';
import {
  createLogger,
  createRedis,
  JobName,
  JobStore,
  loadConfig,
  ModelRepository,
  QueueName,
  type RunChunkData,
} from '@onnx-batch/shared';
import { ChunkProcessor } from './chunk-processor';
import { InferencePool } from './inference-pool';

async function main(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger(config.LOG_LEVEL, 'worker');
  const repository = await ModelRepository.open(config.MODELS_DIR);
  repository.watch(config.MODEL_RELOAD_INTERVAL_MS, (error) => logger.error('model repository rescan failed', { error: String(error) }));

  const redis = createRedis(config.REDIS_URL);
  redis.on('error', (error: Error) => logger.warn('redis connection error', { error: error.message }));
  const store = new JobStore(redis, config.REDIS_PREFIX, config.RESULT_TTL_SECONDS);
  const pool = new InferencePool(
    { threads: config.INFERENCE_THREADS, intraOpThreads: config.INTRA_OP_THREADS, maxBatchRows: config.MAX_BATCH_ROWS },
    logger,
  );
  const processor = new ChunkProcessor(store, repository, pool, logger);

  // One handler per job name, checked at boot: a job nobody can process must not sit in a queue.
  const handlers: { [N in JobName]?: (job: Job) => Promise<unknown> } = {
    [JobName.RunChunk]: (job) => processor.process(job as Job<RunChunkData>),
  };
  const unhandled = Object.values(JobName).filter((name) => name !== JobName.FinalizeBatch && !handlers[name]);
  if (unhandled.length > 0) throw new Error(`no handler for job names: ${unhandled.join(', ')}`);

  const worker = new Worker(
    QueueName.Chunks,
    async (job: Job) => {
      const handler = handlers[job.name as JobName];
      if (!handler) throw new Error(`no handler for job name '${job.name}'`);
      return handler(job);
    },
    {
      connection: createRedis(config.REDIS_URL),
      prefix: config.REDIS_PREFIX,
      concurrency: config.WORKER_CONCURRENCY,
      lockDuration: config.LOCK_DURATION_MS,
      stalledInterval: config.STALLED_INTERVAL_MS,
      maxStalledCount: 2,
      autorun: false,
    },
  );
  worker.on('error', (error) => logger.warn('worker error', { error: error.message }));
  worker.on('failed', (job, error) => {
    if (job) logger.warn('chunk attempt failed', { jobId: job.data.jobId as string, chunk: job.data.chunk as number, error: error.message });
  });
  void worker.run();
  logger.info('worker started', {
    concurrency: config.WORKER_CONCURRENCY,
    inferenceThreads: config.INFERENCE_THREADS,
    intraOpThreads: config.INTRA_OP_THREADS,
    models: repository.list().map((m) => m.name),
  });

  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info('shutting down: finishing chunks in hand', { signal, graceMs: config.SHUTDOWN_GRACE_MS });
    const force = setTimeout(() => {
      logger.warn('grace period over; exiting with chunks in hand (they will be retried)');
      process.exit(1);
    }, config.SHUTDOWN_GRACE_MS);
    force.unref();
    void (async () => {
      await worker.close();
      await pool.close();
      repository.close();
      await redis.quit().catch(() => redis.disconnect());
      logger.info('stopped');
      process.exit(0);
    })();
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

main().catch((error: unknown) => {
  process.stderr.write(`onnx-batch worker: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
