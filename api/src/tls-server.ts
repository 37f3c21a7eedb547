import { readFile } from 'node:fs/promises';
import { createServer as createHttpServer, type RequestListener, type Server } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { Config, Logger } from '@onnx-batch/shared';

/** The API's listening server: HTTPS when a certificate is configured, plain HTTP otherwise. */
export interface ApiServer {
  readonly server: Server;
  readonly protocol: 'http' | 'https';
  /** Stops watching the certificate files. */
  stopWatching(): void;
}

type TlsConfig = Pick<Config, 'TLS_CERT_FILE' | 'TLS_KEY_FILE' | 'TLS_RELOAD_INTERVAL_MS' | 'HTTP_REQUEST_TIMEOUT_MS'>;

/** Node's own header deadline, kept at most the request's (Node requires it). */
const HEADERS_TIMEOUT_MS = 60_000;

/**
 * How long a request may take to arrive (HTTP_REQUEST_TIMEOUT_MS): a client trickling its headers
 * or body holds a connection at most that long (and a check's interval more), then Node answers
 * 408 and closes it. Node looks for late requests every `connectionsCheckingInterval`, 30 s by
 * default: a quarter of the timeout here, between 1 and 30 s.
 */
function timeouts(config: TlsConfig): { requestTimeout: number; headersTimeout: number; connectionsCheckingInterval: number } {
  const requestTimeout = config.HTTP_REQUEST_TIMEOUT_MS;
  return {
    requestTimeout,
    headersTimeout: requestTimeout > 0 ? Math.min(HEADERS_TIMEOUT_MS, requestTimeout) : HEADERS_TIMEOUT_MS,
    connectionsCheckingInterval: Math.max(1000, Math.min(30_000, Math.floor((requestTimeout || HEADERS_TIMEOUT_MS) / 4))),
  };
}

/**
 * Creates the API's server. With TLS_CERT_FILE and TLS_KEY_FILE it serves HTTPS and re-reads
 * both files every TLS_RELOAD_INTERVAL_MS: a renewed certificate (files replaced on disk, as
 * cert-manager or certbot do) is served to new connections without a restart. A pair that does
 * not load (a key and certificate that do not match while one of them is being replaced) is
 * logged and tried again at the next look; the previous pair stays in use meanwhile.
 */
export async function createApiServer(config: TlsConfig, listener: RequestListener, logger: Logger): Promise<ApiServer> {
  if (!config.TLS_CERT_FILE) {
    return { server: createHttpServer(timeouts(config), listener), protocol: 'http', stopWatching: () => undefined };
  }
  const read = async (): Promise<{ cert: Buffer; key: Buffer }> => ({
    cert: await readFile(config.TLS_CERT_FILE),
    key: await readFile(config.TLS_KEY_FILE),
  });
  let loaded = await read();
  const server: HttpsServer = createHttpsServer({ ...loaded, ...timeouts(config) }, listener);
  let looking = false;
  const timer = setInterval(() => {
    if (looking) return;
    looking = true;
    read()
      .then((next) => {
        if (next.cert.equals(loaded.cert) && next.key.equals(loaded.key)) return;
        server.setSecureContext(next);
        loaded = next;
        logger.info('TLS certificate reloaded', { certFile: config.TLS_CERT_FILE });
      })
      .catch((error: unknown) =>
        logger.warn('could not load the TLS certificate; still serving the previous one', {
          certFile: config.TLS_CERT_FILE,
          error: String(error),
        }),
      )
      .finally(() => {
        looking = false;
      });
  }, config.TLS_RELOAD_INTERVAL_MS);
  timer.unref();
  return { server, protocol: 'https', stopWatching: () => clearInterval(timer) };
}
