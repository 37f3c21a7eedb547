import { loadConfig, type Config } from './config';
import type { ProcessKind } from './contracts';
import { createLogger, type Logger } from './logger';

export interface RunningService {
  /** Finishes the work in hand, closes every connection; bounded by the grace period. */
  close(): Promise<void>;
}

/**
 * The `main` of a process: read the configuration, start the service, and on SIGTERM/SIGINT
 * close it within the grace period (SHUTDOWN_GRACE_MS unless `graceOf` names another setting).
 * A start-up failure (bad configuration, bad model repository) is printed naming what is wrong,
 * and the process exits non-zero.
 */
export function runService(
  name: ProcessKind,
  start: (config: Config, logger: Logger) => Promise<RunningService>,
  inFlight: string,
  graceOf: (config: Config) => number = (config) => config.SHUTDOWN_GRACE_MS,
): void {
  const main = async (): Promise<void> => {
    const config = loadConfig();
    const logger = createLogger(config.LOG_LEVEL, name);
    const service = await start(config, logger);
    let stopping = false;
    const shutdown = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      const graceMs = graceOf(config);
      logger.info(`shutting down: finishing ${inFlight}`, { signal, graceMs });
      const force = setTimeout(() => {
        logger.warn(`grace period over; exiting with ${inFlight} unfinished`);
        process.exit(1);
      }, graceMs);
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
