/** What the tests need of an Express 5 (router 2.x) layer. */
interface Layer {
  rawPath?: string | RegExp | (string | RegExp)[];
  route?: { path: string | string[]; methods: Record<string, boolean> };
  handle: { stack?: Layer[] };
}

export interface ServedRoute {
  method: string;
  /** OpenAPI form: `/v1/batch-result/{id}`. */
  path: string;
}

function join(prefix: string, path: string): string {
  const joined = `${prefix}/${path}`.replace(/\/+/g, '/');
  return joined.length > 1 ? joined.replace(/\/$/, '') : joined;
}

/** Express path parameters (`:id`) in OpenAPI form (`{id}`). */
export function toOpenApiPath(path: string): string {
  return path.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
}

/**
 * Every route an Express app serves, found by walking its router stack (Express 5:
 * `app.router.stack`) and the stacks of the routers mounted in it. Mounted sub-applications
 * and plain middleware are not routes and are not listed.
 */
export function servedRoutes(app: unknown): ServedRoute[] {
  const router = (app as { router?: { stack?: Layer[] } }).router;
  if (!router?.stack) throw new Error('not an Express 5 app: app.router.stack is missing');
  const found: ServedRoute[] = [];
  const walk = (stack: Layer[], prefix: string): void => {
    for (const layer of stack) {
      const raw = layer.rawPath ?? '/';
      const paths = (Array.isArray(raw) ? raw : [raw]).map((p) => {
        if (typeof p !== 'string') throw new Error(`route or mount path ${String(p)} is a RegExp: describe it by hand`);
        return p;
      });
      if (layer.route) {
        const methods = Object.keys(layer.route.methods).filter((m) => m !== '_all');
        for (const path of paths)
          for (const method of methods) found.push({ method: method.toUpperCase(), path: toOpenApiPath(join(prefix, path)) });
      } else if (Array.isArray(layer.handle.stack)) {
        for (const path of paths) walk(layer.handle.stack, join(prefix, path));
      }
    }
  };
  walk(router.stack, '');
  return found;
}
