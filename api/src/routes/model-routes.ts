import { Router, type Request, type Response } from 'express';
import Ajv2020 from 'ajv/dist/2020';
import {
  ChunkEncoder,
  decodeChunk,
  isFinished,
  newJobId,
  ProblemError,
  renderResultLines,
  rowDigests,
  rowSchema,
  type ModelManifest,
  type PredictionCache,
  type Config,
  type JobEvents,
  type JobStore,
  type JobSubmitter,
  type ModelEntry,
  type ModelRepository,
  type ModelRouter,
  type ModelSelection,
  type ModelVersion,
} from '@onnx-batch/shared';
import { jsonBody } from '../http/body';
import { checkEnvelope } from '../http/envelope';
import { renderJob } from '../job-view';


export interface ModelRouteDeps {
  config: Config;
  repository: ModelRepository;
  store: JobStore;
  submitter: JobSubmitter;
  events: JobEvents;
  router: ModelRouter;
  /** The prediction cache (null: none configured): a request whose every row it holds is answered from it. */
  cache?: PredictionCache | null;
  /** Told of every synchronous predict of a cached model: hit (an answer) or miss (null). */
  onCacheLookup?: (manifest: ModelManifest, answer: string | null) => void;
}

/**
 * The answer of a synchronous predict whose every row the cache holds, or null (then a job runs):
 * the rows are validated and encoded as a submit would, looked up by their digests in one MGET,
 * and rendered like a finished job's results. No job is made: `jobId` is null, `cached` true.
 */
async function answerFromCache(cache: PredictionCache, selection: ModelSelection, rows: unknown[]): Promise<string | null> {
  const routed = selection.choose(newJobId());
  const { manifest, validator } = routed.model;
  if (!cache.enabledFor(manifest.name) || rows.length === 0 || manifest.result.kind === 'tensor') return null;
  const encoder = new ChunkEncoder(manifest, rows.length);
  for (const row of rows) if (validator.check(row) ?? encoder.add(row)) return null; // the submit path reports it
  const chunk = decodeChunk(encoder.finish());
  const hits = await cache.get(manifest.name, manifest.version, rowDigests(manifest, chunk));
  if (hits.some((hit) => hit === null)) return null;
  const names = manifest.result.kind === 'classification' ? [...(manifest.result.labels ?? [])] : [...(manifest.result.names ?? ['value'])];
  const values = new Float32Array(rows.length * names.length);
  hits.forEach((hit, row) => values.set((hit as Float32Array).subarray(0, names.length), row * names.length));
  const results = renderResultLines({ rows: rows.length, kind: manifest.result.kind, names, values, ids: chunk.ids, errors: new Map(), lines: null });
  const now = new Date().toISOString();
  const document = {
    jobId: null,
    status: 'completed',
    model: { name: manifest.name, version: manifest.version, route: routed.arm },
    progress: { done: rows.length, total: rows.length, failed: 0 },
    createdAt: now,
    startedAt: now,
    finishedAt: now,
    resultsUrl: null,
    error: null,
    cached: true,
  };
  return `${JSON.stringify(document).slice(0, -1)},"results":[${results.join(',')}]}`;
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
    const cached = deps.cache ? await answerFromCache(deps.cache, model, body.inputs) : null;
    deps.onCacheLookup?.(model.parsing.manifest, cached);
    if (cached) {
      res.type('application/json').send(cached);
      return;
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


