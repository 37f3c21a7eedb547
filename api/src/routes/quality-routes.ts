import { Router, type Request, type RequestHandler, type Response } from 'express';
import Ajv2020 from 'ajv/dist/2020';
import { ProblemError, type QualityMetrics } from '@onnx-batch/contracts';
import {
  ARROW_STREAM_TYPE,
  arrowLabelRows,
  PARQUET_TYPE,
  parquetLabelRows,
  qualityKindOf,
  qualityMetrics,
  sumCounters,
  sumOutcomes,
  QUALITY_ARMS,
  type Config,
  type JobQualityPointer,
  type JobStore,
  type LabelOutcome,
  type ModelEntry,
  type ModelRepository,
  type QualityArm,
  type QualityStore,
  type ResolvedLabel,
} from '@onnx-batch/shared';
import { jsonBody, streamedBody } from '../http/body';
import { spoolBody } from '../http/spool';
import { checkEnvelope } from '../http/envelope';
import { csvLabels, jsonLabels, labelEntry, ndjsonLabels, refuseIfAny, type LabelEntry, type LabelProblem } from '../quality/label-input';
import { GUARD_CODES, json, modelNameParameter, problemResponses, ref, WRITE_GUARD_CODES, type Paths, type Schema } from '../openapi-parts';
import { bucketSummary, referenceOf } from '../quality/quality-view';

export type QualityConfig = Pick<
  Config,
  | 'SPOOL_DIR'
  | 'MAX_BODY_BYTES'
  | 'MAX_STREAM_BYTES'
  | 'MAX_ROW_BYTES'
  | 'MAX_LABELS_PER_REQUEST'
  | 'LABEL_ID_INDEX'
  | 'LABEL_RETENTION_DAYS'
>;

export interface QualityRouteDeps {
  config: QualityConfig;
  repository: ModelRepository;
  store: JobStore;
  quality: QualityStore;
}

const LABEL_STREAM_TYPES = ['application/x-ndjson', 'application/jsonl', 'text/csv', ARROW_STREAM_TYPE, PARQUET_TYPE];
const BUCKETS = { hour: 'h', day: 'd' } as const;
const MAX_BUCKETS = 2000;

const validateQualityQuery = new Ajv2020({ strict: false, useDefaults: true }).compile({
  type: 'object',
  additionalProperties: false,
  properties: {
    version: { type: 'string', pattern: '^[0-9]{1,9}$' },
    arm: { enum: QUALITY_ARMS },
    from: { type: 'string', minLength: 1 },
    to: { type: 'string', minLength: 1 },
    bucket: { enum: Object.keys(BUCKETS), default: 'hour' },
  },
});

/**
 * Ground truth and model quality (docs/models-in-production.md#quality): labels joined to the
 * predictions workers keep, quality per job and per model version, arm and hour or day.
 */
export function qualityRoutes(deps: QualityRouteDeps): Router {
  const router = Router();
  const { config, quality } = deps;

  /** The label objects of a request's body, whatever its type, with where each was. */
  async function readEntries(req: Request): Promise<{ entries: LabelEntry[]; problems: LabelProblem[] }> {
    if (!req.is(LABEL_STREAM_TYPES)) return checkEntries(jsonLabels(req.body));
    const body = streamedBody(req, config.MAX_STREAM_BYTES).stream;
    if (req.is(PARQUET_TYPE)) {
      // Parquet's schema is in its footer: the whole file is on disk before a label is read.
      const spooled = await spoolBody(body, config.SPOOL_DIR);
      try {
        return await checkEntries(parquetLabelRows(spooled.path));
      } finally {
        await spooled.remove();
      }
    }
    if (req.is(ARROW_STREAM_TYPE)) return checkEntries(arrowLabelRows(body));
    return checkEntries(req.is('text/csv') ? csvLabels(body, config.MAX_ROW_BYTES) : ndjsonLabels(body, config.MAX_ROW_BYTES));
  }

  async function checkEntries(
    raw: AsyncIterable<[unknown, number]> | Iterable<[unknown, number]>,
  ): Promise<{ entries: LabelEntry[]; problems: LabelProblem[] }> {
    const problems: LabelProblem[] = [];
    const entries: LabelEntry[] = [];
    let count = 0;
    for await (const [value, line] of raw) {
      if (++count > config.MAX_LABELS_PER_REQUEST)
        throw new ProblemError(
          'OB_ERR_TOO_MANY_ROWS',
          `more than ${config.MAX_LABELS_PER_REQUEST} labels (MAX_LABELS_PER_REQUEST); send them in several requests`,
        );
      const entry = labelEntry(value, line, problems);
      if (entry) entries.push(entry);
    }
    if (count === 0)
      throw new ProblemError('OB_ERR_INVALID_LABELS', 'the request holds no labels', { errors: [{ line: 0, message: 'no labels' }] });
    // Entries that parsed are checked against the rows too, so one answer names every bad line.
    return { entries, problems };
  }

  /** A job's pointer, or 404 saying why there is none. */
  async function pointerOf(req: Request): Promise<JobQualityPointer> {
    const id = String(req.params.id);
    const pointer = await quality.pointer(id, req.caller.tenant);
    if (pointer) return pointer;
    if (config.LABEL_RETENTION_DAYS === 0)
      throw new ProblemError('OB_ERR_PREDICTIONS_NOT_KEPT', 'predictions are not kept for labels here (LABEL_RETENTION_DAYS=0)');
    const record = await deps.store.get(id).catch(() => null);
    if (record && record.tenant === req.caller.tenant) {
      const kind = deps.repository.find(record.model, record.version)?.manifest.result.kind;
      throw new ProblemError(
        'OB_ERR_PREDICTIONS_NOT_KEPT',
        kind === 'tensor'
          ? `job ${id} ran ${record.model}, whose results are tensors: there is no ground truth to label them with`
          : `no chunk of job ${id} has run yet (it is ${record.status}); label its rows once they have predictions`,
      );
    }
    throw new ProblemError(
      'OB_ERR_PREDICTIONS_NOT_KEPT',
      `no predictions are kept for job ${id}: it is unknown, another tenant's, deleted, or older than LABEL_RETENTION_DAYS ` +
        `(${config.LABEL_RETENTION_DAYS} days)`,
    );
  }

  // NDJSON and CSV stream through readEntries; anything else must be JSON, parsed whole (MAX_BODY_BYTES).
  const json = jsonBody(config.MAX_BODY_BYTES);
  const labelsBody: RequestHandler = (req, res, next) => (req.is(LABEL_STREAM_TYPES) ? next() : json(req, res, next));

  router.post('/batch-result/:id/labels', labelsBody, async (req: Request, res: Response) => {
    const pointer = await pointerOf(req);
    res.locals.jobId = pointer.jobId;
    const { entries, problems } = await readEntries(req);
    const ids = entries.some((e) => e.id !== undefined) ? await quality.rowsOfIds(pointer) : new Map<string, number | 'ambiguous'>();
    const resolved: ResolvedLabel[] = [];
    for (const entry of entries) {
      let row = entry.index;
      if (entry.id !== undefined) {
        const found = ids.get(entry.id);
        if (found === 'ambiguous')
          problems.push({ line: entry.line, field: 'id', message: `id '${entry.id}' names several rows of this job: label them by index` });
        else if (found === undefined)
          problems.push({ line: entry.line, field: 'id', message: `no row of this job was submitted with id '${entry.id}'` });
        else row = found;
      } else if (row !== undefined && row >= pointer.total) {
        problems.push({
          line: entry.line,
          field: 'index',
          message: `the job has ${pointer.total} rows (indexes 0 to ${pointer.total - 1})`,
        });
        row = undefined;
      }
      const truth = truthOf(pointer, entry, problems);
      if (row !== undefined && truth !== null) resolved.push({ row, truth, line: entry.line });
    }
    checkDuplicates(resolved, problems);
    refuseIfAny(problems, entries.length + problems.length);
    const outcome = await quality.applyLabels(pointer, resolved);
    res.json({ jobId: pointer.jobId, labels: entries.length, ...outcome });
  });

  router.post('/labels', labelsBody, async (req: Request, res: Response) => {
    if (config.LABEL_ID_INDEX !== 'true')
      throw new ProblemError(
        'OB_ERR_INVALID_REQUEST',
        'rows are not indexed by id here (LABEL_ID_INDEX=false): send labels to POST /v1/batch-result/{id}/labels',
      );
    const { entries, problems } = await readEntries(req);
    for (const entry of entries)
      if (entry.id === undefined)
        problems.push({
          line: entry.line,
          field: 'index',
          message: 'labels here name rows by id; an index needs its job: POST /v1/batch-result/{id}/labels',
        });
    const byId = entries.filter((e) => e.id !== undefined);
    const found = await quality.findIds(
      req.caller.tenant,
      byId.map((e) => e.id as string),
    );
    const pointers = new Map<string, JobQualityPointer | null>();
    for (const hit of found) if (hit && !pointers.has(hit[0])) pointers.set(hit[0], await quality.pointer(hit[0], req.caller.tenant));
    const byJob = new Map<string, ResolvedLabel[]>();
    byId.forEach((entry, i) => {
      const hit = found[i];
      const pointer = hit ? pointers.get(hit[0]) : null;
      if (!hit || !pointer) {
        problems.push({
          line: entry.line,
          field: 'id',
          message: `no kept prediction has id '${entry.id ?? ''}' (unknown, deleted, or older than LABEL_RETENTION_DAYS)`,
        });
        return;
      }
      const truth = truthOf(pointer, entry, problems);
      if (truth === null) return;
      let list = byJob.get(pointer.jobId);
      if (!list) byJob.set(pointer.jobId, (list = []));
      list.push({ row: hit[1] * pointer.chunkSize + hit[2], truth, line: entry.line });
    });
    for (const list of byJob.values()) checkDuplicates(list, problems);
    refuseIfAny(problems, entries.length + problems.length);
    const outcomes: LabelOutcome[] = [];
    for (const [jobId, list] of byJob) outcomes.push(await quality.applyLabels(pointers.get(jobId) as JobQualityPointer, list));
    res.json({ labels: entries.length, jobs: [...byJob.keys()], ...sumOutcomes(outcomes) });
  });

  router.get('/batch-result/:id/quality', async (req: Request, res: Response) => {
    const pointer = await pointerOf(req);
    res.locals.jobId = pointer.jobId;
    const metrics = qualityMetrics(pointer.kind, await quality.jobCounters(pointer), pointer.labels);
    res.json({
      jobId: pointer.jobId,
      model: pointer.model,
      version: pointer.version,
      arm: pointer.arm,
      reference: referenceOf(deps.repository, pointer.model, pointer.version),
      ...metrics,
    });
  });

  router.get('/models/:name/quality', async (req: Request, res: Response) => {
    const entry = deps.repository.resolve(String(req.params.name)).manifest;
    const query = checkEnvelope<{ version?: string; arm?: QualityArm; from?: string; to?: string; bucket: keyof typeof BUCKETS }>(
      validateQualityQuery,
      { ...(req.query as Record<string, unknown>) },
    );
    const unit = BUCKETS[query.bucket];
    const to = timeOf(query.to, 'to') ?? Date.now();
    const from = timeOf(query.from, 'from') ?? to - (unit === 'h' ? 24 * 3_600_000 : config.LABEL_RETENTION_DAYS * 86_400_000);
    if (from >= to) throw fieldProblem('from', 'must be before `to`');
    if ((to - from) / (unit === 'h' ? 3_600_000 : 86_400_000) > MAX_BUCKETS)
      throw fieldProblem('from', `the window spans more than ${MAX_BUCKETS} buckets; use bucket=day or a shorter window`);
    const model = entry.name;
    const series = (await quality.series(model)).filter(
      (s) => (query.version === undefined || s.version === query.version) && (query.arm === undefined || s.arm === query.arm),
    );
    const out = [];
    for (const s of series) {
      const manifest = deps.repository.find(model, s.version)?.manifest;
      const kind = (manifest && qualityKindOf(manifest)) ?? 'classification';
      const labels = manifest?.result.labels ?? [];
      const buckets = await quality.buckets(model, s.version, s.arm, unit, from, to);
      const total: QualityMetrics = qualityMetrics(kind, sumCounters(buckets.map((b) => b.sums)), labels);
      out.push({
        version: s.version,
        arm: s.arm,
        reference: referenceOf(deps.repository, model, s.version),
        ...total,
        buckets: buckets.map((b) => ({
          from: new Date(b.start).toISOString(),
          to: new Date(b.end).toISOString(),
          ...bucketSummary(qualityMetrics(kind, b.sums, labels)),
        })),
      });
    }
    res.json({ model, from: new Date(from).toISOString(), to: new Date(to).toISOString(), bucket: query.bucket, series: out });
  });

  return router;
}

/** The class index or value of an entry for its job's model, or null with a problem. */
function truthOf(pointer: JobQualityPointer, entry: LabelEntry, problems: LabelProblem[]): number | null {
  if (pointer.kind === 'classification') {
    const index = entry.label === undefined ? -1 : pointer.labels.indexOf(entry.label);
    if (index >= 0) return index;
    problems.push(
      entry.label === undefined
        ? { line: entry.line, field: 'value', message: `${pointer.model} is a classifier: give a label (${pointer.labels.join(', ')})` }
        : {
            line: entry.line,
            field: 'label',
            message: `'${entry.label.slice(0, 100)}' is not a label of ${pointer.model} (labels: ${pointer.labels.join(', ')})`,
          },
    );
    return null;
  }
  if (entry.value !== undefined) return entry.value;
  problems.push({ line: entry.line, field: 'label', message: `${pointer.model} is a regression model: give a value (a number)` });
  return null;
}

/** Two different labels for one row in one request are refused; the same one twice is one label. */
function checkDuplicates(labels: ResolvedLabel[], problems: LabelProblem[]): void {
  const seen = new Map<number, ResolvedLabel>();
  const unique: ResolvedLabel[] = [];
  for (const label of labels) {
    const earlier = seen.get(label.row);
    if (!earlier) {
      seen.set(label.row, label);
      unique.push(label);
    } else if (earlier.truth !== label.truth) {
      problems.push({ line: label.line, message: `row ${label.row} is given another label on line ${earlier.line}` });
    }
  }
  labels.splice(0, labels.length, ...unique);
}

function timeOf(text: string | undefined, field: string): number | undefined {
  if (text === undefined) return undefined;
  const ms = Date.parse(text);
  if (Number.isNaN(ms)) throw fieldProblem(field, 'must be an RFC 3339 date-time, e.g. 2026-12-07T00:00:00Z');
  return ms;
}

function fieldProblem(field: string, message: string): ProblemError {
  return new ProblemError('OB_ERR_INVALID_REQUEST', `${field} ${message}`, { errors: [{ field, message }] });
}

// ---------------------------------------------------------------------------------------------
// OpenAPI: the fragment of these routes (api/src/openapi.ts merges it).

export function qualitySchemas(): Record<string, Schema> {
  const rate = { type: ['number', 'null'], minimum: 0, maximum: 1 };
  const nullableNumber = { type: ['number', 'null'] };
  const counts = {
    predictedRows: { type: 'integer', description: 'Rows predicted (failed rows left out).' },
    labelledRows: { type: 'integer', description: 'Of them, rows with a ground-truth label.' },
    labelledShare: { ...rate, description: 'labelledRows / predictedRows.' },
  };
  return {
    Label: {
      type: 'object',
      description:
        'The truth of one predicted row: name the row by `index` (its position in the job, from 0) or by the `id` it was ' +
        'submitted with, and give `label` (one of the classifier’s labels) or `value` (a regression model’s true number). ' +
        'In CSV, the header names the same columns.',
      additionalProperties: false,
      properties: {
        index: { type: 'integer', minimum: 0 },
        id: { type: ['string', 'integer'] },
        label: { type: 'string' },
        value: { type: 'number' },
      },
    },
    LabelOutcome: {
      type: 'object',
      required: ['labels', 'added', 'replaced', 'unchanged', 'notPredicted'],
      properties: {
        jobId: { type: 'string', format: 'uuid' },
        jobs: { type: 'array', items: { type: 'string', format: 'uuid' }, description: 'POST /v1/labels: the jobs the ids were found in.' },
        labels: { type: 'integer', description: 'Labels in the request.' },
        added: { type: 'integer', description: 'Rows that had no label.' },
        replaced: { type: 'integer', description: 'Rows whose different label this one replaced (counted once, the old one taken back).' },
        unchanged: { type: 'integer', description: 'Rows that already had this label (counted once).' },
        notPredicted: { type: 'integer', description: 'Rows that failed: no prediction to judge, kept out of every figure.' },
      },
    },
    ClassificationQuality: {
      type: 'object',
      required: ['kind', 'predictedRows', 'labelledRows', 'accuracy', 'confusion', 'classes', 'estimated'],
      properties: {
        kind: { const: 'classification' },
        ...counts,
        accuracy: rate,
        macroF1: rate,
        weightedF1: rate,
        logLoss: nullableNumber,
        brier: nullableNumber,
        classes: {
          type: 'array',
          items: {
            type: 'object',
            properties: { label: { type: 'string' }, precision: rate, recall: rate, f1: rate, support: { type: 'integer' } },
          },
        },
        confusion: {
          type: 'array',
          description: 'Rows: true class; columns: predicted class; both in the order of the model’s labels.',
          items: { type: 'array', items: { type: 'integer' } },
        },
        meanConfidence: { ...rate, description: 'Mean confidence of the labelled rows.' },
        calibrationError: { ...rate, description: 'Expected calibration error of the labelled rows (10 equal-width confidence bins).' },
        calibration: {
          type: 'array',
          items: {
            type: 'object',
            properties: {
              from: { type: 'number' },
              to: { type: 'number' },
              rows: { type: 'integer' },
              confidence: { type: 'number' },
              accuracy: { type: 'number' },
            },
          },
        },
        estimated: {
          type: ['object', 'null'],
          description:
            'Estimated from confidences alone over every predicted row (confidence-based performance estimation); trustworthy as ' +
            'far as `calibrationGap` (realised accuracy minus mean confidence of the labelled rows) is near 0.',
          properties: {
            accuracy: { type: 'number' },
            macroF1: rate,
            calibrationGap: nullableNumber,
            classes: { type: 'array', items: { type: 'object' } },
          },
        },
      },
    },
    RegressionQuality: {
      type: 'object',
      required: ['kind', 'predictedRows', 'labelledRows', 'mae', 'rmse', 'r2', 'bias'],
      properties: {
        kind: { const: 'regression' },
        ...counts,
        mae: nullableNumber,
        rmse: nullableNumber,
        r2: { ...nullableNumber, description: 'Null with fewer than 2 labels or true values that do not vary.' },
        bias: { ...nullableNumber, description: 'Mean of prediction − truth.' },
        meanPrediction: nullableNumber,
      },
    },
    JobQuality: {
      description: 'A job’s quality: its version and arm, the version’s reference (its manifest’s `metrics.reference`), and the figures.',
      allOf: [
        {
          type: 'object',
          required: ['jobId', 'model', 'version', 'arm'],
          properties: {
            jobId: { type: 'string', format: 'uuid' },
            model: { type: 'string' },
            version: { type: 'string' },
            arm: { enum: QUALITY_ARMS },
            reference: { type: ['object', 'null'] },
          },
        },
        { oneOf: [ref('ClassificationQuality'), ref('RegressionQuality')] },
      ],
    },
    ModelQuality: {
      type: 'object',
      required: ['model', 'from', 'to', 'bucket', 'series'],
      properties: {
        model: { type: 'string' },
        from: { type: 'string', format: 'date-time' },
        to: { type: 'string', format: 'date-time' },
        bucket: { enum: Object.keys(BUCKETS) },
        series: {
          type: 'array',
          description: 'One per version and arm that predicted in the window: its totals, then a summary per bucket (oldest first).',
          items: {
            allOf: [
              {
                type: 'object',
                required: ['version', 'arm', 'buckets'],
                properties: {
                  version: { type: 'string' },
                  arm: { enum: QUALITY_ARMS },
                  reference: { type: ['object', 'null'] },
                  buckets: {
                    type: 'array',
                    items: {
                      type: 'object',
                      required: ['from', 'to', 'predictedRows', 'labelledRows'],
                      properties: { from: { type: 'string', format: 'date-time' }, to: { type: 'string', format: 'date-time' } },
                    },
                  },
                },
              },
              { oneOf: [ref('ClassificationQuality'), ref('RegressionQuality')] },
            ],
          },
        },
      },
    },
  };
}

export function qualityPaths(entries: readonly ModelEntry[]): Paths {
  const labelsBody = {
    required: true,
    description:
      'Labels: NDJSON (one label object a line), CSV (a header naming the fields), an Arrow IPC stream or a Parquet file ' +
      '(columns named as the fields), streamed; or a JSON array (or {"labels": [...]}).',
    content: {
      'application/x-ndjson': { schema: { type: 'string' } },
      'text/csv': { schema: { type: 'string' } },
      [ARROW_STREAM_TYPE]: { schema: { type: 'string', format: 'binary' } },
      [PARQUET_TYPE]: { schema: { type: 'string', format: 'binary' } },
      'application/json': {
        schema: {
          oneOf: [
            { type: 'array', items: ref('Label') },
            { type: 'object', properties: { labels: { type: 'array', items: ref('Label') } } },
          ],
        },
      },
    },
  };
  const jobId = { name: 'id', in: 'path', required: true, schema: { type: 'string', format: 'uuid' } };
  const labelCodes = [
    ...WRITE_GUARD_CODES,
    'OB_ERR_INVALID_LABELS',
    'OB_ERR_MALFORMED_JSON',
    'OB_ERR_UNSUPPORTED_MEDIA_TYPE',
    'OB_ERR_PAYLOAD_TOO_LARGE',
    'OB_ERR_TOO_MANY_ROWS',
    'OB_ERR_LABELS_CONFLICT',
  ] as const;
  return {
    '/v1/batch-result/{id}/labels': {
      post: {
        tags: ['quality'],
        operationId: 'postJobLabels',
        summary: 'Ground truth for rows of a job: idempotent, checked whole before any is applied.',
        parameters: [jobId],
        requestBody: labelsBody,
        responses: {
          '200': { description: 'What the labels did.', ...json(ref('LabelOutcome')) },
          ...problemResponses([...labelCodes, 'OB_ERR_PREDICTIONS_NOT_KEPT']),
        },
      },
    },
    '/v1/labels': {
      post: {
        tags: ['quality'],
        operationId: 'postLabels',
        summary:
          'Ground truth for rows found by the ids they were submitted with, across the tenant’s jobs (the newest prediction of an id).',
        requestBody: labelsBody,
        responses: {
          '200': { description: 'What the labels did.', ...json(ref('LabelOutcome')) },
          ...problemResponses([...labelCodes, 'OB_ERR_INVALID_REQUEST']),
        },
      },
    },
    '/v1/batch-result/{id}/quality': {
      get: {
        tags: ['quality'],
        operationId: 'getJobQuality',
        summary: 'Quality of one job’s predictions: realised from its labels, estimated from its confidences.',
        parameters: [jobId],
        responses: {
          '200': { description: 'The job’s quality.', ...json(ref('JobQuality')) },
          ...problemResponses([...GUARD_CODES, 'OB_ERR_PREDICTIONS_NOT_KEPT']),
        },
      },
    },
    '/v1/models/{name}/quality': {
      get: {
        tags: ['quality'],
        operationId: 'getModelQuality',
        summary: 'Quality per version and arm over a window, in hour or day buckets of prediction time.',
        parameters: [
          modelNameParameter(entries),
          { name: 'version', in: 'query', schema: { type: 'string', pattern: '^[0-9]{1,9}$' }, description: 'Only this version.' },
          { name: 'arm', in: 'query', schema: { enum: QUALITY_ARMS }, description: 'Only this arm (how jobs were routed to the version).' },
          {
            name: 'from',
            in: 'query',
            schema: { type: 'string', format: 'date-time' },
            description: 'Default: `to` − 24 h (hour buckets) or − LABEL_RETENTION_DAYS (day).',
          },
          { name: 'to', in: 'query', schema: { type: 'string', format: 'date-time' }, description: 'Default: now.' },
          { name: 'bucket', in: 'query', schema: { enum: Object.keys(BUCKETS), default: 'hour' } },
        ],
        responses: {
          '200': { description: 'The model’s quality.', ...json(ref('ModelQuality')) },
          ...problemResponses([...GUARD_CODES, 'OB_ERR_MODEL_NOT_FOUND', 'OB_ERR_INVALID_REQUEST']),
        },
      },
    },
  };
}
