import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RequestHandler } from 'express';
import helmet from 'helmet';

/**
 * The headers helmet's defaults set, read once by running helmet against a recorder. They do
 * not depend on the request, so every answer gets this list instead of twelve middleware calls
 * (Express and the fast poll path alike); a helmet setting that made them depend on the request
 * would fail here, at start-up.
 */
function helmetHeaders(): ReadonlyArray<readonly [string, string]> {
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
  helmet()({ headers: {}, method: 'GET' } as IncomingMessage, recorder as unknown as ServerResponse, (error?: unknown) => {
    if (error) throw error instanceof Error ? error : new Error('helmet refused its own settings');
    ran = true;
  });
  if (!ran) throw new Error('helmet did not finish synchronously: its headers cannot be read once');
  return [...headers];
}

const SECURITY_HEADERS = helmetHeaders();

/** Sets the security headers every answer carries (a route may override one, as /docs does its CSP). */
export function setSecurityHeaders(res: ServerResponse): void {
  for (const [name, value] of SECURITY_HEADERS) res.setHeader(name, value);
}

/** setSecurityHeaders as Express middleware. */
export const securityHeaders: RequestHandler = (_req, res, next) => {
  setSecurityHeaders(res);
  next();
};
