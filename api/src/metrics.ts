import type { ServerResponse } from 'node:http';
import type { Request, RequestHandler, Response } from 'express';
import type { Queue } from 'bullmq';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { ProblemError } from '@onnx-batch/contracts';
import { METRIC_PREFIX, type JobRecord, type Logger } from '@onnx-batch/shared';
import { isClusterChild, scrapeCluster, shareMetricsWithPrimary } from './cluster-metrics';

/** BullMQ states exported as `onnx_batch_queue_jobs{queue,state}`. */
export const QUEUE_STATES = ['waiting', 'prioritized', 'active', 'delayed', 'failed', 'waiting-children'] as const;

/** The label of a request that matched no route (404s, and refusals before routing: 401, 403, 429). */
export const UNMATCHED_ROUTE = '(unmatched)';

/** How long a scrape waits for Redis before giving up on the queue gauges. */
const QUEUE_COLLECT_TIMEOUT_MS = 2000;

/** Request durations: 1 ms … 60 s (long-poll waits and synchronous predicts last up to a minute). */
const HTTP_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/**
 * The route pattern a request matched (`/v1/batch-result/:id`), never its raw URL: the label
 * stays bounded whatever clients send. Express gives the pattern relative to its router; the
 * router's mount path is the leading part of the URL that the pattern did not consume (it is
 * read from the URL because Express resets `req.baseUrl` when an error leaves the router).
 */
export function routeLabel(req: Request): string {
  const routePath: unknown = (req.route as { path?: unknown } | undefined)?.path;
  if (typeof routePath !== 'string') {
    // Middleware that answered by itself at a mount point (static assets of /docs, say).
    return req.baseUrl ? `${req.baseUrl.toLowerCase()}/*` : UNMATCHED_ROUTE;
  }
  const urlSegments = (req.originalUrl.split('?')[0] ?? '').split('/').filter(Boolean);
  const routeSegments = routePath.split('/').filter(Boolean);
  const mountSegments = urlSegments.length - routeSegments.length;
  if (mountSegments < 0) return UNMATCHED_ROUTE;
  const mount = urlSegments.slice(0, mountSegments).map((s) => s.toLowerCase());
  return `/${[...mount, ...routeSegments].join('/')}`;
}

export async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Worker connections consuming `queue` (BullMQ getWorkers, from CLIENT LIST, as getWorkersCount
 * counts them). BullMQ answers a server that does not know CLIENT (`ERR unknown command 'client'`)
 * with one made-up worker, which has no `rawname`: that, like any refusal or a Redis that does not
 * answer in time, throws, so a count is never invented.
 */
export async function queueWorkerCount(queue: Queue, ms = QUEUE_COLLECT_TIMEOUT_MS): Promise<number> {
  const workers = await withTimeout(queue.getWorkers(), ms);
  if (workers.some((worker) => worker.rawname === undefined)) throw new Error('Redis refused CLIENT LIST (unknown command)');
  return workers.length;
}

/**
 * The API's Prometheus metrics: request durations by route, jobs submitted and cancelled, queue
 * depths read from BullMQ on every scrape, and Node's process metrics. Each service has its own
 * registry, so an API and a worker can share a process (as in the tests). When the API runs as
 * several processes (API_PROCESSES), `/metrics` answers the sum of all of them (cluster-metrics.ts);
 * gauges read from Redis are the same in every process and aggregate with `max`.
 */
export class ApiMetrics {
  readonly registry = new Registry();
  private readonly httpDuration: Histogram<'method' | 'route' | 'status'>;
  private readonly submitted: Counter<'model' | 'version'>;
  private readonly cancelled: Counter<'model' | 'version'>;
  private readonly collectErrors: Counter<'queue'>;
  private readonly cacheLookups: Counter<'model' | 'version' | 'outcome'>;
  private readonly stopSharing: () => void;

  constructor(
    private readonly queues: readonly Queue[],
    private readonly logger: Logger,
  ) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: METRIC_PREFIX });
    this.httpDuration = new Histogram({
      name: `${METRIC_PREFIX}http_request_duration_seconds`,
      help: 'HTTP requests by method, route pattern and status, and how long they took.',
      labelNames: ['method', 'route', 'status'],
      buckets: HTTP_BUCKETS,
      registers,
    });
    this.submitted = new Counter({
      name: `${METRIC_PREFIX}jobs_submitted_total`,
      help: 'Jobs accepted (202) by model and version; an Idempotency-Key replay is not counted again.',
      labelNames: ['model', 'version'],
      registers,
    });
    this.cancelled = new Counter({
      name: `${METRIC_PREFIX}jobs_cancelled_total`,
      help: 'Jobs cancelled (POST …/cancel, or DELETE of an unfinished job) by model and version.',
      labelNames: ['model', 'version'],
      registers,
    });
    this.cacheLookups = new Counter({
      name: `${METRIC_PREFIX}prediction_cache_lookups_total`,
      help:
        'Synchronous predicts of models with a prediction cache, by outcome: hit (every row cached: answered without a job) ' +
        'or miss (a job ran).',
      labelNames: ['model', 'version', 'outcome'],
      registers,
    });
    this.collectErrors = new Counter({
      name: `${METRIC_PREFIX}queue_collect_errors_total`,
      help: 'Scrapes whose queue gauges could not be read from Redis (the gauges are then left out).',
      labelNames: ['queue'],
      registers,
    });
    const queueJobs: Gauge<'queue' | 'state'> = new Gauge({
      name: `${METRIC_PREFIX}queue_jobs`,
      help: 'BullMQ jobs by queue and state, read from Redis at scrape time (the same for every API replica: aggregate with max).',
      labelNames: ['queue', 'state'],
      registers,
      aggregator: 'max',
      collect: () => this.collectQueueJobs(queueJobs),
    });
    const queueWorkers: Gauge<'queue'> = new Gauge({
      name: `${METRIC_PREFIX}queue_workers`,
      help: 'Worker connections consuming each queue (BullMQ getWorkersCount, from CLIENT LIST), wherever they run.',
      labelNames: ['queue'],
      registers,
      aggregator: 'max',
      collect: () => this.collectQueueWorkers(queueWorkers),
    });
    this.stopSharing = isClusterChild() ? shareMetricsWithPrimary(this.registry) : () => undefined;
  }

  private async collectQueueJobs(gauge: Gauge<'queue' | 'state'>): Promise<void> {
    gauge.reset();
    await Promise.all(
      this.queues.map(async (queue) => {
        try {
          const counts = await withTimeout(queue.getJobCounts(...QUEUE_STATES), QUEUE_COLLECT_TIMEOUT_MS);
          // inc, not set: the shards of a queue (QUEUE_SHARDS) add up under its name.
          for (const state of QUEUE_STATES) gauge.inc({ queue: queue.name, state }, counts[state] ?? 0);
        } catch (error) {
          this.collectErrors.inc({ queue: queue.name });
          this.logger.warn('could not read queue counts for metrics', { queue: queue.name, error: (error as Error).message });
        }
      }),
    );
  }

  private async collectQueueWorkers(gauge: Gauge<'queue'>): Promise<void> {
    gauge.reset();
    await Promise.all(
      this.queues.map(async (queue) => {
        try {
          gauge.set({ queue: queue.name }, await queueWorkerCount(queue));
        } catch {
          // CLIENT LIST may be refused (some managed Redis): the series is then absent.
        }
      }),
    );
  }

  /** A synchronous predict of a cached model: answered from the cache (hit), or not (miss). */
  readonly observeCacheLookup = (manifest: { name: string; version: string }, hit: boolean): void => {
    this.cacheLookups.inc({ model: manifest.name, version: manifest.version, outcome: hit ? 'hit' : 'miss' });
  };

  /** Times every request; mount it before the routers. */
  readonly httpMiddleware: RequestHandler = (req, res, next) => {
    this.timeRequest(req.method, res, () => routeLabel(req));
    next();
  };

  /** Observes the request's duration under its route pattern (asked when the answer ends). */
  timeRequest(method: string, res: ServerResponse, route: () => string): void {
    const started = process.hrtime.bigint();
    res.once('finish', () => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      this.httpDuration.observe({ method, route: route(), status: String(res.statusCode) }, seconds);
    });
  }

  /** `GET /metrics` in the Prometheus text format. */
  readonly handler = async (_req: Request, res: Response): Promise<void> => {
    const body = isClusterChild() ? await this.scrapeAllProcesses() : await this.registry.metrics();
    res.setHeader('Cache-Control', 'no-store');
    res.type(this.registry.contentType).send(body);
  };

  /** A job was accepted (a new one: an idempotent replay is not told). */
  readonly jobSubmitted = (record: JobRecord): void => {
    this.submitted.inc({ model: record.model, version: record.version });
  };

  /** A job was cancelled (POST …/cancel, or DELETE of an unfinished job). */
  readonly jobCancelled = (record: JobRecord): void => {
    this.cancelled.inc({ model: record.model, version: record.version });
  };

  /** Every API process of the host, or a 503: a partial sum would look like counters going back. */
  private async scrapeAllProcesses(): Promise<string> {
    try {
      return await scrapeCluster();
    } catch (error) {
      this.logger.warn('could not gather the metrics of every API process', { error: (error as Error).message });
      throw new ProblemError('OB_ERR_NOT_READY', `the metrics of every API process could not be gathered: ${(error as Error).message}`);
    }
  }

  close(): void {
    this.stopSharing();
    this.registry.clear();
  }
}
