import request from 'supertest';
import { makeProblem } from '@onnx-batch/contracts';
import { createLogger, encodeResultChunk, failedResultChunk, JobStore, type Config } from '@onnx-batch/shared';
import { startWorkerService } from '@onnx-batch/worker';
import { jobKey, keysWithPrefix, newRedis } from '../helpers/env';
import { startStack, type Stack } from '../helpers/stack';

const ROW = { sepal_length: 5.1, sepal_width: 3.5, petal_length: 1.4, petal_width: 0.2 };
const VIRGINICA = [6.7, 3.0, 5.2, 2.3];

function irisRows(n: number): Record<string, unknown>[] {
  return Array.from({ length: n }, (_, i) => ({
    id: `r${i}`,
    sepal_length: 4 + (i % 40) / 10,
    sepal_width: 3,
    petal_length: 1 + (i % 50) / 10,
    petal_width: (i % 25) / 10,
  }));
}

async function finished(stack: Stack, jobId: string): Promise<Record<string, unknown>> {
  for (let i = 0; i < 30; i++) {
    const { body } = await request(stack.url).get(`/v1/batch-result/${jobId}?wait=5`);
    if (['completed', 'failed', 'cancelled'].includes(String(body.status))) return body as Record<string, unknown>;
  }
  throw new Error(`job ${jobId} did not finish`);
}

describe('chunked batches through real Redis, real workers and real models', () => {
  let stack: Stack;
  const redis = newRedis();

  beforeAll(async () => {
    stack = await startStack({ CHUNK_SIZE: '64', INLINE_RESULTS_LIMIT: '500' });
  });

  afterAll(async () => {
    await stack.close();
    await redis.quit();
  });

  it('when a batch spans many chunks, then every row comes back once, in input order, with its id', async () => {
    const rows = irisRows(1000);

    const submitted = await request(stack.url).post('/v1/batch-predict').send({ model: 'iris', version: '1', inputs: rows });
    const job = await finished(stack, String(submitted.body.jobId));
    const ndjson = await request(stack.url)
      .get(`/v1/batch-result/${String(submitted.body.jobId)}/results`)
      .set('accept', 'application/x-ndjson');

    expect(job).toMatchObject({ status: 'completed', progress: { done: 1000, total: 1000, failed: 0 }, results: null });
    const results = ndjson.text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { id: string; label: string });
    expect(results.map((r) => r.id)).toEqual(rows.map((r) => r.id));
    expect(new Set(results.map((r) => r.label))).toEqual(new Set(['setosa', 'versicolor', 'virginica']));
  });

  it('when results are paged as JSON across chunk boundaries, then pages join up to the whole in order', async () => {
    const rows = irisRows(300);
    const submitted = await request(stack.url).post('/v1/batch-predict').send({ model: 'iris', inputs: rows });
    const jobId = String(submitted.body.jobId);
    await finished(stack, jobId);

    const ids: string[] = [];
    let next: string | null = `/v1/batch-result/${jobId}/results?offset=0&limit=70`;
    while (next) {
      const page = await request(stack.url).get(next);
      expect(page.status).toBe(200);
      ids.push(...(page.body.results as { id: string }[]).map((r) => r.id));
      next = page.body.next as string | null;
    }

    expect(ids).toEqual(rows.map((r) => r.id));
  });

  it('when results are asked for as CSV, then the header comes from the manifest and rows keep their ids', async () => {
    const submitted = await request(stack.url)
      .post('/v1/batch-predict')
      .send({ model: 'iris', inputs: [{ id: 'a', ...ROW }, VIRGINICA] });
    const jobId = String(submitted.body.jobId);
    await finished(stack, jobId);

    const csv = await request(stack.url).get(`/v1/batch-result/${jobId}/results`).set('accept', 'text/csv');

    const lines = csv.text.trim().split('\n');
    expect(csv.headers['content-type']).toMatch(/^text\/csv/);
    expect(lines[0]).toBe('id,label,confidence,p_setosa,p_versicolor,p_virginica,error');
    expect(lines[1]).toMatch(/^a,setosa,/);
    expect(lines[2]).toMatch(/^,virginica,/);
  });

  it(
    'when NDJSON rows stream in, then the job runs them; when CSV has a bad cell, then 400 names line and column and ' + 'nothing is left',
    async () => {
      const ndjson = irisRows(2000)
        .map((r) => JSON.stringify(r))
        .join('\n');
      const ok = await request(stack.url)
        .post('/v1/batch-predict?model=iris&version=2')
        .set('content-type', 'application/x-ndjson')
        .send(ndjson);
      expect(ok.status).toBe(202);
      expect(await finished(stack, String(ok.body.jobId))).toMatchObject({ status: 'completed', progress: { done: 2000, total: 2000 } });

      const keysBefore = (await keysWithPrefix(redis, `${stack.config.REDIS_PREFIX}:job`)).length;
      const csvLines = [
        'id,sepal_length,sepal_width,petal_length,petal_width',
        ...irisRows(500).map((r) => `${String(r.id)},5.1,3.5,1.4,0.2`),
      ];
      csvLines[400] = 'bad,5.1,wide,1.4,0.2';
      const bad = await request(stack.url).post('/v1/batch-predict?model=iris').set('content-type', 'text/csv').send(csvLines.join('\n'));

      expect(bad.status).toBe(400);
      expect(bad.body.errors).toEqual([{ line: 401, field: 'sepal_width', message: 'must be number' }]);
      expect((await keysWithPrefix(redis, `${stack.config.REDIS_PREFIX}:job`)).length).toBe(keysBefore);
    },
  );

  it('when a CSV header names a column the model lacks, then 400 names the column', async () => {
    const response = await request(stack.url)
      .post('/v1/batch-predict?model=iris')
      .set('content-type', 'text/csv')
      .send('sepal_length,colour\n1,red\n');

    expect(response.status).toBe(400);
    expect(response.body.errors).toEqual([{ line: 1, field: 'colour', message: 'is not a feature of this model' }]);
  });

  it('when a chunk is recorded twice, then the second write changes nothing', async () => {
    const submitted = await request(stack.url)
      .post('/v1/batch-predict')
      .send({ model: 'iris', inputs: [ROW] });
    const jobId = String(submitted.body.jobId);
    const first = await finished(stack, jobId);
    const store = new JobStore(redis, stack.config.REDIS_PREFIX, stack.config.RESULT_TTL_SECONDS);

    const bogus = encodeResultChunk(failedResultChunk(null, 1, { code: 'OB_ERR_INFERENCE_FAILED', message: 'bogus' }));
    const outcome = await store.completeChunk(jobId, 0, bogus, 1, 1, makeProblem('OB_ERR_INFERENCE_FAILED', 'x'), new Date());
    const after = await request(stack.url).get(`/v1/batch-result/${jobId}`);

    expect(outcome).toEqual({ outcome: 'duplicate', record: null });
    expect(after.body.progress).toEqual(first.progress);
    expect(after.body.results).toEqual(first.results);
  });

  it('when a job finishes, then every key it created carries a TTL no longer than the result TTL', async () => {
    const submitted = await request(stack.url)
      .post('/v1/batch-predict')
      .send({ model: 'iris', inputs: irisRows(200) });
    const jobId = String(submitted.body.jobId);
    await finished(stack, jobId);

    const chunkKeys = await keysWithPrefix(redis, jobKey(stack.config.REDIS_PREFIX, jobId));
    const keys = [jobKey(stack.config.REDIS_PREFIX, jobId), ...chunkKeys];
    const ttls = await Promise.all(keys.map((k) => redis.ttl(k)));

    // inputs are deleted once run
    expect(chunkKeys.sort()).toEqual([0, 1, 2, 3].map((c) => `${jobKey(stack.config.REDIS_PREFIX, jobId)}:out:${c}`));
    for (const ttl of ttls) {
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(stack.config.RESULT_TTL_SECONDS);
    }
  });

  it('when a job is deleted, then its record, inputs and results are gone and it answers 404', async () => {
    const submitted = await request(stack.url)
      .post('/v1/batch-predict')
      .send({ model: 'iris', inputs: irisRows(100) });
    const jobId = String(submitted.body.jobId);
    await finished(stack, jobId);

    const deleted = await request(stack.url).delete(`/v1/batch-result/${jobId}`);

    expect(deleted.status).toBe(204);
    expect(await keysWithPrefix(redis, jobKey(stack.config.REDIS_PREFIX, jobId))).toEqual([]);
    expect((await request(stack.url).get(`/v1/batch-result/${jobId}`)).status).toBe(404);
  });

  it('when cancelling a finished job, then 409 says it already finished', async () => {
    const submitted = await request(stack.url)
      .post('/v1/batch-predict')
      .send({ model: 'iris', inputs: [ROW] });
    await finished(stack, String(submitted.body.jobId));

    const response = await request(stack.url).post(`/v1/batch-result/${String(submitted.body.jobId)}/cancel`);

    expect(response.status).toBe(409);
    expect(response.body.code).toBe('OB_ERR_JOB_FINISHED');
  });
});

describe('queued work without a running worker', () => {
  let stack: Stack;
  const redis = newRedis();

  beforeEach(async () => {
    stack = await startStack({ CHUNK_SIZE: '50', JOB_ATTEMPTS: '2' }, false);
  });

  afterEach(async () => {
    await stack.close();
  });

  afterAll(async () => {
    await redis.quit();
  });

  async function runWorker(config: Config, until: () => Promise<boolean>): Promise<void> {
    const worker = await startWorkerService({ ...config, WORKER_CONCURRENCY: 1 }, createLogger('error', 'test-worker'));
    try {
      for (let i = 0; i < 200 && !(await until()); i++) await new Promise((r) => setTimeout(r, 50));
    } finally {
      await worker.close();
    }
  }

  it(
    'when a job is cancelled before it starts, then it says cancelled, its inputs are dropped and none of its ' + 'chunks ever runs',
    async () => {
      const submitted = await request(stack.url)
        .post('/v1/batch-predict')
        .send({ model: 'iris', inputs: irisRows(500) });
      const jobId = String(submitted.body.jobId);

      const cancelled = await request(stack.url).post(`/v1/batch-result/${jobId}/cancel`);
      await runWorker(
        stack.config,
        async () =>
          (await redis.llen(`${stack.config.REDIS_PREFIX}:chunks:wait`)) +
            (await redis.zcard(`${stack.config.REDIS_PREFIX}:chunks:prioritized`)) ===
          0,
      );
      const after = await request(stack.url).get(`/v1/batch-result/${jobId}`);
      const results = await request(stack.url).get(`/v1/batch-result/${jobId}/results`);

      expect(cancelled.status).toBe(200);
      expect(cancelled.body.status).toBe('cancelled');
      expect(after.body).toMatchObject({ status: 'cancelled', progress: { done: 0, total: 500 } });
      expect(await keysWithPrefix(redis, `${jobKey(stack.config.REDIS_PREFIX, jobId)}:*`)).toEqual([]);
      expect(results.status).toBe(409);
    },
  );

  it('when a chunk input is corrupt, then after its attempts its rows are reported failed, and the others succeed', async () => {
    const submitted = await request(stack.url)
      .post('/v1/batch-predict')
      .send({ model: 'iris', inputs: irisRows(120) });
    const jobId = String(submitted.body.jobId);
    await redis.set(`${jobKey(stack.config.REDIS_PREFIX, jobId)}:in:1`, 'garbage');

    await runWorker(stack.config, async () => (await request(stack.url).get(`/v1/batch-result/${jobId}`)).body.status === 'completed');
    const job = await request(stack.url).get(`/v1/batch-result/${jobId}`);
    const results = job.body.results as { id?: string; label?: string; error?: { code: string; message: string } }[];

    expect(job.body).toMatchObject({ status: 'completed', progress: { done: 120, total: 120, failed: 50 } });
    expect(results.slice(0, 50).every((r) => r.label !== undefined)).toBe(true);
    expect(results.slice(50, 100).every((r) => r.error?.code === 'OB_ERR_INFERENCE_FAILED')).toBe(true);
    expect(results.slice(100).every((r) => r.label !== undefined)).toBe(true);
  });

  it('when the only chunk fails for good, then the job is failed with a problem saying why', async () => {
    const submitted = await request(stack.url)
      .post('/v1/batch-predict')
      .send({ model: 'iris', inputs: [ROW] });
    const jobId = String(submitted.body.jobId);
    await redis.set(`${jobKey(stack.config.REDIS_PREFIX, jobId)}:in:0`, 'garbage');

    await runWorker(stack.config, async () => (await request(stack.url).get(`/v1/batch-result/${jobId}`)).body.status === 'failed');
    const job = await request(stack.url).get(`/v1/batch-result/${jobId}`);

    expect(job.body.status).toBe('failed');
    expect(job.body.error).toMatchObject({ code: 'OB_ERR_INFERENCE_FAILED', status: 500 });
    expect(String(job.body.error.detail)).toContain('not an onnx-batch chunk');
  });

  it('when a bulk job and then an urgent job wait, then the urgent one runs first', async () => {
    const bulk = await request(stack.url)
      .post('/v1/batch-predict')
      .send({ model: 'iris', inputs: [ROW], priority: 900 });
    const urgent = await request(stack.url)
      .post('/v1/batch-predict')
      .send({ model: 'iris', inputs: [ROW], priority: 1 });

    await runWorker(
      stack.config,
      async () => (await request(stack.url).get(`/v1/batch-result/${String(bulk.body.jobId)}`)).body.status === 'completed',
    );
    const bulkJob = await request(stack.url).get(`/v1/batch-result/${String(bulk.body.jobId)}`);
    const urgentJob = await request(stack.url).get(`/v1/batch-result/${String(urgent.body.jobId)}`);

    expect(Date.parse(String(urgentJob.body.finishedAt))).toBeLessThanOrEqual(Date.parse(String(bulkJob.body.startedAt)));
  });
});
