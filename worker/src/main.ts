import { createLogger, loadConfig } from '@onnx-batch/shared';
import { startWorkerService } from './worker-service';

async function main(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger(config.LOG_LEVEL, 'worker');
  const service = await startWorkerService(config, logger);

  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info('shutting down: finishing chunks in hand', { signal, graceMs: config.SHUTDOWN_GRACE_MS });
    const force = setTimeout(() => {
      logger.warn('grace period over; exiting with chunks in hand (another worker will retry them)');
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
  process.stderr.write(`onnx-batch worker: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
