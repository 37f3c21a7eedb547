import { ProblemError } from '@onnx-batch/contracts';
import type { ModelVersion } from '@onnx-batch/shared';
import { checkEnvelope } from '../http/envelope';
import { validatePredict } from '../routes/model-routes';
import type { BatchEndpoint, RequestRow } from './batch-requests';

const PREDICT_URL = /^\/v1\/models\/([^/]+)(?:\/versions\/([^/]+))?\/predict$/;

/**
 * The endpoint a batch names, or the 400 naming `endpoint`: the service's own predict route of
 * any model (`/v1/models/{name}[/versions/{v}]/predict`, one row per request line).
 */
export function batchEndpoint(url: unknown): BatchEndpoint {
  const match = typeof url === 'string' ? PREDICT_URL.exec(url) : null;
  if (typeof url === 'string' && match) return predictEndpoint(url, decodeURIComponent(match[1] as string), match[2]);
  throw new ProblemError(
    'OB_ERR_INVALID_REQUEST',
    "field 'endpoint' must be /v1/models/{name}/predict or /v1/models/{name}/versions/{version}/predict",
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
    responseBody(result: Record<string, unknown>, model: ModelVersion): unknown {
      const { id: _id, ...prediction } = result;
      return { model: model.manifest.name, version: model.manifest.version, results: [prediction] };
    },
  };
}
