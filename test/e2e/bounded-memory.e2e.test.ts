import { Redis } from 'ioredis';
import { rssBytes, sleep, uploadIrisNdjson } from '../helpers/reliability';
import { testEnv } from '../helpers/env';
import { startPrivateRedis, type PrivateRedis } from '../helpers/private-redis';
import { spawnApi, spawnWorker, type Spawned } from '../helpers/processes';

const MB = 1024 * 1024;

/** Streams `rows` iris rows as NDJSON and answers the API's status and JSON body. */
async function streamIris(baseUrl: string, rows: number): Promise<{ status: number; body: Record<string, unknown> }> {
  const answer = await uploadIrisNdjson(baseUrl, rows, 'model=iris');
  return { status: answer.status, body: JSON.parse(answer.text) as Record<string, unknown> };
}

describe('bounded memory', () => {
  let redis: PrivateRedis;
  let api: Spawned | undefined;
  let worker: Spawned | undefined;

  beforeAll(async () => {
    redis = await startPrivateRedis();
  });

  afterEach(async () => {
    await Promise.all([api?.stop(), worker?.stop()]);
    api = worker = undefined;
  });

  afterAll(async () => {
    await redis.destroy();
  });

  it('when 1 000 000 iris rows stream in, then the API RSS stays within 100 MB of idle', async () => {
    const env = testEnv({ REDIS_URL: redis.url });
    const started = await spawnApi(env);
    api = started.proc;
    await sleep(500);
    const idle = rssBytes(api.pid);
    let peak = idle;
    const sampler = setInterval(() => {
      peak = Math.max(peak, rssBytes(started.proc.pid));
    }, 50);

    const answer = await streamIris(started.url, 1_000_000);
    clearInterval(sampler);

    expect(answer.status).toBe(202);
    expect((peak - idle) / MB).toBeLessThan(100);
  });

  it('when jobs finish and their TTL passes, then Redis memory returns to its baseline', async () => {
    const client = redis.client();
    const env = testEnv({ REDIS_URL: redis.url, RESULT_TTL_SECONDS: '2', CHUNK_SIZE: '500' });
    const started = await spawnApi(env);
    api = started.proc;
    worker = await spawnWorker(env);
    // Warm up once so BullMQ's own long-lived keys (queue meta, scripts) are in the baseline.
    const warm = await streamIris(started.url, 10);
    await waitFinished(started.url, String(warm.body.jobId));
    await sleep(3000);
    const baseline = await usedMemory(client);

    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push(String((await streamIris(started.url, 20_000)).body.jobId));
    for (const id of ids) await waitFinished(started.url, id);
    const loaded = await usedMemory(client);
    await sleep(3500); // past the 2 s TTL

    expect(loaded - baseline).toBeGreaterThan(1 * MB); // the results really were there
    expect(await client.keys(`${env.REDIS_PREFIX}:job:*`)).toEqual([]);
    // What outlives the results is what labels need (LABEL_RETENTION_DAYS): each job's kept predictions
    // and its rows' ids (measured: about 23 and 19 bytes a row for iris, against 69 for the results);
    // once those expire (deleted here, as their TTL would), nothing is left.
    const kept = await client.keys(`${env.REDIS_PREFIX}:quality:*`);
    expect(kept.length).toBeGreaterThan(0);
    for (const key of kept) expect(await client.ttl(key)).toBeGreaterThan(29 * 86_400);
    const keptBytes = (await usedMemory(client)) - baseline;
    expect(keptBytes).toBeLessThan((loaded - baseline) * 0.75);
    await client.del(...kept);
    const after = await usedMemory(client);
    expect(Math.abs(after - baseline)).toBeLessThan(256 * 1024);
  });

  it('when LABEL_RETENTION_DAYS=0, then nothing is kept for labels and memory returns to its baseline with the results', async () => {
    const client = redis.client();
    const env = testEnv({ REDIS_URL: redis.url, RESULT_TTL_SECONDS: '2', CHUNK_SIZE: '500', LABEL_RETENTION_DAYS: '0' });
    const started = await spawnApi(env);
    api = started.proc;
    worker = await spawnWorker(env);
    const warm = await streamIris(started.url, 10);
    await waitFinished(started.url, String(warm.body.jobId));
    await sleep(3000);
    const baseline = await usedMemory(client);
    const id = String((await streamIris(started.url, 20_000)).body.jobId);
    await waitFinished(started.url, id);
    await sleep(3500);
    expect(await client.keys(`${env.REDIS_PREFIX}:quality:*`)).toEqual([]);
    expect(Math.abs((await usedMemory(client)) - baseline)).toBeLessThan(256 * 1024);
  });
});

async function usedMemory(client: Redis): Promise<number> {
  await client.call('MEMORY', 'PURGE');
  const info = await client.info('memory');
  return Number(/used_memory:(\d+)/.exec(info)?.[1] ?? 0);
}

async function waitFinished(baseUrl: string, jobId: string): Promise<void> {
  for (let i = 0; i < 60; i++) {
    const response = await fetch(`${baseUrl}/v1/batch-result/${jobId}?wait=5`);
    const body = (await response.json()) as { status: string };
    if (body.status === 'completed') return;
  }
  throw new Error(`job ${jobId} did not complete`);
}
