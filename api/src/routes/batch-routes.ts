import { Router, type Request, type Response } from 'express';
import Ajv2020 from 'ajv/dist/2020';
import {
  JOB_ID_PATTERN,
  isFinished,
  ProblemError,
  type Config,
  type JobRecord,
  type JobStore,
  type ModelRepository,
} from '@onnx-batch/shared';
import { jsonBody } from '../http/body';
import type { JobEvents } from '../job-events';
import type { JobSubmitter } from '../job-submitter';
import { renderJob } from '../job-view';

export interface BatchRouteDeps {
  config: Config;
  repository: ModelRepository;
  store: JobStore;
  submitter: JobSubmitter;
  events: JobEvents;
}

/** Priority of a job: 1 is the most urgent, 1000 the least; interactive work should use less than bulk. */
export const DEFAULT_PRIORITY = 100;
export const MAX_WAIT_SECONDS = 60;

/** The envelope of a JSON submit; rows themselves are checked against the model's schema. */
export const SUBMIT_BODY_SCHEMA = {
  type: 'object',
  required: ['model', 'inputs'],
  additionalProperties: false,
  properties: {
    model: { type: 'string', minLength: 1, maxLength: 64, description: 'Model name (GET /v1/models lists them).' },
    version: { type: ['string', 'integer'], description: "Model version; the model's default when absent." },
    inputs: { type: 'array', description: 'Rows: objects keyed by feature name (optionally with an `id`) or arrays of feature values in manifest order.' },
    priority: { type: 'integer', minimum: 1, maximum: 1000, default: DEFAULT_PRIORITY, description: '1 = most urgent … 1000 = least.' },
  },
} as const;

const validateEnvelope = new Ajv2020({ allErrors: false, strict: false, useDefaults: true }).compile(SUBMIT_BODY_SCHEMA);

interface SubmitBody {
  model: string;
  version?: string | number;
  inputs: unknown[];
  priority: number;
}

function checkEnvelope(body: unknown): SubmitBody {
  if (validateEnvelope(body)) return body as unknown as SubmitBody;
  const error = validateEnvelope.errors?.[0];
  const field =
    error?.keyword === 'required'
      ? String((error.params as { missingProperty?: string }).missingProperty)
      : error?.keyword === 'additionalProperties'
        ? String((error.params as { additionalProperty?: string }).additionalProperty)
        : error?.instancePath.replace(/^\//, '') || '(body)';
  const message = error?.keyword === 'additionalProperties' ? 'is not a known field' : (error?.message ?? 'is invalid');
  throw new ProblemError('OB_ERR_INVALID_REQUEST', `field '${field}' ${message}`, { errors: [{ field, message }] });
}

function parseWait(req: Request): number {
  const raw = req.query.wait;
  if (raw === undefined) return 0;
  const seconds = Number(raw);
  if (typeof raw !== 'string' || !Number.isFinite(seconds) || seconds < 0 || seconds > MAX_WAIT_SECONDS) {
    throw new ProblemError('OB_ERR_INVALID_REQUEST', `query parameter 'wait' must be a number of seconds from 0 to ${MAX_WAIT_SECONDS}`, {
      errors: [{ field: 'wait', message: `must be 0–${MAX_WAIT_SECONDS}` }],
    });
  }
  return seconds;
}

/**
 * Submit and poll. Mounted twice: under /v1, and at the root for the seed's unversioned
 * paths, where `model` defaults to DEFAULT_MODEL and a bare JSON array is the inputs.
 */
export function batchRoutes(deps: BatchRouteDeps, basePath: '/v1' | ''): Router {
  const router = Router();
  const { config, repository, store, submitter, events } = deps;

  const loadJob = async (req: Request): Promise<JobRecord> => {
    const id = String(req.params.id);
    const record = JOB_ID_PATTERN.test(id) ? await store.get(id) : null;
    if (!record) throw new ProblemError('OB_ERR_JOB_NOT_FOUND', `no job with id '${id.slice(0, 64)}'`);
    return record;
  };

  router.post('/batch-predict', jsonBody(config.MAX_BODY_BYTES), async (req: Request, res: Response) => {
    let body: unknown = req.body;
    if (basePath === '') {
      if (Array.isArray(body)) body = { inputs: body };
      if (typeof body === 'object' && body !== null && !('model' in body)) body = { ...body, model: config.DEFAULT_MODEL };
    }
    const envelope = checkEnvelope(body);
    const model = repository.resolve(envelope.model, envelope.version === undefined ? undefined : String(envelope.version));
    const record = await submitter.submit({
      model,
      rows: envelope.inputs,
      tenant: 'default',
      priority: envelope.priority,
      rowLocation: 'row',
    });
    res.locals.jobId = record.id;
    const resultUrl = `${basePath}/batch-result/${record.id}`;
    res.status(202).location(resultUrl).json({ jobId: record.id, status: record.status, resultUrl });
  });

  router.get('/batch-result/:id', async (req: Request, res: Response) => {
    const waitSeconds = parseWait(req);
    let record = await loadJob(req);
    res.locals.jobId = record.id;
    if (waitSeconds > 0 && !isFinished(record.status)) {
      await events.waitFor(record.id, waitSeconds * 1000, async () => {
        const now = await store.get(record.id);
        return now === null || isFinished(now.status);
      });
      record = await loadJob(req);
    }
    res.type('application/json').send(await renderJob(record, store, basePath, config));
  });

  return router;
}
