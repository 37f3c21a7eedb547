import { readFileSync } from 'node:fs';
import path from 'node:path';
import { compareWithGolden, loadGolden, type ClassificationResult } from '../helpers/golden';
import { dropPrefix, newRedis, ROOT, testEnv } from '../helpers/env';
import { getJson, postJson, waitForJob } from '../helpers/http';
import { spawnApi, spawnWorker, type Spawned } from '../helpers/processes';

const LABELS = ['setosa', 'versicolor', 'virginica'];

describe('end to end: real api and worker processes on iris', () => {
  const env = testEnv();
  let api: Spawned;
  let worker: Spawned;
  let url: string;

  beforeAll(async () => {
    [{ proc: api, url }, worker] = await Promise.all([spawnApi(env), spawnWorker(env)]);
  });

  afterAll(async () => {
    await Promise.all([api?.stop(), worker?.stop()]);
    const redis = newRedis();
    await dropPrefix(redis, env.REDIS_PREFIX);
    await redis.quit();
  });

  it.each(['1', '2'])(
    'when the 150 golden rows are submitted to version %s, then every probability matches the training framework within 1e-5',
    async (version) => {
      const golden = loadGolden('iris', version);

      const submitted = await postJson(`${url}/v1/batch-predict`, { model: 'iris', version, inputs: golden.inputs });
      expect(submitted.status).toBe(202);
      expect(submitted.headers.get('location')).toBe(`/v1/batch-result/${String(submitted.body.jobId)}`);
      const job = await waitForJob(url, String(submitted.body.jobId));

      expect(job.status).toBe('completed');
      expect(job.progress).toEqual({ done: 150, total: 150, failed: 0 });
      const results = job.results as ClassificationResult[];
      expect(results).toHaveLength(150);
      const { maxDiff, labelMismatches } = compareWithGolden(results, golden, LABELS);
      expect(labelMismatches).toEqual([]);
      expect(maxDiff).toBeLessThanOrEqual(1e-5);
    },
  );

  it(
    "when the README's quick-start batch is submitted, then its results are exactly the README's (float32 precision: 1, " + '0.96, 0.04)',
    async () => {
      const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
      const body = /-d '(\{"model":"iris","inputs":\[\{"sepal_length":5\.1.*?\]\})'/.exec(readme)?.[1];
      const shown = /"results": (\[[\s\S]*?\n {2}\])\n\}/.exec(readme)?.[1];

      const submitted = await postJson(`${url}/v1/batch-predict`, JSON.parse(body ?? 'null'));
      const { body: job } = await getJson(`${url}/v1/batch-result/${String(submitted.body.jobId)}?wait=10`);

      expect(job.results).toEqual(JSON.parse(shown ?? 'null'));
    },
  );

  it('when the unversioned seed path gets a bare array, then it runs the default model and answers the same contract', async () => {
    const submitted = await postJson(`${url}/batch-predict`, [[5.1, 3.5, 1.4, 0.2]]);
    expect(submitted.status).toBe(202);

    const { status, body } = await getJson(`${url}/batch-result/${String(submitted.body.jobId)}?wait=10`);

    expect(status).toBe(200);
    expect(body).toMatchObject({ status: 'completed', model: { name: 'iris', version: '2' }, progress: { done: 1, total: 1 } });
    expect((body.results as ClassificationResult[])[0]?.label).toBe('setosa');
  });

  it('when a request carries X-Request-Id, then the answer echoes it and the api logs it with the job id', async () => {
    const submitted = await postJson(
      `${url}/v1/batch-predict`,
      { model: 'iris', inputs: [[6.7, 3.0, 5.2, 2.3]] },
      { 'x-request-id': 'e2e-trace-1' },
    );

    expect(submitted.headers.get('x-request-id')).toBe('e2e-trace-1');
    const line = await api.waitForLine((l) => l.requestId === 'e2e-trace-1' && l.message === 'request');
    expect(line.jobId).toBe(submitted.body.jobId);
    const workerLine = await worker.waitForLine((l) => l.jobId === submitted.body.jobId);
    expect(workerLine.jobId).toBe(submitted.body.jobId);

    // Polls are answered without Express (api/src/http/fast-polls.ts): they log the same line.
    const polled = await getJson(`${url}/v1/batch-result/${String(submitted.body.jobId)}?wait=10`, { 'x-request-id': 'e2e-trace-2' });
    expect(polled.headers.get('x-request-id')).toBe('e2e-trace-2');
    const pollLine = await api.waitForLine((l) => l.requestId === 'e2e-trace-2' && l.message === 'request');
    expect(pollLine).toMatchObject({ jobId: submitted.body.jobId, method: 'GET', status: 200 });
  });
});
