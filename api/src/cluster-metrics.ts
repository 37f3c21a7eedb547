import cluster, { type Worker } from 'node:cluster';
import { AggregatorRegistry, type Registry } from 'prom-client';

/**
 * `/metrics` of an API that runs as several processes (API_PROCESSES > 1) on one port. A scrape
 * lands on whichever process the primary hands the connection to, so that process asks the
 * primary, which collects every listening process's registry over the cluster IPC channel and
 * aggregates them with prom-client's `AggregatorRegistry` (counters and histograms summed; a
 * gauge read from Redis, the same in every process, declares `aggregator: 'max'`). One scrape
 * of the port thus sees the whole API of the host, as if it were one process.
 *
 * Protocol: child → primary `scrape` {id}; primary → each child `collect` {id}; child → primary
 * `collected` {id, metrics}; primary → asking child `scraped` {id, text | error}.
 */
const SCRAPE = 'onnx-batch:metrics-scrape';
const SCRAPED = 'onnx-batch:metrics-scraped';
const COLLECT = 'onnx-batch:metrics-collect';
const COLLECTED = 'onnx-batch:metrics-collected';

/** How long the primary waits for every process's registry; the asking child waits a little longer. */
export const CLUSTER_SCRAPE_TIMEOUT_MS = 5000;

interface Message {
  type?: unknown;
  id?: unknown;
  text?: unknown;
  error?: unknown;
  metrics?: unknown;
}

const isMessage = (value: unknown, type: string): value is Message & { id: number } =>
  typeof value === 'object' && value !== null && (value as Message).type === type && typeof (value as Message).id === 'number';

/** True in a process forked by the API's cluster primary. */
export function isClusterChild(): boolean {
  return cluster.isWorker;
}

/**
 * In a cluster child: answers the primary's requests for this process's metrics. Answers a
 * function that stops answering (on close).
 */
export function shareMetricsWithPrimary(registry: Registry): () => void {
  const onMessage = (message: unknown): void => {
    if (!isMessage(message, COLLECT)) return;
    // The primary may be gone by the time the registry is read: a child then exits on its own.
    const answer = (reply: object): void => {
      if (process.connected) process.send?.(reply);
    };
    registry.getMetricsAsJSON().then(
      (metrics) => answer({ type: COLLECTED, id: message.id, metrics }),
      (error: unknown) => answer({ type: COLLECTED, id: message.id, error: String(error) }),
    );
  };
  process.on('message', onMessage);
  return () => process.off('message', onMessage);
}

let nextScrape = 0;

/** In a cluster child: the metrics of every API process of the host, aggregated by the primary. */
export function scrapeCluster(): Promise<string> {
  const id = nextScrape++;
  return new Promise((resolve, reject) => {
    const finish = (): void => {
      clearTimeout(timer);
      process.off('message', onMessage);
    };
    const timer = setTimeout(() => {
      finish();
      reject(new Error('the cluster primary did not answer'));
    }, CLUSTER_SCRAPE_TIMEOUT_MS + 1000);
    const onMessage = (message: unknown): void => {
      if (!isMessage(message, SCRAPED) || message.id !== id) return;
      finish();
      if (typeof message.text === 'string') resolve(message.text);
      else reject(new Error(typeof message.error === 'string' ? message.error : 'unknown error'));
    };
    process.on('message', onMessage);
    if (!process.send || !process.connected) {
      finish();
      reject(new Error('no channel to the cluster primary'));
      return;
    }
    process.send({ type: SCRAPE, id });
  });
}

/**
 * In the primary: serves children's scrapes by collecting from `listening()` (the children that
 * have started serving; one still starting up has no registry yet and is left out).
 */
export function serveClusterScrapes(listening: () => Worker[]): void {
  let nextCollect = 0;
  const pending = new Map<number, { waiting: number; metrics: unknown[]; done: (error: Error | null) => void }>();
  cluster.on('message', (worker: Worker, message: unknown) => {
    if (isMessage(message, COLLECTED)) {
      const collect = pending.get(message.id);
      if (!collect) return;
      if (message.error !== undefined) {
        collect.done(
          new Error(`process ${worker.process.pid ?? '?'}: ${typeof message.error === 'string' ? message.error : 'unknown error'}`),
        );
        return;
      }
      collect.metrics.push(message.metrics);
      if (--collect.waiting === 0) collect.done(null);
      return;
    }
    if (!isMessage(message, SCRAPE)) return;
    const scrapeId = message.id;
    const reply = (answer: { text: string } | { error: string }): void => {
      if (worker.isConnected()) worker.send({ type: SCRAPED, id: scrapeId, ...answer });
    };
    const targets = listening().filter((w) => w.isConnected());
    const id = nextCollect++;
    const collect = {
      waiting: targets.length,
      metrics: [] as unknown[],
      done: (error: Error | null): void => {
        if (!pending.delete(id)) return;
        clearTimeout(timer);
        if (error) {
          reply({ error: error.message });
          return;
        }
        try {
          const registry = AggregatorRegistry.aggregate(collect.metrics as Parameters<typeof AggregatorRegistry.aggregate>[0]);
          registry.metrics().then(
            (text) => reply({ text }),
            (e: unknown) => reply({ error: String(e) }),
          );
        } catch (e) {
          reply({ error: String(e) });
        }
      },
    };
    const timer = setTimeout(
      () =>
        collect.done(
          new Error(`${collect.waiting} of ${targets.length} API processes did not answer within ${CLUSTER_SCRAPE_TIMEOUT_MS} ms`),
        ),
      CLUSTER_SCRAPE_TIMEOUT_MS,
    );
    pending.set(id, collect);
    if (targets.length === 0) {
      collect.done(null);
      return;
    }
    for (const target of targets) target.send({ type: COLLECT, id });
  });
}
