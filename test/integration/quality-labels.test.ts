import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { tableFromArrays, tableToIPC } from 'apache-arrow';
import { DuckDBInstance } from '@duckdb/node-api';
import request from 'supertest';
import type { Redis } from 'ioredis';
import { RedisKeys } from '@onnx-batch/shared';
import { keysWithPrefix, MODELS_DIR, newRedis } from '../helpers/env';
import { parseExposition, sampleValue } from '../helpers/prometheus';
import { loadGolden } from '../helpers/golden';
import { startStack, type Stack } from '../helpers/stack';

// Ground-truth labels joined to kept predictions, against a real Redis, real workers and the real
// iris models: the 150 iris rows (the first 50 setosa, then 50 versicolor, 50 virginica) run on
// version 1 (an MLP that gets 2 of them wrong), labels go in by index and by id, and every figure
// the API reports is checked against one computed here from the job's own results.

const ACME = 'acme-key-0123456789abcdef';
const GLOBEX = 'globex-key-0123456789abcdef';
const READER = 'reader-key-0123456789abcdef';
const LABELS = ['setosa', 'versicolor', 'virginica'];
const truthOf = (row: number): number => Math.floor(row / 50);

interface Result {
  id?: string;
  label: string;
  probabilities: Record<string, number>;
}

interface Quality {
  labelledRows: number;
  predictedRows: number;
  accuracy: number | null;
  confusion: number[][];
  logLoss: number | null;
  brier: number | null;
  macroF1: number | null;
  classes: { label: string; precision: number; recall: number; f1: number; support: number }[];
  estimated: { accuracy: number; calibrationGap: number | null } | null;
}

/** What labelling `rows` of `results` with their true classes must report, computed from the results themselves. */
function expectedQuality(
  results: Result[],
  rows: readonly number[],
): { accuracy: number; confusion: number[][]; logLoss: number; brier: number } {
  const confusion = LABELS.map(() => LABELS.map(() => 0));
  let right = 0;
  let logLoss = 0;
  let brier = 0;
  for (const row of rows) {
    const result = results[row] as Result;
    // The results print float32 values: fround comes as near to what was stored as the printed digits allow.
    const p = LABELS.map((l) => Math.fround(result.probabilities[l] as number));
    const predicted = p.indexOf(Math.max(...p));
    const truth = truthOf(row);
    const cells = confusion[truth] as number[];
    cells[predicted] = (cells[predicted] ?? 0) + 1;
    if (predicted === truth) right++;
    logLoss += -Math.log(Math.max(p[truth] as number, 1e-15));
    brier += p.reduce((a, v, k) => a + (v - (k === truth ? 1 : 0)) ** 2, 0);
  }
  return { accuracy: right / rows.length, confusion, logLoss: logLoss / rows.length, brier: brier / rows.length };
}

describe('ground-truth labels and job quality', () => {
  let stack: Stack;
  let redis: Redis;
  const inputs = loadGolden('iris', '1').inputs as Record<string, number>[];

  beforeAll(async () => {
    stack = await startStack({
      API_KEYS: `acme:${ACME},globex:${GLOBEX},acme:${READER}:read`,
      RATE_LIMIT_PER_MINUTE: '100000',
      CHUNK_SIZE: '40',
      QUALITY_MIN_LABELS: '100',
    });
    redis = newRedis();
  });

  afterAll(async () => {
    await redis.quit();
    await stack.close();
  });

  const auth = (key = ACME) => ({ authorization: `Bearer ${key}` });

  /** Runs the 150 rows (ids `<prefix>-<row>`) on iris `version` (null: the default, routed): the job id and its results in order. */
  async function runJob(prefix: string, version: string | null = '1'): Promise<{ jobId: string; results: Result[] }> {
    const submitted = await request(stack.url)
      .post('/v1/batch-predict')
      .set(auth())
      .send({ model: 'iris', ...(version ? { version } : {}), inputs: inputs.map((row, i) => ({ id: `${prefix}-${i}`, ...row })) });
    expect(submitted.status).toBe(202);
    const jobId = String(submitted.body.jobId);
    for (let status = ''; status !== 'completed';) {
      const polled = await request(stack.url).get(`/v1/batch-result/${jobId}?wait=10`).set(auth());
      status = String(polled.body.status);
      expect(['queued', 'running', 'completed']).toContain(status);
    }
    const page = await request(stack.url).get(`/v1/batch-result/${jobId}/results?format=json&limit=1000`).set(auth());
    expect(page.status).toBe(200);
    return { jobId, results: page.body.results as Result[] };
  }

  const quality = async (jobId: string, key = ACME): Promise<Quality> => {
    const response = await request(stack.url).get(`/v1/batch-result/${jobId}/quality`).set(auth(key));
    expect(response.status).toBe(200);
    return response.body as Quality;
  };

  const postLabels = (jobId: string, body: unknown, key = ACME) =>
    request(stack.url)
      .post(`/v1/batch-result/${jobId}/labels`)
      .set(auth(key))
      .send(body as object);

  it('when every row is labelled by index, then the job reports accuracy, confusion, log loss and Brier of its results', async () => {
    const { jobId, results } = await runJob('all');
    const before = await quality(jobId);
    expect(before).toMatchObject({ predictedRows: 150, labelledRows: 0, accuracy: null });
    // Before any label: the estimate from confidences alone.
    const meanConfidence = results.reduce((a, r) => a + Math.fround(Math.max(...Object.values(r.probabilities))), 0) / 150;
    expect(before.estimated?.accuracy).toBeCloseTo(meanConfidence, 6);

    const all = inputs.map((_, i) => i);
    const answer = await postLabels(
      jobId,
      all.map((index) => ({ index, label: LABELS[truthOf(index)] })),
    );
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({ labels: 150, added: 150, replaced: 0, unchanged: 0 });

    const got = await quality(jobId);
    const want = expectedQuality(results, all);
    expect(got.labelledRows).toBe(150);
    expect(got.confusion).toEqual(want.confusion);
    expect(got.accuracy).toBeCloseTo(want.accuracy, 12);
    // The JSON results print probabilities to float32 precision, not every bit: 1e-6 apart at most.
    expect(got.logLoss).toBeCloseTo(want.logLoss, 6);
    expect(got.brier).toBeCloseTo(want.brier, 6);
    expect(got.estimated?.calibrationGap).toBeCloseTo(want.accuracy - meanConfidence, 6);
    // Version 1 gets a few rows wrong: not a trivial matrix.
    expect(want.accuracy).toBeLessThan(1);
  });

  it('when the same labels come again, or twice at once, then each row counts once; a changed label replaces the old one', async () => {
    const { jobId, results } = await runJob('idem');
    const labels = [0, 1, 2, 60, 61, 120].map((index) => ({ index, label: LABELS[truthOf(index)] }));
    const [a, b] = await Promise.all([postLabels(jobId, labels), postLabels(jobId, labels)]);
    expect([a.status, b.status]).toEqual([200, 200]);
    expect((a.body.added as number) + (b.body.added as number)).toBe(6);
    expect((a.body.unchanged as number) + (b.body.unchanged as number)).toBe(6);
    const again = await postLabels(jobId, labels);
    expect(again.body).toMatchObject({ added: 0, unchanged: 6 });
    expect((await quality(jobId)).confusion).toEqual(expectedQuality(results, [0, 1, 2, 60, 61, 120]).confusion);

    // Row 120 is virginica; saying it is setosa replaces that label: still 6 labelled rows.
    const changed = await postLabels(jobId, [{ index: 120, label: 'setosa' }]);
    expect(changed.body).toMatchObject({ replaced: 1, added: 0 });
    const got = await quality(jobId);
    expect(got.labelledRows).toBe(6);
    const row120 = results[120] as Result;
    const predicted = LABELS.indexOf(row120.label);
    expect(got.confusion[0]?.[predicted]).toBe(1);
    expect(got.confusion[2]?.reduce((x, y) => x + y, 0)).toBe(0);
  });

  it('when labels name rows by the ids they were submitted with, in NDJSON and CSV, then they land on those rows', async () => {
    const { jobId, results } = await runJob('byid');
    const ndjson = [10, 70, 130].map((i) => JSON.stringify({ id: `byid-${i}`, label: LABELS[truthOf(i)] })).join('\n');
    const first = await request(stack.url)
      .post(`/v1/batch-result/${jobId}/labels`)
      .set({ ...auth(), 'content-type': 'application/x-ndjson' })
      .send(ndjson);
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ added: 3 });
    const csv = `id,label\n${[11, 71, 131].map((i) => `byid-${i},${LABELS[truthOf(i)]}`).join('\n')}\n`;
    const second = await request(stack.url)
      .post(`/v1/batch-result/${jobId}/labels`)
      .set({ ...auth(), 'content-type': 'text/csv' })
      .send(csv);
    expect(second.status).toBe(200);
    expect(second.body).toMatchObject({ added: 3 });
    expect((await quality(jobId)).confusion).toEqual(expectedQuality(results, [10, 70, 130, 11, 71, 131]).confusion);
  });

  it('when labels come as an Arrow stream (apache-arrow) or a Parquet file (DuckDB), then they land as NDJSON ones do', async () => {
    const { jobId, results } = await runJob('columnar');
    const arrowRows = [3, 53, 103];
    const ipc = tableToIPC(
      tableFromArrays({ index: Int32Array.from(arrowRows), label: arrowRows.map((i) => LABELS[truthOf(i)] as string) }),
      'stream',
    );
    const arrow = await request(stack.url)
      .post(`/v1/batch-result/${jobId}/labels`)
      .set({ ...auth(), 'content-type': 'application/vnd.apache.arrow.stream' })
      .send(Buffer.from(ipc));
    expect(arrow.status).toBe(200);
    expect(arrow.body).toMatchObject({ labels: 3, added: 3 });
    // A stream cut short (no end-of-stream marker) is refused, not read as fewer labels.
    const cut = await request(stack.url)
      .post(`/v1/batch-result/${jobId}/labels`)
      .set({ ...auth(), 'content-type': 'application/vnd.apache.arrow.stream' })
      .send(Buffer.from(ipc.subarray(0, ipc.length - 8)));
    expect(cut.status).toBe(400);

    const dir = mkdtempSync(path.join(tmpdir(), 'labels-'));
    try {
      const file = path.join(dir, 'labels.parquet');
      const duck = await (await DuckDBInstance.create(':memory:')).connect();
      await duck.run(
        "COPY (SELECT * FROM (VALUES ('columnar-4', 'setosa'), ('columnar-54', 'versicolor'), ('columnar-104', 'virginica')) " +
          `AS t(id, label)) TO '${file}' (FORMAT parquet)`,
      );
      duck.closeSync();
      const parquet = await request(stack.url)
        .post(`/v1/batch-result/${jobId}/labels`)
        .set({ ...auth(), 'content-type': 'application/vnd.apache.parquet' })
        .send(readFileSync(file));
      expect(parquet.status).toBe(200);
      expect(parquet.body).toMatchObject({ labels: 3, added: 3 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    expect((await quality(jobId)).confusion).toEqual(expectedQuality(results, [3, 53, 103, 4, 54, 104]).confusion);
  });

  it('when labels are bad, then the answer names each line and field and nothing is applied', async () => {
    const { jobId } = await runJob('bad');
    const response = await postLabels(jobId, [
      { index: 0, label: 'setosa' },
      { index: 1, label: 'rose' },
      { index: 150, label: 'setosa' },
      { id: 'bad-9999', label: 'setosa' },
      { index: 2, lable: 'setosa' },
      { index: 3, value: 1.5 },
      { index: 4, id: 'bad-4', label: 'setosa' },
      { index: -1, label: 'setosa' },
      { index: 5, label: 'setosa' },
      { index: 5, label: 'virginica' },
    ]);
    expect(response.status).toBe(400);
    expect(response.headers['content-type']).toMatch(/application\/problem\+json/);
    expect(response.body.code).toBe('OB_ERR_INVALID_LABELS');
    const errors = response.body.errors as { line: number; field?: string; message: string }[];
    expect(errors.map((e) => [e.line, e.field ?? null])).toEqual([
      [2, 'label'],
      [3, 'index'],
      [4, 'id'],
      [5, 'lable'],
      [6, 'value'],
      [7, null],
      [8, 'index'],
      [10, null],
    ]);
    expect(errors[0]?.message).toContain('rose');
    expect((await quality(jobId)).labelledRows).toBe(0);

    const notJson = await request(stack.url)
      .post(`/v1/batch-result/${jobId}/labels`)
      .set({ ...auth(), 'content-type': 'application/x-ndjson' })
      .send('{"index": 0, "label": "setosa"}\n{oops\n');
    expect(notJson.status).toBe(400);
    expect(notJson.body.errors).toEqual([{ line: 2, message: 'is not valid JSON' }]);
    const empty = await postLabels(jobId, []);
    expect(empty.status).toBe(400);
    expect((await quality(jobId)).labelledRows).toBe(0);
  });

  it('when another tenant, a read-only key or an unknown job is named, then labels are refused', async () => {
    const { jobId } = await runJob('guard');
    const other = await postLabels(jobId, [{ index: 0, label: 'setosa' }], GLOBEX);
    expect(other.status).toBe(404);
    expect(other.body.code).toBe('OB_ERR_PREDICTIONS_NOT_KEPT');
    expect((await request(stack.url).get(`/v1/batch-result/${jobId}/quality`).set(auth(GLOBEX))).status).toBe(404);
    const reader = await postLabels(jobId, [{ index: 0, label: 'setosa' }], READER);
    expect(reader.status).toBe(403);
    // The read-only key of the same tenant may read the quality.
    expect((await quality(jobId, READER)).labelledRows).toBe(0);
    const unknown = await postLabels('00000000-0000-4000-8000-000000000000', [{ index: 0, label: 'setosa' }]);
    expect(unknown.status).toBe(404);
  });

  it('when labels come by id alone (POST /v1/labels), then each finds the newest prediction of its id in the tenant', async () => {
    const one = await runJob('cross-a');
    const two = await runJob('cross-b');
    const answer = await request(stack.url)
      .post('/v1/labels')
      .set(auth())
      .send([
        { id: 'cross-a-0', label: 'setosa' },
        { id: 'cross-b-149', label: 'virginica' },
        { id: 'cross-b-148', label: 'virginica' },
      ]);
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({ labels: 3, added: 3 });
    expect((answer.body.jobs as string[]).sort()).toEqual([one.jobId, two.jobId].sort());
    expect((await quality(one.jobId)).labelledRows).toBe(1);
    expect((await quality(two.jobId)).labelledRows).toBe(2);
    // Another tenant's ids are not found.
    const other = await request(stack.url)
      .post('/v1/labels')
      .set(auth(GLOBEX))
      .send([{ id: 'cross-a-1', label: 'setosa' }]);
    expect(other.status).toBe(400);
    expect(other.body.errors).toEqual([expect.objectContaining({ line: 1, field: 'id' })]);
  });

  it('when the model quality is read, then the version and arm of the window carry the labelled figures, a bucket an hour', async () => {
    const { jobId, results } = await runJob('model');
    const rows = [0, 50, 51, 100, 101, 102];
    await postLabels(
      jobId,
      rows.map((index) => ({ index, label: LABELS[truthOf(index)] })),
    );
    const response = await request(stack.url).get('/v1/models/iris/quality?version=1&arm=pinned').set(auth());
    expect(response.status).toBe(200);
    const series = response.body.series as (Quality & { version: string; arm: string; buckets: { labelledRows: number }[] })[];
    expect(series.map((s) => [s.version, s.arm])).toEqual([['1', 'pinned']]);
    const [only] = series;
    // Every job of this file ran on version 1 (pinned): the model view adds them all up.
    expect(only?.predictedRows).toBeGreaterThanOrEqual(150);
    expect(only?.buckets.length).toBeGreaterThanOrEqual(24);
    expect(only?.buckets.reduce((a, b) => a + b.labelledRows, 0)).toBe(only?.labelledRows);
    expect(
      expectedQuality(results, rows)
        .confusion.flat()
        .reduce((a, b) => a + b, 0),
    ).toBe(6);
    const bad = await request(stack.url).get('/v1/models/iris/quality?bucket=week').set(auth());
    expect(bad.status).toBe(400);
    const reversed = await request(stack.url).get('/v1/models/iris/quality?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z').set(auth());
    expect(reversed.status).toBe(400);
    expect(reversed.body.errors).toEqual([expect.objectContaining({ field: 'from' })]);
  });

  it('when a job is deleted, then its kept predictions, labels and counters go with it', async () => {
    const { jobId } = await runJob('gone');
    await postLabels(jobId, [{ index: 0, label: 'setosa' }]);
    const keys = new RedisKeys(stack.config.REDIS_PREFIX);
    const kept = async () => (await keysWithPrefix(redis, `${stack.config.REDIS_PREFIX}:quality`)).filter((k) => k.includes(jobId));
    expect((await kept()).length).toBeGreaterThan(0);
    expect(await redis.exists(keys.jobQuality(jobId))).toBe(1);
    expect((await request(stack.url).delete(`/v1/batch-result/${jobId}`).set(auth())).status).toBe(204);
    expect(await kept()).toEqual([]);
    expect(await redis.exists(keys.jobQuality(jobId))).toBe(0);
    expect((await postLabels(jobId, [{ index: 0, label: 'setosa' }])).status).toBe(404);
  });

  it('when predictions are kept, then they expire LABEL_RETENTION_DAYS after they were made, not with the results', async () => {
    const { jobId } = await runJob('ttl');
    const keys = new RedisKeys(stack.config.REDIS_PREFIX);
    const retention = 30 * 86_400;
    const ttl = await redis.ttl(keys.qualityPredictions('iris', jobId, 0));
    expect(ttl).toBeGreaterThan(retention - 120);
    expect(ttl).toBeLessThanOrEqual(retention);
    expect(await redis.ttl(keys.jobQuality(jobId))).toBeGreaterThan(retention - 120);
    expect(await redis.ttl(keys.job(jobId))).toBeLessThanOrEqual(stack.config.RESULT_TTL_SECONDS);
  });

  it('when /metrics is scraped, then realised quality is a gauge only from QUALITY_MIN_LABELS labels, as the model view says', async () => {
    // The default (version 2, routed: arm `default`) gets three labels: counted, but no accuracy reading.
    const few = await runJob('few', null);
    await postLabels(
      few.jobId,
      [0, 1, 2].map((index) => ({ index, label: 'setosa' })),
    );
    const view = await request(stack.url).get('/v1/models/iris/quality?version=1&arm=pinned').set(auth());
    const [pinned] = view.body.series as Quality[];
    const samples = parseExposition((await request(stack.url).get('/metrics')).text);
    const labels = (version: string, arm: string) => ({ model: 'iris', version, arm, window: '24h' });

    expect(pinned?.labelledRows).toBeGreaterThanOrEqual(100);
    expect(sampleValue(samples, 'onnx_batch_quality_accuracy', labels('1', 'pinned'))).toBeCloseTo(pinned?.accuracy as number, 12);
    expect(sampleValue(samples, 'onnx_batch_quality_labelled_rows', labels('1', 'pinned'))).toBe(pinned?.labelledRows);
    expect(sampleValue(samples, 'onnx_batch_quality_estimated_accuracy', labels('1', 'pinned'))).toBeCloseTo(
      pinned?.estimated?.accuracy as number,
      12,
    );
    expect(sampleValue(samples, 'onnx_batch_quality_labelled_rows', labels('2', 'default'))).toBe(3);
    expect(sampleValue(samples, 'onnx_batch_quality_accuracy', labels('2', 'default'))).toBeUndefined();
  });
});

describe('ground-truth labels with LABEL_ID_INDEX=false', () => {
  let stack: Stack;
  let redis: Redis;

  beforeAll(async () => {
    stack = await startStack({ LABEL_ID_INDEX: 'false' });
    redis = newRedis();
  });

  afterAll(async () => {
    await redis.quit();
    await stack.close();
  });

  it('when rows with ids are predicted, no id is indexed, POST /v1/labels says why, and job labels by id still work', async () => {
    const submitted = await request(stack.url)
      .post('/v1/batch-predict')
      .send({ model: 'iris', inputs: [{ id: 'a', sepal_length: 5.1, sepal_width: 3.5, petal_length: 1.4, petal_width: 0.2 }] });
    const jobId = String(submitted.body.jobId);
    while ((await request(stack.url).get(`/v1/batch-result/${jobId}?wait=10`)).body.status !== 'completed');

    expect((await keysWithPrefix(redis, stack.config.REDIS_PREFIX)).filter((k) => k.includes(':ids:'))).toEqual([]);
    const refused = await request(stack.url)
      .post('/v1/labels')
      .send([{ id: 'a', label: 'setosa' }]);
    expect(refused.status).toBe(400);
    expect(String(refused.body.detail)).toContain('LABEL_ID_INDEX=false');
    const byJob = await request(stack.url)
      .post(`/v1/batch-result/${jobId}/labels`)
      .send([{ id: 'a', label: 'setosa' }]);
    expect(byJob.status).toBe(200);
    expect(byJob.body).toMatchObject({ added: 1 });
  });
});

describe('ground-truth labels and a shadow version', () => {
  let stack: Stack;

  beforeAll(async () => {
    stack = await startStack({ CHUNK_SIZE: '50' });
  });

  afterAll(async () => {
    await stack.close();
  });

  it('when a shadow re-ran the chunks of a default job, then its labels judge the shadow version on the same rows too', async () => {
    const put = await request(stack.url)
      .put('/v1/models/iris/rollout')
      .send({ default: '2', shadow: { version: '1', percent: 100 } });
    expect(put.status).toBe(200);
    const inputs = loadGolden('iris', '1').inputs as Record<string, number>[];
    const submitted = await request(stack.url).post('/v1/batch-predict').send({ model: 'iris', inputs });
    const jobId = String(submitted.body.jobId);
    while ((await request(stack.url).get(`/v1/batch-result/${jobId}?wait=10`)).body.status !== 'completed');
    // Shadow runs go after the job's results: wait until all three chunks' shadow predictions are kept.
    const series = async () =>
      (await request(stack.url).get('/v1/models/iris/quality')).body.series as (Quality & { version: string; arm: string })[];
    for (let i = 0; i < 200 && (await series()).find((s) => s.arm === 'shadow')?.predictedRows !== 150; i++)
      await new Promise((resolve) => setTimeout(resolve, 50));

    const labels = inputs.map((_, index) => ({ index, label: LABELS[truthOf(index)] }));
    expect((await request(stack.url).post(`/v1/batch-result/${jobId}/labels`).send(labels)).body).toMatchObject({ added: 150 });

    const byArm = new Map((await series()).map((s) => [`${s.version}:${s.arm}`, s]));
    expect([...byArm.keys()].sort()).toEqual(['1:shadow', '2:default']);
    expect(byArm.get('2:default')).toMatchObject({ predictedRows: 150, labelledRows: 150 });
    expect(byArm.get('1:shadow')).toMatchObject({ predictedRows: 150, labelledRows: 150 });
    // Version 1 on these 150 rows is its evaluation set: its reference accuracy, exactly.
    const reference = loadManifestReference('iris', '1');
    expect(byArm.get('1:shadow')?.accuracy).toBe(reference.accuracy);
    // The job's own figures are its version's (2), not the shadow's.
    const job = (await request(stack.url).get(`/v1/batch-result/${jobId}/quality`)).body as Quality & { version: string };
    expect(job.version).toBe('2');
    expect(job.accuracy).toBe(byArm.get('2:default')?.accuracy);
  });
});

function loadManifestReference(model: string, version: string): { accuracy: number } {
  const manifest = JSON.parse(readFileSync(path.join(MODELS_DIR, model, version, 'model.json'), 'utf8')) as {
    metrics: { reference: { accuracy: number } };
  };
  return manifest.metrics.reference;
}

describe('ground-truth values for a regression model', () => {
  let stack: Stack;

  beforeAll(async () => {
    stack = await startStack({ CHUNK_SIZE: '25' });
  });

  afterAll(async () => {
    await stack.close();
  });

  it('when diabetes rows get their true values, then MAE, RMSE, R² and bias are the version’s reference on the same rows', async () => {
    const rows = readFileSync(path.join(MODELS_DIR, 'diabetes', '1', 'evaluation.ndjson'), 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown> & { id: string; value: number });
    const submitted = await request(stack.url)
      .post('/v1/batch-predict')
      .send({ model: 'diabetes', inputs: rows.map(({ value: _value, ...features }) => features) });
    expect(submitted.status).toBe(202);
    const jobId = String(submitted.body.jobId);
    while ((await request(stack.url).get(`/v1/batch-result/${jobId}?wait=10`)).body.status !== 'completed');

    const csv = `id,value\n${rows.map((r) => `${r.id},${r.value}`).join('\n')}\n`;
    const labelled = await request(stack.url).post(`/v1/batch-result/${jobId}/labels`).set('content-type', 'text/csv').send(csv);
    expect(labelled.body).toMatchObject({ added: rows.length });
    const classifierLabel = await request(stack.url)
      .post(`/v1/batch-result/${jobId}/labels`)
      .send([{ index: 0, label: 'high' }]);
    expect(classifierLabel.status).toBe(400);
    expect(classifierLabel.body.errors).toEqual([expect.objectContaining({ line: 1, field: 'label' })]);

    const quality = (await request(stack.url).get(`/v1/batch-result/${jobId}/quality`)).body as Record<string, unknown>;
    const manifest = JSON.parse(readFileSync(path.join(MODELS_DIR, 'diabetes', '1', 'model.json'), 'utf8')) as {
      metrics: { reference: { mae: number; rmse: number; r2: number; bias: number } };
    };
    const reference = manifest.metrics.reference;
    expect(quality).toMatchObject({ kind: 'regression', labelledRows: rows.length, predictedRows: rows.length });
    for (const figure of ['mae', 'rmse', 'r2', 'bias'] as const) expect(quality[figure]).toBeCloseTo(reference[figure], 9);
  });
});
