import { existsSync } from 'node:fs';
import path from 'node:path';
import express, { Router, type RequestHandler } from 'express';
import { ProblemError } from '@onnx-batch/contracts';
import { problemResponses, type Paths } from '../openapi-parts';

export const CONSOLE_PATH = '/console';

/**
 * The console's own Content-Security-Policy: its scripts and one stylesheet come from this origin,
 * it renders with DOM calls only, so nothing inline and nothing evaluated is allowed.
 */
export const CONSOLE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
  "form-action 'self'",
].join('; ');

/** Where the console's files are: the HTML shell and CSS as written, the scripts as tsc compiled them. */
const CONSOLE_ROOT = path.resolve(__dirname, '..', '..', 'console');
const STATIC_DIR = path.join(CONSOLE_ROOT, 'static');
const SCRIPTS_DIR = path.join(CONSOLE_ROOT, 'dist');
/** Only these names are served: compiled modules and the stylesheet (not declarations or build info). */
const ASSET = /^[a-z][a-z0-9-]*\.(js|css)$/;

const consoleHeaders: RequestHandler = (_req, res, next) => {
  res.setHeader('Content-Security-Policy', CONSOLE_CSP);
  res.setHeader('Referrer-Policy', 'no-referrer');
  next();
};

/**
 * `/console`: the shell (no data in it; `no-store`) and its assets, revalidated by ETag and
 * Last-Modified on every load (`no-cache`), so a deploy is picked up without hashed names.
 */
export function consolePageRoutes(): Router {
  const router = Router();
  // serve-static, not res.sendFile: sendFile takes its ETag setting from the app, which sends none (ETags are the routes' own).
  const files = (root: string, cacheControl: string): RequestHandler =>
    express.static(root, {
      etag: true,
      lastModified: true,
      cacheControl: false,
      index: false,
      dotfiles: 'deny',
      fallthrough: false,
      setHeaders: (res) => res.setHeader('Cache-Control', cacheControl),
    });
  const shell = files(STATIC_DIR, 'no-store');
  const styles = files(STATIC_DIR, 'no-cache');
  const scripts = files(SCRIPTS_DIR, 'no-cache');
  router.use(CONSOLE_PATH, consoleHeaders);
  router.get([CONSOLE_PATH, `${CONSOLE_PATH}/`], (req, res, next) => {
    req.url = '/index.html';
    shell(req, res, next);
  });
  router.get(`${CONSOLE_PATH}/assets/:file`, (req, res, next) => {
    const file = String(req.params.file);
    const css = file.endsWith('.css');
    if (!ASSET.test(file) || !existsSync(path.join(css ? STATIC_DIR : SCRIPTS_DIR, file))) {
      throw new ProblemError('OB_ERR_NOT_FOUND', `the console has no asset '${file.slice(0, 64)}'`);
    }
    req.url = `/${file}`;
    (css ? styles : scripts)(req, res, next);
  });
  return router;
}

/** OpenAPI: the fragment of these routes (api/src/openapi.ts merges it). Open: the shell and its assets carry no data. */
export function consolePagePaths(): Paths {
  const tags = ['operations'];
  const open = { security: [] };
  return {
    [CONSOLE_PATH]: {
      get: {
        ...open,
        tags,
        operationId: 'console',
        summary: 'The web console (docs/operations.md#the-console): an HTML shell that reads this API with the key typed into it.',
        responses: {
          '200': {
            description: 'The shell (no data; `Cache-Control: no-store`).',
            content: { 'text/html': { schema: { type: 'string' } } },
          },
        },
      },
    },
    [`${CONSOLE_PATH}/assets/{file}`]: {
      get: {
        ...open,
        tags,
        operationId: 'consoleAsset',
        summary: 'A script module or the stylesheet of the console (revalidated by ETag and Last-Modified).',
        parameters: [{ name: 'file', in: 'path', required: true, schema: { type: 'string', pattern: ASSET.source } }],
        responses: {
          '200': {
            description: 'The file.',
            content: { 'text/javascript': { schema: { type: 'string' } }, 'text/css': { schema: { type: 'string' } } },
          },
          '304': { description: 'Not modified since the validators sent.' },
          ...problemResponses(['OB_ERR_NOT_FOUND']),
        },
      },
    },
  };
}
