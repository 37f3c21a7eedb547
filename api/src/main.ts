import type { Server } from 'node:http';
import { createLogger, createRedis, createQueue, JobStore, loadConfig, ModelRepository, QueueName, type RunChunkData } from '@onnx-batch/shared';
import type { Queue } from 'bullmq';
import { createApp } from './app';
import { JobEvents } from './job-events';
import { JobSubmitter } from './job-submitter';

async function main(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger(config.LOG_LEVEL, 'api');
  const repository = await ModelRepository.open(config.MODELS_DIR);
  repository.watch(config.MODEL_RELOAD_INTERVAL_MS, (error) => logger.error('model repository rescan failed', { error: String(error) }));

  const redis = createRedis(config.REDIS_URL);
  const subscriber = createRedis(config.REDIS_URL);
  redis.on('error', (error: Error) => logger.warn('redis connection error', { error: error.message }));
  subscriber.on('error', (error: Error) => logger.warn('redis subscriber error', { error: error.message }));
  const store = new JobStore(redis, config.REDIS_PREFIX, config.RESULT_TTL_SECONDS);
  const chunks = createQueue(QueueName.Chunks, redis, config) as Queue<RunChunkData>;
  chunks.on('error', (error: Error) => logger.warn('queue error', { error: error.message }));
  const events = new JobEvents(subscriber, store.keys.finishedChannel(), logger);
  const submitter = new JobSubmitter(store, chunks, config, logger);

  let shuttingDown = false;
  const app = createApp({ config, logger, redis, repository, store, submitter, events, isShuttingDown: () => shuttingDown });
  const server: Server = app.listen(config.PORT, config.HOST, () => {
    logger.info('api listening', {
      url: `http://${config.HOST}:${config.PORT}`,
      models: repository.list().map((m) => `${m.name}@${m.versions.map((v) => v.manifest.version).join(',')}`),
    });
  });
  server.on('error', (error) => {
    logger.error('cannot listen', { error: error.message });
    process.exit(1);
  });

  const shutdown = (signal: string): void => {
    if (shuttingDown) return;
    shuttingDown = true;
    logger.info('shutting down', { signal, graceMs: config.SHUTDOWN_GRACE_MS });
    const force = setTimeout(() => {
      logger.warn('grace period over; exiting with requests in flight');
      process.exit(1);
    }, config.SHUTDOWN_GRACE_MS);
    force.unref();
    server.close(() => {
      void (async () => {
        repository.close();
        await events.close();
        await chunks.close();
        await redis.quit().catch(() => redis.disconnect());
        logger.info('stopped');
        process.exit(0);
      })();
    });
    server.closeIdleConnections();
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

main().catch((error: unknown) => {
  // Start-up failures (bad config, bad model repository) name what is wrong and exit non-zero.
  process.stderr.write(`onnx-batch api: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
