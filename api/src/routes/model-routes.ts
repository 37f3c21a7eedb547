import { Router, type Request, type Response } from 'express';
import Ajv2020 from 'ajv/dist/2020';
import {
  isFinished,
  ProblemError,
  rowSchema,
  type Config,
  type JobStore,
  type ModelEntry,
  type ModelRepository,
  type ModelVersion,
} from '@onnx-batch/shared';
import { jsonBody } from '../http/body';
import { checkEnvelope } from '../http/envelope';
import type { JobEvents } from '../job-events';
import type { JobSubmitter } from '../job-submitter';
import type { ModelRouter } from '../model-router';
import { renderJob } from '../job-view';


export interface ModelRouteDeps {
  config: Config;
  repository: ModelRepository;
  store: JobStore;
  submitter: JobSubmitter;
  events: JobEvents;
  router: ModelRouter;
}

/** What the API says about one model version: all of it read from the manifest. */
export function describeVersion(version: ModelVersion): Record<string, unknown> {
  const m = version.manifest;
  return {
    name: m.name,
    version: m.version,
    task: m.task,
    description: m.description ?? null,
    labels: m.result.labels ?? null,
    accuracy: m.metrics?.accuracy ?? null,
    evaluation: m.metrics?.evaluation ?? null,
    features: m.features,
    inputSchema: rowSchema(m),
    chunkSize: m.chunkSize ?? null,
  };
}

/** `defaultVersion`: the version serving jobs that name none (the rollout's, or the repository's). */
export function describeModel(entry: ModelEntry, defaultVersion: string = entry.defaultVersion): Record<string, unknown> {
  return {
    name: entry.name,
    defaultVersion,
    versions: entry.versions.map(describeVersion),
  };
}

export const PREDICT_BODY_SCHEMA = {
  type: 'object',
  required: ['inputs'],
  additionalProperties: false,
  properties: {
    inputs: { type: 'array', minItems: 1, description: 'Rows, as for /v1/batch-predict; at most SYNC_MAX_ROWS.' },
    priority: { type: 'integer', minimum: 1, maximum: 1000, default: 10, description: 'Defaults to 10: interactive work goes ahead of bulk batches.' },
  },
} as const;

const validatePredict = new Ajv2020({ strict: false, useDefaults: true }).compile(PREDICT_BODY_SCHEMA);

/** The model repository, read-only, and the synchronous predict facade over the same queue. */
export function modelRoutes(deps: ModelRouteDeps): Router {
  const router = Router();
  const { config, repository, store, submitter, events } = deps;

  router.get('/models', async (_req, res) => {
    const models = await Promise.all(repository.list().map(async (entry) => describeModel(entry, await deps.router.defaultVersion(entry.name))));
    res.json({ models, problems: repository.problems });
  });

  router.get('/models/:name', async (req, res) => {
    const name = String(req.params.name);
    repository.resolve(name);
    const entry = repository.list().find((m) => m.name === name) as ModelEntry;
    res.json(describeModel(entry, await deps.router.defaultVersion(name)));
  });

  router.get('/models/:name/versions/:version', (req, res) => {
    res.json(describeVersion(repository.resolve(String(req.params.name), String(req.params.version))));
  });

  const predict = async (req: Request, res: Response): Promise<void> => {
    const model = await deps.router.select(String(req.params.name), req.params.version === undefined ? undefined : String(req.params.version));
    const body = checkEnvelope<{ inputs: unknown[]; priority: number }>(validatePredict, req.body);
    if (body.inputs.length > config.SYNC_MAX_ROWS) {
      throw new ProblemError('OB_ERR_TOO_MANY_ROWS', `synchronous predict takes at most ${config.SYNC_MAX_ROWS} rows; submit larger batches to /v1/batch-predict`);
    }
    const { record } = await submitter.submit({ model, rows: body.inputs, tenant: req.caller.tenant, priority: body.priority, callbackUrl: null, rowLocation: 'row' });
    res.locals.jobId = record.id;
    await events.waitFor(record.id, config.SYNC_TIMEOUT_MS, async () => {
      const now = await store.get(record.id);
      return now === null || isFinished(now.status);
    });
    const finished = await store.get(record.id);
    if (!finished || !isFinished(finished.status)) {
      throw new ProblemError('OB_ERR_TIMEOUT', `the job did not finish within ${config.SYNC_TIMEOUT_MS} ms; poll /v1/batch-result/${record.id}`, {
        jobId: record.id,
        resultUrl: `/v1/batch-result/${record.id}`,
      });
    }
    res.type('application/json').send(await renderJob(finished, store, '/v1', { INLINE_RESULTS_LIMIT: Number.MAX_SAFE_INTEGER }));
  };
  router.post('/models/:name/predict', jsonBody(config.MAX_BODY_BYTES), predict);
  router.post('/models/:name/versions/:version/predict', jsonBody(config.MAX_BODY_BYTES), predict);
  return router;
}


