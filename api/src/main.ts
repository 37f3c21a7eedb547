import { createLogger, loadConfig } from '@onnx-batch/shared';
import { startApiService } from './api-service';

async function main(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger(config.LOG_LEVEL, 'api');
  const service = await startApiService(config, logger);

  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info('shutting down: finishing requests in flight', { signal, graceMs: config.SHUTDOWN_GRACE_MS });
    const force = setTimeout(() => {
      logger.warn('grace period over; exiting with requests in flight');
      process.exit(1);
    }, config.SHUTDOWN_GRACE_MS);
    force.unref();
    service.close().then(
      () => {
        logger.info('stopped');
        process.exit(0);
      },
      (error: unknown) => {
        logger.error('unclean shutdown', { error: String(error) });
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

main().catch((error: unknown) => {
  // Start-up failures (bad config, bad model repository) name what is wrong and exit non-zero.
  process.stderr.write(`onnx-batch api: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
