import request from 'supertest';
import type { Redis } from 'ioredis';
import { RedisKeys } from '@onnx-batch/shared';
import { keysWithPrefix, newRedis } from '../helpers/env';
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
    // The results print float32 values in their shortest form: fround gives back what was stored.
    const p = LABELS.map((l) => Math.fround(result.probabilities[l] as number));
    const predicted = p.indexOf(Math.max(...p));
    const truth = truthOf(row);
    const cells = confusion[truth] as number[];
    cells[predicted] = (cells[predicted] as number) + 1;
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
    });
    redis = newRedis();
  });

  afterAll(async () => {
    await redis.quit();
    await stack.close();
  });

  const auth = (key = ACME) => ({ authorization: `Bearer ${key}` });

  /** Runs the 150 rows (ids `<prefix>-<row>`) on iris `version` and answers the job id and its results in input order. */
  async function runJob(prefix: string, version = '1'): Promise<{ jobId: string; results: Result[] }> {
    const submitted = await request(stack.url)
      .post('/v1/batch-predict')
      .set(auth())
      .send({ model: 'iris', version, inputs: inputs.map((row, i) => ({ id: `${prefix}-${i}`, ...row })) });
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
});
