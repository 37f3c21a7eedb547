import { startApiService, type ApiService } from '@onnx-batch/api';
import { loadConfig, type Config } from '@onnx-batch/shared';
import { startWorkerService, type WorkerService } from '@onnx-batch/worker';
import { capturedLogger, type CapturedLogger } from '../helpers/captured-logs';
import { testEnv } from '../helpers/env';
import { startPrivateRedis, type PrivateRedis } from '../helpers/private-redis';
import { eventually, finishedJob, rawRequest, sleep, uploadIrisNdjson } from '../helpers/reliability';

/**
 * A full or evicting Redis never costs an accepted job, and every client is told why
 * (docs/operations.md, "Redis memory"). Each case runs the real API (and worker) in this process
 * against a redis-server of its own, whose policy and maxmemory the test sets with CONFIG SET:
 * a real `OOM` reply, never a mocked one.
 */
const IRIS_ROW = { sepal_length: 5.1, sepal_width: 3.5, petal_length: 1.4, petal_width: 0.2 };

interface Service {
  config: Config;
  api: ApiService;
  worker: WorkerService | null;
  logs: CapturedLogger;
  url: string;
  close(): Promise<void>;
}

async function startService(
  redis: PrivateRedis,
  overrides: Record<string, string> = {},
  options: { worker?: boolean; hooks?: Parameters<typeof startWorkerService>[2] } = {},
): Promise<Service> {
  const config = loadConfig(
    testEnv({ REDIS_URL: redis.url, RATE_LIMIT_PER_MINUTE: '0', REDIS_MEMORY_CHECK_INTERVAL_MS: '100', ...overrides }),
  );
  const logs = capturedLogger();
  const api = await startApiService(config, logs.logger);
  const worker = options.worker ? await startWorkerService(config, logs.logger, options.hooks) : null;
  return {
    config,
    api,
    worker,
    logs,
    url: api.url,
    async close() {
      await worker?.close();
      await api.close();
    },
  };
}

async function submitJson(url: string, body: unknown, headers: Record<string, string> = {}) {
  const response = await fetch(`${url}/v1/batch-predict`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  return { status: response.status, headers: response.headers, body: (await response.json()) as Record<string, unknown> };
}

/** `/readyz` once the API's Redis connection is up (right after start it may still be connecting). */
async function readyz(url: string) {
  let answer = { status: 0, body: {} as Record<string, unknown> };
  await eventually('the API has connected to Redis', async () => {
    const response = await fetch(`${url}/readyz`);
    answer = { status: response.status, body: (await response.json()) as Record<string, unknown> };
    return (answer.body.checks as { redis?: boolean } | undefined)?.redis === true;
  });
  return answer;
}

/** The lines matching `pattern` once there are `count` of them (checks log as Redis answers). */
async function waitForLines(logs: CapturedLogger, pattern: RegExp, count: number): Promise<Record<string, unknown>[]> {
  await eventually(`${count} log lines match ${String(pattern)}`, () => logs.matching(pattern).length >= count);
  await sleep(300); // and no more come
  return logs.matching(pattern);
}

/** Every key of the server (a private one: this test's alone), but a worker's stalled-check marker, which BullMQ renews on its own. */
async function allKeys(redis: PrivateRedis): Promise<string[]> {
  return (await redis.client().keys('*')).filter((key) => !key.endsWith(':stalled-check')).sort();
}

/** Used memory as Redis counts it against maxmemory. */
async function usedMemory(redis: PrivateRedis): Promise<number> {
  const info = await redis.client().info('memory');
  const field = (name: string): number => Number(new RegExp(`^${name}:(\\d+)`, 'm').exec(info)?.[1] ?? 0);
  return field('used_memory') - field('mem_not_counted_for_evict');
}

/** Sets maxmemory so that Redis is at `share` of it now. */
async function fillTo(redis: PrivateRedis, share: number): Promise<void> {
  await redis.client().config('SET', 'maxmemory', String(Math.floor((await usedMemory(redis)) / share)));
}

describe('reliability: a Redis that may evict keys', () => {
  let redis: PrivateRedis;

  beforeAll(async () => {
    redis = await startPrivateRedis({ args: ['--maxmemory', '256mb', '--maxmemory-policy', 'allkeys-lru'] });
  });

  afterAll(async () => {
    await redis.destroy();
  });

  it(
    'when Redis has maxmemory-policy allkeys-lru, ' +
      'then /readyz is 503 naming it, submits are refused with nothing written, and the error is logged with its fix; ' +
      'once fixed both recover',
    async () => {
      const service = await startService(redis, {}, { worker: true });
      try {
        const ready = await readyz(service.url);
        expect(ready.status).toBe(503);
        expect(ready.body.code).toBe('OB_ERR_NOT_READY');
        expect(ready.body.checks).toMatchObject({ redis: true, redisEviction: false, models: true });
        expect(String(ready.body.detail)).toContain('maxmemory-policy allkeys-lru');
        expect(String(ready.body.detail)).toContain('CONFIG SET maxmemory-policy noeviction');

        const before = await allKeys(redis);
        const refused = await submitJson(service.url, { model: 'iris', inputs: [IRIS_ROW] });
        expect(refused.status).toBe(503);
        expect(refused.body).toMatchObject({ code: 'OB_ERR_REDIS_EVICTING', status: 503 });
        expect(String(refused.body.detail)).toContain('maxmemory-policy allkeys-lru');
        const streamed = await uploadIrisNdjson(service.url, 5000);
        expect(streamed.status).toBe(503);
        expect(JSON.parse(streamed.text)).toMatchObject({ code: 'OB_ERR_REDIS_EVICTING' });
        // An Open Inference Protocol client is refused too, in that protocol's {"error"} shape, and not ready.
        const infer = await fetch(`${service.url}/v2/models/iris/infer`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [5.1, 3.5, 1.4, 0.2] }] }),
        });
        expect(infer.status).toBe(503);
        expect(await infer.json()).toEqual({ error: expect.stringContaining('maxmemory-policy allkeys-lru') as string });
        const oipReady = await fetch(`${service.url}/v2/health/ready`);
        expect(oipReady.status).toBe(503);
        expect(await allKeys(redis)).toEqual(before);

        // Once by the API and once by the worker, not at every check.
        const logged = await waitForLines(service.logs, /maxmemory-policy allkeys-lru/, 2);
        expect(logged).toHaveLength(2);
        for (const line of logged) {
          expect(line).toMatchObject({ level: 'error', setting: 'maxmemory-policy' });
          expect(String(line.message)).toContain('CONFIG SET maxmemory-policy noeviction');
        }

        // volatile-* only evicts keys with a TTL, but those are the results of finished jobs: refused as well.
        await redis.client().config('SET', 'maxmemory-policy', 'volatile-lru');
        expect((await readyz(service.url)).status).toBe(503);

        await redis.client().config('SET', 'maxmemory-policy', 'noeviction');
        const fixed = await readyz(service.url);
        expect(fixed.status).toBe(200);
        expect(fixed.body.checks).toMatchObject({ redisEviction: true, storage: true });
        expect((await submitJson(service.url, { model: 'iris', inputs: [IRIS_ROW] })).status).toBe(202);
      } finally {
        await service.close();
        await redis.client().config('SET', 'maxmemory-policy', 'allkeys-lru');
      }
    },
  );

  it('when ALLOW_EVICTING_REDIS=true, ' + 'then the service is ready and accepts jobs, and says loudly that they may be lost', async () => {
    const service = await startService(redis, { ALLOW_EVICTING_REDIS: 'true' });
    try {
      const ready = await readyz(service.url);
      expect(ready.status).toBe(200);
      expect(ready.body.storage).toMatchObject({ evictionAllowed: true, acceptingJobs: true });
      expect((await submitJson(service.url, { model: 'iris', inputs: [IRIS_ROW] })).status).toBe(202);
      expect(service.logs.matching(/ALLOW_EVICTING_REDIS=true/)[0]).toMatchObject({ level: 'error' });
      await eventually('the policy is logged', () => service.logs.matching(/maxmemory-policy allkeys-lru/).length > 0);
    } finally {
      await service.close();
    }
  });

  it('when CONFIG is disabled (as on managed services), then the policy is read from INFO memory and still refused', async () => {
    const managed = await startPrivateRedis({ args: ['--maxmemory-policy', 'allkeys-lfu', '--rename-command', 'CONFIG', ''] });
    const service = await startService(managed);
    try {
      const ready = await readyz(service.url);
      expect(ready.status).toBe(503);
      expect(String(ready.body.detail)).toContain('maxmemory-policy allkeys-lfu');
      expect((ready.body.storage as { nodes: { policySource: string }[] }).nodes[0]?.policySource).toBe('info');
      expect((await submitJson(service.url, { model: 'iris', inputs: [IRIS_ROW] })).body.code).toBe('OB_ERR_REDIS_EVICTING');
    } finally {
      await service.close();
      await managed.destroy();
    }
  });
});

describe('reliability: a full Redis', () => {
  let redis: PrivateRedis;

  beforeEach(async () => {
    redis = await startPrivateRedis();
  });

  afterEach(async () => {
    await redis.destroy();
  });

  it(
    'when memory is above the high watermark, ' +
      'then new jobs get 507 with Retry-After and nothing is written, while /readyz stays 200, polls and downloads go on, ' +
      'and the gauge shows the ratio',
    async () => {
      const service = await startService(redis, {}, { worker: true });
      try {
        const first = await submitJson(service.url, { model: 'iris', inputs: [IRIS_ROW, IRIS_ROW] });
        expect(first.status).toBe(202);
        const jobId = String(first.body.jobId);
        await finishedJob(service.url, jobId);
        // The worker flushes its drift counts once a second: wait for them, or they land after `before`.
        await eventually('the first job’s drift counts are written', async () => (await allKeys(redis)).some((k) => k.includes(':drift:')));
        await fillTo(redis, 0.9);
        await eventually('the API sees the new maxmemory', async () => (await readyz(service.url)).body.checks !== undefined);

        const before = await allKeys(redis);
        const refused = await submitJson(service.url, { model: 'iris', inputs: [IRIS_ROW] });
        expect(refused.status).toBe(507);
        expect(refused.headers.get('content-type')).toMatch(/^application\/problem\+json/);
        expect(refused.headers.get('retry-after')).toBe('30');
        expect(refused.body).toMatchObject({ code: 'OB_ERR_STORAGE_FULL', status: 507, title: 'Storage full' });
        expect(String(refused.body.detail)).toMatch(/above the 85 % kept for the jobs already accepted/);
        const sync = await fetch(`${service.url}/v1/models/iris/predict`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ inputs: [IRIS_ROW] }),
        });
        expect(sync.status).toBe(507);
        expect((await uploadIrisNdjson(service.url, 3000)).status).toBe(507);
        expect(await allKeys(redis)).toEqual(before);

        const ready = await readyz(service.url);
        expect(ready.status).toBe(200);
        expect(ready.body.checks).toMatchObject({ redis: true, redisEviction: true, storage: false });
        expect(ready.body.storage).toMatchObject({ acceptingJobs: false, highWatermark: 0.85 });
        expect((ready.body.storage as { memoryRatio: number }).memoryRatio).toBeGreaterThan(0.85);

        const poll = await fetch(`${service.url}/v1/batch-result/${jobId}`);
        expect(poll.status).toBe(200);
        const download = await fetch(`${service.url}/v1/batch-result/${jobId}/results`, { headers: { accept: 'application/x-ndjson' } });
        expect(download.status).toBe(200);
        expect((await download.text()).trim().split('\n')).toHaveLength(2);

        const metrics = await (await fetch(`${service.url}/metrics`)).text();
        const ratio = Number(/^onnx_batch_redis_memory_ratio (\S+)$/m.exec(metrics)?.[1]);
        expect(ratio).toBeGreaterThan(0.85);
        expect(metrics).toMatch(/^onnx_batch_redis_memory_high_watermark 0\.85$/m);
        expect(metrics).toMatch(/^onnx_batch_redis_evicting_servers 0$/m);
        expect(service.logs.matching(/above REDIS_MEMORY_HIGH_WATERMARK/)).toHaveLength(1);

        // Room again (jobs deleted, or maxmemory raised): jobs are accepted.
        await redis.client().config('SET', 'maxmemory', '0');
        await eventually('new jobs are accepted again', async () => (await readyz(service.url)).body.checks !== undefined);
        await eventually(
          'a submit is accepted',
          async () => (await submitJson(service.url, { model: 'iris', inputs: [IRIS_ROW] })).status === 202,
        );
      } finally {
        await service.close();
      }
    },
  );

  it(
    'when Redis refuses writes at maxmemory, ' +
      'then every way of submitting gets 507 and leaves nothing behind, the same Idempotency-Key works once there is room, ' +
      'and deletes still free memory',
    async () => {
      // The guard checks once at start only: Redis itself must refuse (staging, commit, idempotency claim).
      const service = await startService(redis, { REDIS_MEMORY_HIGH_WATERMARK: '1', REDIS_MEMORY_CHECK_INTERVAL_MS: '600000' });
      try {
        expect((await readyz(service.url)).status).toBe(200);
        const queued = await submitJson(service.url, { model: 'iris', inputs: [IRIS_ROW, IRIS_ROW] });
        expect(queued.status).toBe(202); // no worker: it stays queued
        const used = await usedMemory(redis);
        const before = await allKeys(redis);
        // Room for a few staged chunks, not for 60 000 rows (about 1 MB of inputs).
        await redis.client().config('SET', 'maxmemory', String(used + 200_000));

        const streamed = await uploadIrisNdjson(service.url, 60_000);
        expect(streamed.status).toBe(507);
        expect(streamed.headers['retry-after']).toBe('30');
        expect(JSON.parse(streamed.text)).toMatchObject({ code: 'OB_ERR_STORAGE_FULL', status: 507 });
        expect(await allKeys(redis)).toEqual(before);

        await redis.client().config('SET', 'maxmemory', String(used - 1_000_000 > 0 ? used - 1_000_000 : 1));
        const key = { 'idempotency-key': 'nightly-2026-12-07' };
        const json = await submitJson(service.url, { model: 'iris', inputs: [IRIS_ROW] }, key);
        expect(json.status).toBe(507);
        expect(json.body.code).toBe('OB_ERR_STORAGE_FULL');
        const csv = await rawRequest(
          service.url,
          'POST',
          '/v1/batch-predict?model=iris',
          { 'content-type': 'text/csv' },
          'sepal_length,sepal_width,petal_length,petal_width\n5.1,3.5,1.4,0.2\n',
        );
        expect(csv.status).toBe(507);
        expect(await allKeys(redis)).toEqual(before);

        // Polls are reads: they go on. Cancel writes: 507. Delete frees memory, so it works even now.
        expect((await fetch(`${service.url}/v1/batch-result/${String(queued.body.jobId)}`)).status).toBe(200);
        const cancel = await fetch(`${service.url}/v1/batch-result/${String(queued.body.jobId)}/cancel`, { method: 'POST' });
        expect(cancel.status).toBe(507);
        const deleted = await fetch(`${service.url}/v1/batch-result/${String(queued.body.jobId)}`, { method: 'DELETE' });
        expect(deleted.status).toBe(204);
        // Its own keys are gone (its BullMQ chunk job stays queued; a worker taking it finds no job and skips it).
        expect((await allKeys(redis)).filter((k) => k.includes(':job:') && k.includes(String(queued.body.jobId).slice(2)))).toEqual([]);

        await redis.client().config('SET', 'maxmemory', '0');
        const again = await submitJson(service.url, { model: 'iris', inputs: [IRIS_ROW] }, key);
        expect(again.status).toBe(202); // the refused attempt left no claim behind
      } finally {
        await service.close();
      }
    },
  );

  it(
    'when memory is above the high watermark, then an upload to /v1/files and a new batch get 507 in the Batch API shape with ' +
      'Retry-After, and nothing is written; a file uploaded before stays readable',
    async () => {
      const service = await startService(redis);
      try {
        const line = JSON.stringify({ custom_id: 'a', method: 'POST', url: '/v1/models/iris/predict', body: { inputs: [IRIS_ROW] } });
        const upload = () => {
          const form = new FormData();
          form.append('file', new Blob([`${line}\n`]), 'requests.jsonl');
          form.append('purpose', 'batch');
          return fetch(`${service.url}/v1/files`, { method: 'POST', body: form });
        };
        const stored = (await (await upload()).json()) as { id: string };
        await fillTo(redis, 0.9);
        await eventually(
          'the API refuses new jobs',
          async () =>
            (await readyz(service.url)).body.checks !== undefined &&
            ((await readyz(service.url)).body.checks as { storage?: boolean }).storage === false,
        );
        const before = await allKeys(redis);

        const refusedUpload = await upload();
        expect(refusedUpload.status).toBe(507);
        expect(refusedUpload.headers.get('retry-after')).toBe('30');
        expect(await refusedUpload.json()).toMatchObject({ error: { type: 'server_error', code: 'OB_ERR_STORAGE_FULL' } });
        const batch = await fetch(`${service.url}/v1/batches`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ input_file_id: stored.id, endpoint: '/v1/models/iris/predict', completion_window: '24h' }),
        });
        expect(batch.status).toBe(507);
        expect(await batch.json()).toMatchObject({ error: { code: 'OB_ERR_STORAGE_FULL' } });
        expect(await allKeys(redis)).toEqual(before);
        const content = await fetch(`${service.url}/v1/files/${stored.id}/content`);
        expect(await content.text()).toBe(`${line}\n`);
      } finally {
        await service.close();
      }
    },
  );

  it('when Redis refuses writes at maxmemory, then labels get 507 and apply nothing; with room again the same labels apply', async () => {
    const service = await startService(
      redis,
      { REDIS_MEMORY_HIGH_WATERMARK: '1', REDIS_MEMORY_CHECK_INTERVAL_MS: '600000' },
      { worker: true },
    );
    try {
      const first = await submitJson(service.url, { model: 'iris', version: '2', inputs: [IRIS_ROW, IRIS_ROW] });
      expect(first.status).toBe(202);
      const jobId = String(first.body.jobId);
      await finishedJob(service.url, jobId);
      const labels = JSON.stringify([
        { index: 0, label: 'setosa' },
        { index: 1, label: 'virginica' },
      ]);
      const post = () =>
        fetch(`${service.url}/v1/batch-result/${jobId}/labels`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: labels,
        });
      const used = await usedMemory(redis);
      await redis.client().config('SET', 'maxmemory', String(used - 1_000_000 > 0 ? used - 1_000_000 : 1));

      const refused = await post();
      expect(refused.status).toBe(507);
      expect(refused.headers.get('retry-after')).toBe('30');
      expect((await refused.json()) as { code: string }).toMatchObject({ code: 'OB_ERR_STORAGE_FULL' });
      // Reads go on, and show nothing applied.
      const quality = await fetch(`${service.url}/v1/batch-result/${jobId}/quality`);
      expect(quality.status).toBe(200);
      expect((await quality.json()) as { labelledRows: number }).toMatchObject({ labelledRows: 0 });

      await redis.client().config('SET', 'maxmemory', '0');
      const applied = await post();
      expect(applied.status).toBe(200);
      expect((await applied.json()) as { added: number }).toMatchObject({ added: 2 });
    } finally {
      await service.close();
    }
  });
});

describe('reliability: workers and a full Redis', () => {
  let redis: PrivateRedis;

  beforeEach(async () => {
    redis = await startPrivateRedis();
  });

  afterEach(async () => {
    await redis.destroy();
  });

  it(
    'when Redis fills up between a worker taking a chunk and beginning it, ' +
      'then the chunk waits for room instead of failing, and the job completes with no failed row once memory is freed',
    async () => {
      let filled = false;
      const service = await startService(
        redis,
        // Two attempts: refused writes spent as attempts (as BullMQ retries do) would fail the rows within the 2.5 s.
        { JOB_ATTEMPTS: '2', JOB_BACKOFF_MS: '50' },
        {
          worker: true,
          hooks: {
            processorHooks: {
              beforeBegin: async () => {
                if (filled) return;
                filled = true;
                await redis.client().config('SET', 'maxmemory', '1');
                setTimeout(() => void redis.client().config('SET', 'maxmemory', '0'), 2500);
              },
            },
          },
        },
      );
      try {
        const submitted = await submitJson(service.url, { model: 'iris', inputs: Array.from({ length: 20 }, () => IRIS_ROW) });
        expect(submitted.status).toBe(202);
        const job = await finishedJob(service.url, String(submitted.body.jobId));
        expect(filled).toBe(true);
        expect(job).toMatchObject({ status: 'completed', progress: { done: 20, total: 20, failed: 0 } });
        expect(service.logs.matching(/Redis is full \(maxmemory\): beginning the chunk waits for room/)).toHaveLength(1);
        expect(service.logs.matching(/chunk failed|job attempt failed/)).toEqual([]); // no attempt was spent
      } finally {
        await service.close();
      }
    },
  );

  it(
    'when Redis is full as workers start, ' +
      'then they pause (no busy loop, one log line) and every accepted job completes without a failed row once memory is freed',
    async () => {
      const api = await startService(redis);
      const workerLogs = capturedLogger();
      let worker: WorkerService | null = null;
      try {
        const ids: string[] = [];
        for (let i = 0; i < 3; i++) ids.push(String((await submitJson(api.url, { model: 'iris', inputs: [IRIS_ROW] })).body.jobId));
        const upload = await uploadIrisNdjson(api.url, 9000);
        expect(upload.status).toBe(202);
        ids.push(String((JSON.parse(upload.text) as { jobId: string }).jobId));
        await redis.client().config('SET', 'maxmemory', '1');

        worker = await startWorkerService(api.config, workerLogs.logger);
        await sleep(1500);
        for (const id of ids) {
          const status = (await (await fetch(`${api.url}/v1/batch-result/${id}`)).json()) as Record<string, unknown>;
          expect(status).toMatchObject({ status: 'queued', progress: { done: 0, failed: 0 } });
        }
        expect(workerLogs.matching(/takes no new jobs until there is room/)).toHaveLength(1);
        expect(workerLogs.matching(/^worker error$/)).toEqual([]);

        await redis.client().config('SET', 'maxmemory', '0');
        for (const id of ids) expect(await finishedJob(api.url, id)).toMatchObject({ status: 'completed', progress: { failed: 0 } });
        expect(workerLogs.matching(/has room again/)).toHaveLength(1);
      } finally {
        await worker?.close();
        await api.close();
      }
    },
  );
});
