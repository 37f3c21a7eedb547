import { loadConfig, type Config } from './config';
import { createLogger, type Logger } from './logger';

export interface RunningService {
  /** Finishes the work in hand, closes every connection; bounded by SHUTDOWN_GRACE_MS. */
  close(): Promise<void>;
}

/**
 * The `main` of a process: read the configuration, start the service, and on SIGTERM/SIGINT
 * close it within the grace period. A start-up failure (bad configuration, bad model
 * repository) is printed naming what is wrong, and the process exits non-zero.
 */
export function runService(name: 'api' | 'worker', start: (config: Config, logger: Logger) => Promise<RunningService>, inFlight: string): void {
  const main = async (): Promise<void> => {
    const config = loadConfig();
    const logger = createLogger(config.LOG_LEVEL, name);
    const service = await start(config, logger);
    let stopping = false;
    const shutdown = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      logger.info(`shutting down: finishing ${inFlight}`, { signal, graceMs: config.SHUTDOWN_GRACE_MS });
      const force = setTimeout(() => {
        logger.warn(`grace period over; exiting with ${inFlight} unfinished`);
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
  };
  main().catch((error: unknown) => {
    process.stderr.write(`onnx-batch ${name}: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  });
}
