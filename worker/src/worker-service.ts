import { Worker, type Job } from 'bullmq';
import {
  createRedis,
  JobName,
  JobStore,
  ModelRepository,
  QueueName,
  type Config,
  type Logger,
  type RunChunkData,
} from '@onnx-batch/shared';
import { ChunkProcessor } from './chunk-processor';
import { InferencePool } from './inference-pool';

export interface WorkerService {
  readonly repository: ModelRepository;
  readonly pool: InferencePool;
  /** Finishes (or hands back) the chunks in hand, then closes every connection and thread. */
  close(): Promise<void>;
}

/** Job names this process handles, by queue; checked against the contracts at boot. */
type Handlers = { [N in JobName]: ((job: Job) => Promise<unknown>) | 'elsewhere' };

/** Starts a worker process's machinery: BullMQ worker, inference threads, model repository. */
export async function startWorkerService(config: Config, logger: Logger): Promise<WorkerService> {
  const repository = await ModelRepository.open(config.MODELS_DIR);
  repository.watch(config.MODEL_RELOAD_INTERVAL_MS, (error) => logger.error('model repository rescan failed', { error: String(error) }));

  const redis = createRedis(config.REDIS_URL);
  const blocking = createRedis(config.REDIS_URL);
  for (const connection of [redis, blocking]) connection.on('error', (error: Error) => logger.warn('redis connection error', { error: error.message }));
  const store = new JobStore(redis, config.REDIS_PREFIX, config.RESULT_TTL_SECONDS);
  const pool = new InferencePool(
    { threads: config.INFERENCE_THREADS, intraOpThreads: config.INTRA_OP_THREADS, maxBatchRows: config.MAX_BATCH_ROWS },
    logger,
  );
  const processor = new ChunkProcessor(store, repository, pool, logger);

  // Every job name has exactly one handler (or is declared handled elsewhere); the mapped type
  // makes a forgotten name a compile error, the check below a loud start-up failure.
  const handlers: Handlers = {
    [JobName.RunChunk]: (job) => processor.process(job as Job<RunChunkData>),
    [JobName.FinalizeBatch]: 'elsewhere',
  };
  for (const name of Object.values(JobName)) {
    if (!(name in handlers)) throw new Error(`no handler for job name '${name}'`);
  }

  const worker = new Worker(
    QueueName.Chunks,
    async (job: Job) => {
      const handler = handlers[job.name as JobName];
      if (typeof handler !== 'function') throw new Error(`no handler for job name '${job.name}'`);
      return handler(job);
    },
    {
      connection: blocking,
      prefix: config.REDIS_PREFIX,
      concurrency: config.WORKER_CONCURRENCY,
      lockDuration: config.LOCK_DURATION_MS,
      stalledInterval: config.STALLED_INTERVAL_MS,
      maxStalledCount: 2,
      autorun: false,
    },
  );
  worker.on('error', (error) => logger.warn('worker error', { error: error.message }));
  worker.on('failed', (job: Job<RunChunkData> | undefined, error) => {
    if (job) logger.warn('chunk attempt failed', { jobId: job.data.jobId, chunk: job.data.chunk, error: error.message });
  });
  void worker.run();
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
      await worker.close();
      await pool.close();
      repository.close();
      await Promise.all([redis, blocking].map((c) => c.quit().catch(() => c.disconnect())));
    },
  };
}
