import type { Config, ModelEntry, ModelRepository } from '@onnx-batch/shared';
import { ROLES } from './http/auth';
import { API_VERSION, problemSchemas, type PathItem, type Schema } from './openapi-parts';
import { adminPaths } from './routes/admin-routes';
import { batchPaths, batchSchemas } from './routes/batch-routes';
import { jobPaths, jobSchemas } from './routes/job-routes';
import { consolePagePaths } from './routes/console-page-routes';
import { consolePaths, consoleSchemas } from './routes/console-routes';
import { docsPaths } from './routes/docs-routes';
import { healthPaths } from './routes/health-routes';
import { modelPaths, modelSchemas } from './routes/model-routes';
import { openInferencePaths, openInferenceSchemas } from './routes/open-inference-routes';
import { opsPaths } from './routes/ops-routes';
import { driftPaths, driftSchemas } from './routes/drift-routes';
import { embeddingsPaths } from './routes/embeddings-routes';
import { batchApiPaths } from './routes/batch-api-routes';
import { qualityPaths, qualitySchemas } from './routes/quality-routes';
import { evaluationPaths, evaluationSchemas } from './routes/evaluation-routes';
import { rolloutPaths, rolloutSchemas } from './routes/rollout-routes';
import { schedulePaths, scheduleSchemas } from './routes/schedule-routes';

/**
 * The OpenAPI 3.1 description of the API. Each router exports the paths and component schemas
 * of its own routes, generated from the schemas it validates with and from every model's
 * manifest (row and result schemas), so the document cannot drift from what the code accepts;
 * this file only frames them: info, tags, security schemes, and the merge. A new router adds
 * its `…Paths()` / `…Schemas()` here (shared helpers: openapi-parts.ts).
 */

export type OpenApiDocument = {
  openapi: string;
  info: Record<string, unknown>;
  paths: Record<string, PathItem>;
  components: { schemas: Record<string, Schema>; [part: string]: unknown };
  [field: string]: unknown;
};

export type OpenApiConfig = Pick<Config, 'DEFAULT_MODEL' | 'SYNC_MAX_ROWS' | 'INLINE_RESULTS_LIMIT'>;

/** Builds the document for the models the repository serves now. */
export function buildOpenApiDocument(entries: readonly ModelEntry[], config: OpenApiConfig): OpenApiDocument {
  const versions = entries.flatMap((e) => e.versions);
  return {
    openapi: '3.1.0',
    jsonSchemaDialect: 'https://spec.openapis.org/oas/3.1/dialect/base',
    info: {
      title: 'onnx-batch',
      version: API_VERSION,
      summary: 'Queue-backed batch inference for ONNX models.',
      description:
        'Submit a batch of rows, get a job id at once, poll (or long-poll with `wait`) for its status and download the results. ' +
        'Every error is `application/problem+json` (RFC 9457); a method a path does not serve is answered `405` with `Allow` ' +
        '(and `OPTIONS` with `204` and `Allow`), before authentication. ' +
        'Request bodies may be gzip-compressed (`Content-Encoding: gzip`): size limits count the bytes after decompression, and ' +
        'any other coding is refused with `415`. ' +
        `Models served now: ${entries.map((e) => `${e.name} (${e.versions.map((v) => v.manifest.version).join(', ')})`).join('; ')}.`,
      license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
    },
    servers: [{ url: '/' }],
    tags: [
      { name: 'batches', description: 'Submit, poll, download, cancel, delete.' },
      { name: 'models', description: 'The model repository and synchronous predict.' },
      { name: 'schedules', description: 'Built-in schedules over files (docs/schedules.md).' },
      { name: 'openai', description: "OpenAI-compatible endpoints (POST /v1/embeddings); their errors are in OpenAI's shape." },
      {
        name: 'rollouts',
        description:
          'Default, canary and shadow versions of a model, their report, promote and roll back; evaluations of a version against ' +
          'the default and the quality gate a canary passes (docs/models-in-production.md).',
      },
      {
        name: 'quality',
        description:
          'Ground-truth labels and the quality of predictions per job, version, arm and window (docs/models-in-production.md#quality).',
      },
      {
        name: 'open inference protocol',
        description:
          'KServe / Triton Open Inference Protocol v2 (REST) over the same queue (docs/interop.md); errors are {"error": message}.',
      },
      { name: 'operations', description: 'Health, metrics, documentation and the queue board.' },
    ],
    security: [{ bearerAuth: [] }, { apiKey: [] }, {}],
    paths: {
      ...batchPaths('/v1', entries, config),
      ...jobPaths(),
      ...consolePaths(),
      ...modelPaths(entries, config),
      ...embeddingsPaths(),
      ...batchApiPaths(),
      ...schedulePaths(),
      ...rolloutPaths(entries),
      ...evaluationPaths(entries),
      ...driftPaths(entries),
      ...qualityPaths(entries),
      ...batchPaths('', entries, config),
      ...openInferencePaths(),
      ...healthPaths(),
      ...opsPaths(),
      ...docsPaths(),
      ...consolePagePaths(),
      ...adminPaths(),
    },
    components: {
      securitySchemes: {
        bearerAuth: {
          type: 'http',
          scheme: 'bearer',
          description:
            `An API key (API_KEYS). Roles: ${ROLES.join(', ')}; reading needs \`read\`, anything else \`submit\`. No ` +
            `key is needed when none is configured (loopback only).`,
        },
        apiKey: { type: 'apiKey', in: 'header', name: 'X-API-Key', description: 'The same key, in a header of its own.' },
      },
      schemas: {
        ...problemSchemas(),
        ...modelSchemas(versions, config),
        ...batchSchemas(entries, config),
        ...jobSchemas(),
        ...consoleSchemas(),
        ...scheduleSchemas(),
        ...rolloutSchemas(),
        ...evaluationSchemas(),
        ...driftSchemas(),
        ...qualitySchemas(),
        ...openInferenceSchemas(),
      },
    },
  };
}

/**
 * The document for the repository as it is now: rebuilt whenever a model version is added,
 * removed or changed (the repository rescans itself), otherwise served from memory.
 */
export class OpenApiProvider {
  private signature = '';
  private cached: OpenApiDocument | null = null;
  private serialised = '';

  constructor(
    private readonly repository: Pick<ModelRepository, 'list'>,
    private readonly config: OpenApiConfig,
  ) {}

  document(): OpenApiDocument {
    this.refresh();
    return this.cached as OpenApiDocument;
  }

  /** The document as JSON text (serialised once per change). */
  json(): string {
    this.refresh();
    return this.serialised;
  }

  private refresh(): void {
    const entries = this.repository.list();
    const signature = entries.map((e) => `${e.name}@${e.defaultVersion}:${e.versions.map((v) => v.fingerprint).join(',')}`).join(';');
    if (this.cached && signature === this.signature) return;
    this.cached = buildOpenApiDocument(entries, this.config);
    this.serialised = JSON.stringify(this.cached);
    this.signature = signature;
  }
}
