import { Router, type RequestHandler } from 'express';
import swaggerUi from 'swagger-ui-express';
import { json, type Paths } from '../openapi-parts';

/** Where the document comes from (openapi.ts's OpenApiProvider): its JSON text, as it is now. */
export interface OpenApiSource {
  json(): string;
}

export const OPENAPI_PATH = '/openapi.json';
export const DOCS_PATH = '/docs';

/**
 * The docs page's own Content-Security-Policy: Swagger UI's scripts, styles and fonts are all
 * served from this origin (swagger-ui-dist, no CDN) and it has no inline script, so `'self'`
 * is enough; only its inline styles need 'unsafe-inline'. Set on every /docs answer, it holds
 * whatever CSP the rest of the API sends.
 */
export const DOCS_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "font-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

const docsCsp: RequestHandler = (_req, res, next) => {
  res.setHeader('Content-Security-Policy', DOCS_CSP);
  next();
};

/** `GET /openapi.json` (generated, see openapi.ts) and Swagger UI over it at `/docs`. */
export function docsRoutes(openapi: OpenApiSource): Router {
  const router = Router();
  router.get(OPENAPI_PATH, (_req, res) => {
    res.setHeader('Cache-Control', 'no-cache');
    res.type('application/json').send(openapi.json());
  });
  const options: swaggerUi.SwaggerUiOptions = {
    swaggerUrl: OPENAPI_PATH,
    customSiteTitle: 'onnx-batch API',
    swaggerOptions: {
      // No call to the public validator badge service: everything stays on this origin.
      validatorUrl: null,
      displayRequestDuration: true,
      docExpansion: 'list',
      defaultModelsExpandDepth: 0,
    },
  };
  // serveFiles (not serve): the init script is this router's own, not a module-wide global.
  // `/docs` redirects to `/docs/`, whose page loads its assets relative to it.
  router.use(DOCS_PATH, docsCsp, ...swaggerUi.serveFiles(undefined, options));
  router.get(DOCS_PATH, docsCsp, swaggerUi.setup(undefined, options));
  return router;
}

/** OpenAPI: the fragment of these routes (api/src/openapi.ts merges it). Open: no key needed. */
export function docsPaths(): Paths {
  const tags = ['operations'];
  const open = { security: [] };
  const html = { content: { 'text/html': { schema: { type: 'string' } } } };
  return {
    [OPENAPI_PATH]: {
      get: {
        ...open,
        tags,
        operationId: 'openapi',
        summary: 'This document (rebuilt when the model repository changes).',
        responses: { '200': { description: 'OpenAPI 3.1.', ...json({ type: 'object' }) } },
      },
    },
    [DOCS_PATH]: {
      get: {
        ...open,
        tags,
        operationId: 'docs',
        summary: 'Swagger UI over this document.',
        responses: { '200': { description: 'The UI.', ...html }, '301': { description: 'To `/docs/`.' } },
      },
    },
  };
}
