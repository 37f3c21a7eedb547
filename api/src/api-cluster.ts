import cluster, { type Worker } from 'node:cluster';
import type { Config, Logger } from '@onnx-batch/shared';
import { serveClusterScrapes } from './cluster-metrics';

/** First delay before a crashed API process is replaced; doubles while replacements die before listening. */
const RESTART_DELAY_MS = 1000;
const MAX_RESTART_DELAY_MS = 30_000;
/** Children exit by themselves when SHUTDOWN_GRACE_MS is over; this margin is for one that hangs anyway. */
const KILL_MARGIN_MS = 2000;

/**
 * The primary of an API running as API_PROCESSES processes on one port (node:cluster). It only
 * supervises: it forks the processes (each a complete API, `runService` in api-service.ts), which
 * share the listening socket (the primary hands each new connection to the next process in turn),
 * replaces one that exits, answers `/metrics` scrapes for all of them (cluster-metrics.ts), and
 * on SIGTERM/SIGINT passes SIGTERM on and exits once every process has closed. Everything the
 * processes must agree on lives in Redis already: rate limits (leased counters), idempotency (one
 * Lua script), job events (each process subscribes), so any process may answer any request.
 *
 * A process that dies before any has ever listened is a start-up failure (a bad model repository,
 * say): the primary stops and exits 1, as a single process would.
 */
export function runApiCluster(config: Config, logger: Logger): void {
  const live = new Set<Worker>();
  const listening = new Set<Worker>();
  const restarts = new Set<NodeJS.Timeout>();
  let anyListened = false;
  let restartDelay = RESTART_DELAY_MS;
  let stopping = false;
  let unclean = false;

  const fork = (): void => {
    const worker = cluster.fork();
    live.add(worker);
    // A message to a process that just died fails here rather than crashing the primary.
    worker.on('error', (error: Error) => logger.warn('API process channel error', { pid: worker.process.pid, error: error.message }));
    worker.once('listening', () => {
      listening.add(worker);
      anyListened = true;
      restartDelay = RESTART_DELAY_MS;
    });
  };

  const exitWhenEmpty = (): void => {
    if (live.size > 0) return;
    logger.info('stopped', { processes: config.API_PROCESSES });
    process.exit(unclean ? 1 : 0);
  };

  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    for (const timer of restarts) clearTimeout(timer);
    logger.info('shutting down: stopping the API processes', { signal, processes: live.size, graceMs: config.SHUTDOWN_GRACE_MS });
    for (const worker of live) worker.process.kill('SIGTERM');
    const force = setTimeout(() => {
      logger.warn('grace period over; killing the API processes still running', { pids: [...live].map((w) => w.process.pid) });
      unclean = true;
      for (const worker of live) worker.process.kill('SIGKILL');
    }, config.SHUTDOWN_GRACE_MS + KILL_MARGIN_MS);
    force.unref();
    exitWhenEmpty();
  };

  cluster.on('exit', (worker, code, signal) => {
    live.delete(worker);
    const hadListened = listening.delete(worker);
    const pid = worker.process.pid;
    if (stopping) {
      if (code !== 0 && signal !== 'SIGTERM') unclean = true;
      exitWhenEmpty();
      return;
    }
    if (!anyListened) {
      logger.error('an API process failed to start; stopping', { pid, code, signal });
      unclean = true;
      stop('start-up failure');
      return;
    }
    logger.error('an API process exited; starting another', { pid, code, signal, inMs: restartDelay });
    const timer = setTimeout(() => {
      restarts.delete(timer);
      if (!stopping) fork();
    }, restartDelay);
    restarts.add(timer);
    if (!hadListened) restartDelay = Math.min(MAX_RESTART_DELAY_MS, restartDelay * 2);
  });

  serveClusterScrapes(() => [...listening]);
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  for (let i = 0; i < config.API_PROCESSES; i++) fork();
  logger.info('api cluster started', { processes: config.API_PROCESSES, port: config.PORT });
}
