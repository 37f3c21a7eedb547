import type { ServerResponse } from 'node:http';
import express, { Router, type ErrorRequestHandler, type Request, type RequestHandler, type Response } from 'express';
import Ajv2020 from 'ajv/dist/2020';
import { ProblemError, type Problem } from '@onnx-batch/contracts';
import type { Logger, ModelVersion, RedisClient, StorageGuard } from '@onnx-batch/shared';
import { authenticate, requireRole, type KeyRing } from '../http/auth';
import { contentCoding } from '../http/body';
import { checkEnvelope } from '../http/envelope';
import { answerError } from '../http/problem';
import { rateLimit, type RateLimiter } from '../http/rate-limit';
import {
  chunksToOutput,
  inputMetadata,
  outputMetadata,
  tensorsToRows,
  type InferInputTensor,
  type OutputTensor,
} from '../open-inference/oip-tensors';
import { API_VERSION, json, type PathItem, type Paths, type Schema } from '../openapi-parts';
import { readiness } from './health-routes';
import { runSynchronously } from '../sync-run';
import { type ModelRouteDeps } from './model-routes';

/**
 * KServe / Triton Open Inference Protocol v2 (REST) over the ordinary submission path: an infer
 * request's tensors become rows, which are validated, queued and run like a synchronous predict's
 * (dynamic batching included), and the stored results go back out as the graph's output tensor.
 * Errors are the protocol's `{"error": "..."}` with the status the service's catalogue gives.
 * See docs/interop.md and ADR 0011.
 */

export interface OpenInferenceDeps extends ModelRouteDeps {
  logger: Logger;
  redis: RedisClient;
  storage: StorageGuard;
  keys: KeyRing;
  limiter: RateLimiter | null;
  isShuttingDown?: () => boolean;
}

export const SERVER_NAME = 'onnx-batch';
export const PLATFORM = 'onnxruntime_onnx';
const INFERENCE_HEADER = 'inference-header-content-length';

/** An error in the protocol's shape: the catalogue's status, the problem's detail as the message. */
function writeOipError(res: ServerResponse, problem: Problem): void {
  const body = JSON.stringify({ error: problem.detail });
  res.statusCode = problem.status;
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(body));
  res.end(body);
}

const invalid = (message: string): ProblemError => new ProblemError('OB_ERR_INVALID_REQUEST', message);

const PARAMETERS_SCHEMA = { type: 'object', additionalProperties: { type: ['string', 'number', 'boolean'] } } as const;

export const INFER_REQUEST_SCHEMA = {
  type: 'object',
  required: ['inputs'],
  properties: {
    id: { type: 'string', maxLength: 256 },
    parameters: {
      ...PARAMETERS_SCHEMA,
      properties: { binary_data_output: { type: 'boolean' } },
    },
    inputs: {
      type: 'array',
      minItems: 1,
      maxItems: 64,
      items: {
        type: 'object',
        required: ['name', 'shape', 'datatype'],
        properties: {
          name: { type: 'string', maxLength: 256 },
          shape: { type: 'array', maxItems: 16, items: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER } },
          datatype: { type: 'string', maxLength: 16 },
          parameters: {
            ...PARAMETERS_SCHEMA,
            properties: { binary_data_size: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER } },
          },
          data: { type: ['array', 'number', 'string', 'boolean'] },
        },
      },
    },
    outputs: {
      type: 'array',
      maxItems: 64,
      items: {
        type: 'object',
        required: ['name'],
        properties: {
          name: { type: 'string', maxLength: 256 },
          parameters: { ...PARAMETERS_SCHEMA, properties: { binary_data: { type: 'boolean' } } },
        },
      },
    },
  },
} as const;

const validateInfer = new Ajv2020({ strict: false }).compile(INFER_REQUEST_SCHEMA);

interface InferRequest {
  id?: string;
  parameters?: { binary_data_output?: boolean; [name: string]: unknown };
  inputs: InferInputTensor[];
  outputs?: { name: string; parameters?: { binary_data?: boolean; [name: string]: unknown } }[];
}

/** The raw body, as binary tensor data needs it (gzip inflated; the limit counts inflated bytes). */
function rawBody(limitBytes: number): RequestHandler {
  const parse = express.raw({ limit: limitBytes, type: () => true });
  return (req, res, next) => {
    const declared = Number(req.get('content-length'));
    if (contentCoding(req) === 'identity' && declared > limitBytes)
      throw new ProblemError('OB_ERR_PAYLOAD_TOO_LARGE', `request body declares ${declared} bytes, more than the limit of ${limitBytes}`);
    parse(req, res, next);
  };
}

/**
 * The JSON header and the binary part of each input that declares `binary_data_size`, in input
 * order (binary tensor data extension). Every byte of the body must be accounted for.
 */
function splitBody(req: Request): { request: InferRequest; binary: Map<number, Buffer> } {
  const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
  const declared = req.get(INFERENCE_HEADER);
  let headerLength = body.length;
  if (declared !== undefined) {
    if (!/^\d{1,15}$/.test(declared.trim())) throw invalid('Inference-Header-Content-Length must be a whole number of bytes');
    headerLength = Number(declared.trim());
    if (headerLength > body.length)
      throw invalid(`Inference-Header-Content-Length is ${headerLength} bytes; the body has only ${body.length}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8', 0, headerLength));
  } catch (error) {
    throw new ProblemError('OB_ERR_MALFORMED_JSON', `the inference request header is not valid JSON: ${(error as Error).message}`);
  }
  const request = checkEnvelope<InferRequest>(validateInfer, parsed);
  const binary = new Map<number, Buffer>();
  let at = headerLength;
  request.inputs.forEach((input, index) => {
    const size = input.parameters?.binary_data_size;
    if (size === undefined) return;
    if (declared === undefined)
      throw invalid(`input '${input.name}' has binary_data_size but the request has no Inference-Header-Content-Length header`);
    if (at + size > body.length)
      throw invalid(`input '${input.name}': binary_data_size ${size} runs past the end of the body (${body.length - at} bytes left)`);
    binary.set(index, body.subarray(at, at + size));
    at += size;
  });
  if (at !== body.length) throw invalid(`the body has ${body.length - at} bytes after the header and binary data it declares`);
  return { request, binary };
}

function modelMetadata(version: ModelVersion, versions: readonly string[]): Record<string, unknown> {
  const m = version.manifest;
  return { name: m.name, versions, platform: PLATFORM, inputs: inputMetadata(m), outputs: outputMetadata(m) };
}

/** The infer answer: JSON alone, or JSON then the binary parts (Inference-Header-Content-Length says where the JSON ends). */
function sendInferResponse(res: Response, head: Record<string, unknown>, output: OutputTensor, binaryOutput: boolean): void {
  const tensor = { name: output.name, datatype: output.datatype, shape: output.shape };
  if (!binaryOutput) {
    // A float32 widened to a double prints exactly, so JSON data loses no bit either.
    res.type('application/json').send(JSON.stringify({ ...head, outputs: [{ ...tensor, data: Array.from(output.values) }] }));
    return;
  }
  const bytes = Buffer.from(output.values.buffer, output.values.byteOffset, output.values.byteLength);
  const header = Buffer.from(JSON.stringify({ ...head, outputs: [{ ...tensor, parameters: { binary_data_size: bytes.length } }] }));
  res.setHeader('Inference-Header-Content-Length', String(header.length));
  res.type('application/octet-stream').send(Buffer.concat([header, bytes]));
}

export function openInferenceRoutes(deps: OpenInferenceDeps): Router {
  const router = Router();
  const { config, repository } = deps;
  const isShuttingDown = deps.isShuttingDown ?? (() => false);
  const guard = (role: 'read' | 'submit'): RequestHandler[] => [authenticate(deps.keys), rateLimit(deps.limiter), requireRole(role)];

  // Open, like /livez and /readyz: probes carry no key, and server metadata says only what /openapi.json says.
  router.get('/health/live', (_req, res) => {
    res.json({ live: true });
  });
  router.get('/health/ready', async (_req, res) => {
    const state = await readiness(deps.redis, repository, deps.storage, isShuttingDown);
    if (state.ready) res.json({ ready: true });
    else res.status(503).json({ ready: false, error: state.reason });
  });
  router.get('/', (_req, res) => {
    res.json({ name: SERVER_NAME, version: API_VERSION, extensions: ['binary_tensor_data'] });
  });

  const versionNames = (name: string): string[] => repository.entry(name).versions.map((v) => v.manifest.version);
  const resolved = async (req: Request): Promise<ModelVersion> => {
    const name = String(req.params.name);
    const version = req.params.version === undefined ? await deps.router.defaultVersion(name) : String(req.params.version);
    return repository.resolve(name, version);
  };

  const metadata = async (req: Request, res: Response): Promise<void> => {
    const version = await resolved(req);
    res.json(modelMetadata(version, versionNames(version.manifest.name)));
  };
  // A model version is ready when it is loaded: workers load it on its first chunk, as for every route.
  const ready = async (req: Request, res: Response): Promise<void> => {
    const version = await resolved(req);
    res.json({ name: version.manifest.name, version: version.manifest.version, ready: true });
  };
  router.get('/models/:name', ...guard('read'), metadata);
  router.get('/models/:name/versions/:version', ...guard('read'), metadata);
  router.get('/models/:name/ready', ...guard('read'), ready);
  router.get('/models/:name/versions/:version/ready', ...guard('read'), ready);

  const infer = async (req: Request, res: Response): Promise<void> => {
    const model = await deps.router.select(
      String(req.params.name),
      req.params.version === undefined ? undefined : String(req.params.version),
    );
    const manifest = model.parsing.manifest;
    const { request, binary } = splitBody(req);
    const [served] = outputMetadata(manifest);
    if (!served)
      throw invalid(
        `model '${manifest.name}' keeps per-row JSON results (result kind '${manifest.result.kind}'), which this protocol ` +
          'adapter does not carry',
      );
    let binaryOutput = request.parameters?.binary_data_output ?? false;
    for (const wanted of request.outputs ?? []) {
      if (wanted.name !== served.name)
        throw invalid(`unexpected inference output '${wanted.name}' for model '${manifest.name}'; its outputs are: ${served.name}`);
      if (wanted.parameters?.classification !== undefined) throw invalid('the classification output parameter is not supported');
      binaryOutput = wanted.parameters?.binary_data ?? binaryOutput;
    }
    const rows = tensorsToRows(manifest, request.inputs, binary, config.SYNC_MAX_ROWS);
    const finished = await runSynchronously(deps, res, { model, rows, tenant: req.caller.tenant, priority: 10 });
    if (finished.status !== 'completed') {
      const why = finished.error ? `: ${finished.error.detail}` : '';
      throw new ProblemError('OB_ERR_INFERENCE_FAILED', `the inference job ${finished.id} ${finished.status}${why}`);
    }
    const chunks = await deps.store.readResults(finished.id, 0, finished.chunks);
    const output = chunksToOutput(manifest, chunks, rows.length);
    const head = {
      model_name: finished.model,
      model_version: finished.version,
      ...(request.id === undefined ? {} : { id: request.id }),
      parameters: { job_id: finished.id },
    };
    sendInferResponse(res, head, output, binaryOutput);
  };
  router.post('/models/:name/infer', ...guard('submit'), rawBody(config.MAX_BODY_BYTES), infer);
  router.post('/models/:name/versions/:version/infer', ...guard('submit'), rawBody(config.MAX_BODY_BYTES), infer);

  router.use((req) => {
    throw new ProblemError('OB_ERR_NOT_FOUND', `no route ${req.method} /v2${req.path.slice(0, 256)}`);
  });
  return router;
}

/**
 * Errors of /v2 paths in the protocol's shape. Mounted on the app, not inside the router, so that
 * what fails before the router (405 from the route table) is answered in that shape too.
 */
export function openInferenceErrors(logger: Logger): ErrorRequestHandler {
  return (error: unknown, req, res, _next) =>
    answerError(logger, error, { req, res, requestId: req.requestId, target: req.originalUrl }, writeOipError);
}

// ---------------------------------------------------------------------------------------------
// OpenAPI: the fragment of these routes (api/src/openapi.ts merges it).

const ERROR_RESPONSE = { description: 'An error: `{"error": message}`.', ...json({ $ref: '#/components/schemas/OipError' }) };

function errors(statuses: readonly string[]): Record<string, unknown> {
  return Object.fromEntries(statuses.map((s) => [s, ERROR_RESPONSE]));
}

export function openInferenceSchemas(): Record<string, Schema> {
  const tensorMetadata = {
    type: 'object',
    required: ['name', 'datatype', 'shape'],
    properties: {
      name: { type: 'string' },
      datatype: { enum: ['BOOL', 'UINT8', 'INT32', 'INT64', 'FP32', 'FP64', 'BYTES'] },
      shape: { type: 'array', items: { type: 'integer' }, description: '-1 for a dynamic dimension.' },
    },
  };
  return {
    OipError: { type: 'object', required: ['error'], properties: { error: { type: 'string' } } },
    OipTensorMetadata: tensorMetadata,
    OipModelMetadata: {
      type: 'object',
      required: ['name', 'versions', 'platform', 'inputs', 'outputs'],
      properties: {
        name: { type: 'string' },
        versions: { type: 'array', items: { type: 'string' } },
        platform: { const: PLATFORM },
        inputs: { type: 'array', items: { $ref: '#/components/schemas/OipTensorMetadata' } },
        outputs: { type: 'array', items: { $ref: '#/components/schemas/OipTensorMetadata' } },
      },
    },
    OipInferRequest: {
      ...INFER_REQUEST_SCHEMA,
      description:
        'Tensors named for the model’s graph inputs; each is cut into rows along its first dimension and validated like any row. ' +
        'With binary tensor data, this is the JSON header and Inference-Header-Content-Length its length.',
    },
    OipInferResponse: {
      type: 'object',
      required: ['model_name', 'outputs'],
      properties: {
        model_name: { type: 'string' },
        model_version: { type: 'string' },
        id: { type: 'string' },
        parameters: { type: 'object', properties: { job_id: { type: 'string' } } },
        outputs: {
          type: 'array',
          items: {
            allOf: [
              { $ref: '#/components/schemas/OipTensorMetadata' },
              {
                properties: {
                  data: { type: 'array', items: { type: 'number' } },
                  parameters: { type: 'object', properties: { binary_data_size: { type: 'integer' } } },
                },
              },
            ],
          },
        },
      },
    },
  };
}

export function openInferencePaths(): Paths {
  const tags = ['open inference protocol'];
  const open = { security: [] };
  const name = { name: 'name', in: 'path', required: true, schema: { type: 'string' } };
  const version = { name: 'version', in: 'path', required: true, schema: { type: 'string' } };
  const metadata = (operationId: string, parameters: Schema[]): PathItem => ({
    get: {
      tags,
      operationId,
      summary: 'Model metadata (Open Inference Protocol v2), from the manifest: graph inputs and the output answers carry.',
      parameters,
      responses: {
        '200': { description: 'The metadata.', ...json({ $ref: '#/components/schemas/OipModelMetadata' }) },
        ...errors(['401', '403', '404', '429']),
      },
    },
  });
  const ready = (operationId: string, parameters: Schema[]): PathItem => ({
    get: {
      tags,
      operationId,
      summary: 'Model readiness: 200 when the version is loaded.',
      parameters,
      responses: {
        '200': { description: 'Ready.', ...json({ type: 'object', properties: { name: { type: 'string' }, ready: { const: true } } }) },
        ...errors(['401', '403', '404', '429']),
      },
    },
  });
  const infer = (operationId: string, parameters: Schema[]): PathItem => ({
    post: {
      tags,
      operationId,
      summary: 'Inference (Open Inference Protocol v2) through the queue, like a synchronous predict.',
      description:
        'JSON tensors, or binary tensor data: a JSON header of Inference-Header-Content-Length bytes, then each input with ' +
        '`binary_data_size`, in order (BYTES elements 4-byte little-endian length-prefixed). The answer is JSON, or (with ' +
        '`binary_data` / `binary_data_output`) application/octet-stream: its JSON header, then the output’s float32 bytes.',
      parameters: [
        ...parameters,
        { name: 'Inference-Header-Content-Length', in: 'header', required: false, schema: { type: 'integer', minimum: 0 } },
      ],
      requestBody: {
        required: true,
        content: {
          'application/json': { schema: { $ref: '#/components/schemas/OipInferRequest' } },
          'application/octet-stream': { schema: { type: 'string', format: 'binary' } },
        },
      },
      responses: {
        '200': {
          description: 'The output tensor.',
          content: {
            'application/json': { schema: { $ref: '#/components/schemas/OipInferResponse' } },
            'application/octet-stream': { schema: { type: 'string', format: 'binary' } },
          },
        },
        ...errors(['400', '401', '403', '404', '413', '415', '429', '500', '503', '504', '507']),
      },
    },
  });
  const simple = (operationId: string, summary: string, schema: Schema, extra: Record<string, unknown> = {}): PathItem => ({
    get: { ...open, tags, operationId, summary, responses: { '200': { description: summary, ...json(schema) }, ...extra } },
  });
  return {
    '/v2/health/live': simple('oipLive', 'Liveness (Open Inference Protocol v2).', {
      type: 'object',
      properties: { live: { const: true } },
    }),
    '/v2/health/ready': simple(
      'oipReady',
      'Readiness (Open Inference Protocol v2): the checks of /readyz.',
      { type: 'object', properties: { ready: { const: true } } },
      {
        '503': {
          description: 'Not ready.',
          ...json({ type: 'object', properties: { ready: { const: false }, error: { type: 'string' } } }),
        },
      },
    ),
    '/v2': simple('oipServerMetadata', 'Server metadata (Open Inference Protocol v2).', {
      type: 'object',
      required: ['name', 'version', 'extensions'],
      properties: { name: { type: 'string' }, version: { type: 'string' }, extensions: { type: 'array', items: { type: 'string' } } },
    }),
    '/v2/models/{name}': metadata('oipModelMetadata', [name]),
    '/v2/models/{name}/versions/{version}': metadata('oipModelVersionMetadata', [name, version]),
    '/v2/models/{name}/ready': ready('oipModelReady', [name]),
    '/v2/models/{name}/versions/{version}/ready': ready('oipModelVersionReady', [name, version]),
    '/v2/models/{name}/infer': infer('oipInfer', [name]),
    '/v2/models/{name}/versions/{version}/infer': infer('oipInferVersion', [name, version]),
  };
}
