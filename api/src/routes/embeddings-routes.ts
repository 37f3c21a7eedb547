import { Router } from 'express';
import { ProblemError } from '@onnx-batch/contracts';
import { renderResultLines, type Config, type JobRecord, type JobStore, type ModelRouter } from '@onnx-batch/shared';
import { jsonBody } from '../http/body';
import {
  checkEmbeddingModel,
  embeddingModelName,
  embeddingRowsFor,
  embeddingsResponseBody,
  parseEmbeddingsRequest,
  tokensOf,
} from '../compat/embeddings-request';
import { checkSyncRows, runSynchronously, type SyncRunDeps } from '../sync-run';
import type { Paths } from '../openapi-parts';

export interface EmbeddingsRouteDeps extends SyncRunDeps {
  config: Config;
  router: ModelRouter;
}

/** Priority of the job of an embeddings request: interactive, as a synchronous predict's default. */
const PRIORITY = 10;

/** The vectors of a finished job, in row order; a row that failed fails the request (OpenAI answers all or nothing). */
async function jobVectors(store: JobStore, record: JobRecord): Promise<number[][]> {
  if (record.status !== 'completed')
    throw new ProblemError('OB_ERR_INFERENCE_FAILED', record.error?.detail ?? `the embedding job ended ${record.status}`, {
      jobId: record.id,
    });
  const vectors: number[][] = [];
  for (const chunk of await store.readResults(record.id, 0, record.chunks)) {
    if (!chunk) throw new ProblemError('OB_ERR_INTERNAL', `the results of job ${record.id} are gone`);
    for (const line of renderResultLines(chunk)) {
      const result = JSON.parse(line) as { embedding?: unknown[]; error?: { message?: string } };
      if (!result.embedding) {
        const row = vectors.length;
        throw new ProblemError('OB_ERR_INFERENCE_FAILED', `input ${row} could not be embedded: ${result.error?.message ?? 'no result'}`, {
          jobId: record.id,
          field: `input[${row}]`,
        });
      }
      // Non-finite values are stored as strings (JSON has none); a normalised vector holds none.
      vectors.push(result.embedding.map(Number));
    }
  }
  return vectors;
}

/** Row problems (`errors[].row`) of the submit renamed to the request's field (`input[row]`). */
function asInputProblem(error: unknown): unknown {
  if (!(error instanceof ProblemError) || error.code !== 'OB_ERR_INVALID_ROWS') return error;
  const errors = (error.extensions.errors ?? []) as { row?: number; field?: string; message: string }[];
  const renamed = errors.map((e) => ({ ...e, field: e.row === undefined ? 'input' : `input[${e.row}]` }));
  return new ProblemError(error.code, error.message, { ...error.extensions, errors: renamed });
}

/**
 * POST /v1/embeddings, OpenAI's request and response (compat/embeddings-request.ts), run
 * synchronously over the queue exactly as a synchronous predict (sync-run.ts: SYNC_MAX_ROWS,
 * SYNC_TIMEOUT_MS, the submit's validation and staging). Its errors, the key guard's included,
 * answer in OpenAI's shape: app.ts mounts compatErrorHandler (compat/compat-errors.ts) on its path.
 */
export function embeddingsRoutes(deps: EmbeddingsRouteDeps): Router {
  const router = Router();
  router.post('/embeddings', jsonBody(deps.config.MAX_BODY_BYTES), async (req, res) => {
    const request = parseEmbeddingsRequest(req.body);
    const { name, version } = embeddingModelName(request.model);
    const model = await deps.router.select(name, version);
    checkEmbeddingModel(model.parsing.manifest, request.dimensions);
    const rows = embeddingRowsFor(model.parsing.manifest, request.inputs);
    checkSyncRows(deps.config, rows.length, 'input');
    let finished: JobRecord;
    try {
      finished = await runSynchronously(deps, res, { model, rows, tenant: req.caller.tenant, priority: PRIORITY });
    } catch (error) {
      throw asInputProblem(error);
    }
    const vectors = await jobVectors(deps.store, finished);
    res.json(embeddingsResponseBody(request.model, vectors, tokensOf(request.inputs), request.encodingFormat));
  });
  return router;
}

// ---------------------------------------------------------------------------------------------
// OpenAPI: the fragment of this route (api/src/openapi.ts merges it).

export const COMPAT_ERROR_RESPONSE = {
  description: "An error in OpenAI's shape",
  content: {
    'application/json': {
      schema: {
        type: 'object',
        required: ['error'],
        properties: {
          error: {
            type: 'object',
            required: ['message', 'type', 'param', 'code'],
            properties: {
              message: { type: 'string' },
              type: { type: 'string' },
              param: { type: ['string', 'null'] },
              code: { type: ['string', 'null'] },
            },
          },
        },
      },
    },
  },
} as const;

export function embeddingsPaths(): Paths {
  return {
    '/v1/embeddings': {
      post: {
        operationId: 'createEmbeddings',
        summary: "Embeds texts with an embedding model (OpenAI's embeddings API)",
        description:
          'Runs as one job over the queue and waits for it (at most SYNC_MAX_ROWS inputs, SYNC_TIMEOUT_MS). ' +
          '`model` is an embedding model name (its rollout picks the version) or `name@version`. ' +
          'usage counts the tokens as the model tokenises: lowercased runs of letters, digits and _ of at least 2 characters.',
        tags: ['openai'],
        requestBody: {
          required: true,
          content: {
            'application/json': {
              schema: {
                type: 'object',
                required: ['model', 'input'],
                additionalProperties: false,
                properties: {
                  model: { type: 'string', examples: ['textembed', 'textembed@1'] },
                  input: {
                    oneOf: [
                      { type: 'string', minLength: 1 },
                      { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 } },
                    ],
                  },
                  encoding_format: { enum: ['float', 'base64'], default: 'float' },
                  dimensions: { type: 'integer', minimum: 1, description: "Refused unless it is the model's dimension." },
                  user: { type: 'string', description: 'Accepted and ignored.' },
                },
              },
            },
          },
        },
        responses: {
          '200': {
            description: 'One embedding per input, in order',
            content: {
              'application/json': {
                schema: {
                  type: 'object',
                  required: ['object', 'data', 'model', 'usage'],
                  properties: {
                    object: { const: 'list' },
                    data: {
                      type: 'array',
                      items: {
                        type: 'object',
                        required: ['object', 'index', 'embedding'],
                        properties: {
                          object: { const: 'embedding' },
                          index: { type: 'integer' },
                          embedding: {
                            oneOf: [
                              { type: 'array', items: { type: 'number' } },
                              { type: 'string', description: 'base64 of the float32 values, little-endian' },
                            ],
                          },
                        },
                      },
                    },
                    model: { type: 'string' },
                    usage: {
                      type: 'object',
                      required: ['prompt_tokens', 'total_tokens'],
                      properties: { prompt_tokens: { type: 'integer' }, total_tokens: { type: 'integer' } },
                    },
                  },
                },
              },
            },
          },
          '400': COMPAT_ERROR_RESPONSE,
          '401': COMPAT_ERROR_RESPONSE,
          '403': COMPAT_ERROR_RESPONSE,
          '404': COMPAT_ERROR_RESPONSE,
          '429': COMPAT_ERROR_RESPONSE,
          '500': COMPAT_ERROR_RESPONSE,
          '504': COMPAT_ERROR_RESPONSE,
        },
      },
    },
  };
}
