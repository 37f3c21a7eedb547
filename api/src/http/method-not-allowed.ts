import type { Express, RequestHandler } from 'express';
import { ProblemError } from '@onnx-batch/contracts';

/** What this needs of an Express 5 (router 2.x) layer: its own non-mutating `match`, and its route or sub-router. */
interface Layer {
  match(path: string): { path: string } | false;
  route?: { methods: Record<string, boolean | undefined> };
  handle: { stack?: Layer[] };
}

/** The order methods are listed in; any other method follows, alphabetically. */
const ORDER = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];

function sorted(methods: Set<string>): string[] {
  const rank = (m: string): number => (ORDER.includes(m) ? ORDER.indexOf(m) : ORDER.length);
  return [...methods].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
}

/**
 * The methods the routes of `stack` serve at `path`, found the way the router itself dispatches:
 * each layer's own matcher, a mounted router's prefix trimmed before its stack is searched.
 * Plain middleware and mounted sub-applications are not routes and add nothing. `'*'` stands
 * for a route that takes any method (`router.all`).
 */
function methodsAt(stack: readonly Layer[], path: string, found: Set<string>): void {
  for (const layer of stack) {
    let match: { path: string } | false;
    try {
      match = layer.match(path);
    } catch {
      continue; // a parameter that is not valid percent-encoding: the router itself answers that
    }
    if (!match) continue;
    if (layer.route) {
      for (const [method, served] of Object.entries(layer.route.methods))
        if (served) found.add(method === '_all' ? '*' : method.toUpperCase());
    } else if (Array.isArray(layer.handle.stack)) {
      const rest = path.slice(match.path.length);
      methodsAt(layer.handle.stack, rest.startsWith('/') ? rest : `/${rest}`, found);
    }
  }
}

/**
 * Answers what the route table alone can answer, before anything else runs: a method the path's
 * routes do not serve is 405 with `Allow`, and OPTIONS is 204 with `Allow`. The table is the
 * app's own router, walked per request, so it cannot drift from the routes. It runs before
 * authentication: it reveals only the route table, which `/openapi.json` publishes anyway.
 * A path no route matches passes on (404, or a mounted sub-application).
 */
export function methodNotAllowed(app: Express): RequestHandler {
  return (req, res, next) => {
    let path: string | undefined;
    try {
      path = req.path;
    } catch {
      path = undefined; // a request target that cannot be parsed: the router answers that
    }
    const served = new Set<string>();
    if (path !== undefined) methodsAt((app as unknown as { router: { stack: Layer[] } }).router.stack, path, served);
    if (served.size === 0 || served.has('*')) {
      next();
      return;
    }
    if (served.has('GET')) served.add('HEAD');
    served.add('OPTIONS');
    if (req.method === 'OPTIONS' || !served.has(req.method)) res.setHeader('Allow', sorted(served).join(', '));
    if (req.method === 'OPTIONS') {
      res.status(204).end();
      return;
    }
    if (!served.has(req.method)) {
      throw new ProblemError(
        'OB_ERR_METHOD_NOT_ALLOWED',
        `${req.method} is not served at ${(path ?? '').slice(0, 256)}; it serves ${sorted(served).join(', ')}`,
      );
    }
    next();
  };
}
