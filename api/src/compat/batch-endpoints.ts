import { ProblemError } from '@onnx-batch/contracts';
import type { ModelVersion } from '@onnx-batch/shared';
import { checkEnvelope } from '../http/envelope';
import { validatePredict } from '../routes/model-routes';
import type { BatchEndpoint, RequestRow, ResponseContext } from './batch-requests';
import {
  checkEmbeddingModel,
  countTokens,
  embeddingModelName,
  embeddingRowsFor,
  embeddingsResponseBody,
  parseEmbeddingsRequest,
} from './embeddings-request';

/** The embeddings endpoint, as OpenAI's Batch API names it. */
export const EMBEDDINGS_URL = '/v1/embeddings';

const PREDICT_URL = /^\/v1\/models\/([^/]+)(?:\/versions\/([^/]+))?\/predict$/;

/**
 * The endpoint a batch names, or the 400 naming `endpoint`: `/v1/embeddings` (one text per
 * request line) or the service's own predict route of any model
 * (`/v1/models/{name}[/versions/{v}]/predict`, one row per request line).
 */
export function batchEndpoint(url: unknown): BatchEndpoint {
  if (url === EMBEDDINGS_URL) return embeddingsEndpoint();
  const match = typeof url === 'string' ? PREDICT_URL.exec(url) : null;
  if (typeof url === 'string' && match) return predictEndpoint(url, decodeURIComponent(match[1] as string), match[2]);
  throw new ProblemError(
    'OB_ERR_INVALID_REQUEST',
    "field 'endpoint' must be /v1/embeddings, /v1/models/{name}/predict or /v1/models/{name}/versions/{version}/predict",
    {
      errors: [{ field: 'endpoint', message: 'is not an endpoint a batch can call' }],
    },
  );
}

function predictEndpoint(url: string, name: string, version: string | undefined): BatchEndpoint {
  return {
    url,
    model: { name, version: version === undefined ? undefined : decodeURIComponent(version) },
    rowOf(body: unknown, model: ModelVersion): RequestRow {
      const { inputs } = checkEnvelope<{ inputs: unknown[] }>(validatePredict, body);
      if (inputs.length !== 1)
        return {
          refused: {
            status: 400,
            code: 'invalid_request',
            message: `'inputs' must hold one row per request line, not ${inputs.length}`,
            param: 'inputs',
          },
        };
      const row = inputs[0];
      const problem = model.validator.check(row);
      if (problem)
        return {
          refused: {
            status: 400,
            code: 'OB_ERR_INVALID_ROWS',
            message: `inputs[0]${problem.field ? `: field '${problem.field}'` : ':'} ${problem.message}`,
            param: problem.field ? `inputs[0].${problem.field}` : 'inputs[0]',
          },
        };
      // An array row becomes its object form, which can carry the request's custom_id as its id.
      if (!Array.isArray(row)) return { row: row as Record<string, unknown> };
      return { row: Object.fromEntries(model.manifest.features.map((feature, i) => [feature.name, row[i]])) };
    },
    notes: false,
    responseBody(result: Record<string, unknown>, { model }: ResponseContext): unknown {
      const { id: _id, ...prediction } = result;
      return { model: model.manifest.name, version: model.manifest.version, results: [prediction] };
    },
  };
}

function embeddingsEndpoint(): BatchEndpoint {
  return {
    url: EMBEDDINGS_URL,
    model: null,
    modelOfBody(body: unknown): string | null {
      const model = (body as { model?: unknown }).model;
      return typeof model === 'string' ? model : null;
    },
    modelName(model: string) {
      return embeddingModelName(model);
    },
    rowOf(body: unknown, model: ModelVersion): RequestRow {
      const request = parseEmbeddingsRequest(body);
      checkEmbeddingModel(model.manifest, request.dimensions);
      if (request.inputs.length !== 1)
        return {
          refused: {
            status: 400,
            code: 'invalid_request',
            message: `'input' must be one text per request line, not ${request.inputs.length}`,
            param: 'input',
          },
        };
      const [row] = embeddingRowsFor(model.manifest, request.inputs) as [Record<string, string>];
      const problem = model.validator.check(row);
      if (problem) return { refused: { status: 400, code: 'OB_ERR_INVALID_ROWS', message: `input ${problem.message}`, param: 'input' } };
      return { row, note: [request.encodingFormat, countTokens(request.inputs[0] as string)] };
    },
    notes: true,
    responseBody(result: Record<string, unknown>, answer: ResponseContext): unknown {
      const [format, tokens] = answer.note ?? ['float', 0];
      const vector = (result.embedding as unknown[]).map(Number);
      return embeddingsResponseBody(answer.named, [vector], Number(tokens), format === 'base64' ? 'base64' : 'float');
    },
  };
}
