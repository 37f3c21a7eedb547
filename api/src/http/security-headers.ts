import type { IncomingMessage, ServerResponse } from 'node:http';
import helmet from 'helmet';

/** helmet's defaults: the security headers of every answer, whichever path serves it. */
export const securityHeaders = helmet();

/**
 * The headers `securityHeaders` sets, read once by running it against a recorder. With helmet's
 * defaults they do not depend on the request, so the fast poll path sets this list instead of
 * running the middleware per request; a setting that made them depend on it would fail here.
 */
export function staticSecurityHeaders(): ReadonlyArray<readonly [string, string]> {
  const headers = new Map<string, string>();
  const recorder = {
    setHeader(name: string, value: unknown) {
      headers.set(name, String(value));
      return recorder;
    },
    removeHeader(name: string) {
      headers.delete(name);
    },
  };
  let ran = false;
  securityHeaders({ headers: {}, method: 'GET' } as IncomingMessage, recorder as unknown as ServerResponse, (error?: unknown) => {
    if (error) throw error instanceof Error ? error : new Error('helmet refused its own settings');
    ran = true;
  });
  if (!ran) throw new Error('helmet did not finish synchronously: its headers cannot be precomputed');
  return [...headers];
}
