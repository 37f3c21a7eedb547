import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { Logger } from '@onnx-batch/shared';

export interface MetricsServer {
  /** `http://host:port`, for logs and tests. */
  readonly url: string;
  close(): Promise<void>;
}

/**
 * A worker process's own small HTTP server: `GET /metrics` (Prometheus) and `GET /livez` (the
 * event loop answers: a probe for orchestrators). Port 0 in METRICS_PORT means no server.
 * A port already taken (several workers started on one host with the same METRICS_PORT) is
 * logged and the worker runs on without metrics: metrics never stop work.
 */
export async function startMetricsServer(
  registry: Registry,
  options: { port: number; host: string },
  logger: Logger,
): Promise<MetricsServer | null> {
  if (options.port === 0) return null;
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain' }).end('method not allowed\n');
      return;
    }
    if (path === '/livez') {
      res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"status":"ok"}');
      return;
    }
    if (path !== '/metrics') {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found: try /metrics\n');
      return;
    }
    registry.metrics().then(
      (body) => res.writeHead(200, { 'Content-Type': registry.contentType, 'Cache-Control': 'no-store' }).end(body),
      (error: unknown) => {
        logger.warn('metrics could not be collected', { error: String(error) });
        res.writeHead(500, { 'Content-Type': 'text/plain' }).end('metrics could not be collected\n');
      },
    );
  });
  server.keepAliveTimeout = 65_000; // longer than Prometheus' scrape interval, so connections are reused
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port, options.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (error) {
    logger.warn('worker metrics server not started: the port could not be opened; this worker runs without /metrics', {
      port: options.port,
      host: options.host,
      error: (error as Error).message,
    });
    return null;
  }
  server.on('error', (error) => logger.warn('worker metrics server error', { error: error.message }));
  server.unref();
  const address = server.address() as AddressInfo;
  const url = `http://${options.host.includes(':') ? `[${options.host}]` : options.host}:${address.port}`;
  logger.info('worker metrics listening', { url: `${url}/metrics` });
  return {
    url,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
