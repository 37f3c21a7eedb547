import { Redis } from 'ioredis';
import { jobKey, testEnv, type TestEnv } from '../helpers/env';
import { postJson } from '../helpers/http';
import { startPrivateRedis, type PrivateRedis } from '../helpers/private-redis';
import type { Spawned } from '../helpers/processes';
import {
  countOf,
  eventually,
  finishedJob,
  irisRow,
  ProcessGroup,
  resultLines,
  settledQueueCounts,
  sleep,
  uploadIrisNdjson,
} from '../helpers/reliability';

/**
 * Redis (with AOF, fsync always) goes away mid-job and comes back on the same port and
 * directory: the API says it is not ready while Redis is gone and ready again by itself once it
 * is back, and every job it had accepted completes with all its rows. No process is restarted.
 */
const BIG = 100_000;
const DOWN_MS = 3000;

describe('reliability: Redis restarts under a running job', () => {
  let redis: PrivateRedis;
  let env: TestEnv;
  let api: Spawned;
  let url: string;
  let workers: Spawned[] = [];
  const group = new ProcessGroup();

  beforeAll(async () => {
    redis = await startPrivateRedis({ aof: true });
    env = testEnv({
      REDIS_URL: redis.url,
      CHUNK_SIZE: '100',
      WORKER_CONCURRENCY: '1',
      LOCK_DURATION_MS: '4000',
      STALLED_INTERVAL_MS: '2000',
      SHUTDOWN_GRACE_MS: '5000',
    });
    const [started, ...spawnedWorkers] = await Promise.all([group.api(env), group.worker(env), group.worker(env)]);
    ({ proc: api, url } = started);
    workers = spawnedWorkers;
  }, 60_000);

  afterAll(async () => {
    await group.stopAll('SIGTERM');
    await redis?.destroy();
  });

  const readyz = async (): Promise<{ status: number; type: string; body: Record<string, unknown> }> => {
    const response = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(5000) });
    return {
      status: response.status,
      type: response.headers.get('content-type') ?? '',
      body: (await response.json()) as Record<string, unknown>,
    };
  };

  it(
    'when Redis stops mid-job and restarts, then /readyz is 503 while it is down and 200 after, and every accepted job ' +
      'completes with all its rows',
    async () => {
      const pids = [api, ...workers].map((p) => p.pid);
      // Listening comes before the first Redis connection is ready: wait for readiness first.
      await eventually('/readyz answers 200 after start-up', async () => (await readyz()).status === 200, 20_000, 100);

      // A big streamed job (1 000 chunks), one queued behind it, and two small JSON ones.
      const big = await uploadIrisNdjson(url, BIG);
      const behind = await uploadIrisNdjson(url, 5000);
      const small = await postJson(`${url}/v1/batch-predict`, {
        model: 'iris',
        version: '2',
        inputs: Array.from({ length: 10 }, (_, i) => irisRow(i)),
      });
      const medium = await postJson(`${url}/v1/batch-predict`, {
        model: 'iris',
        version: '2',
        inputs: Array.from({ length: 1000 }, (_, i) => irisRow(i)),
      });
      const accepted = [
        { status: big.status, jobId: String((JSON.parse(big.text) as { jobId: string }).jobId), rows: BIG },
        { status: behind.status, jobId: String((JSON.parse(behind.text) as { jobId: string }).jobId), rows: 5000 },
        { status: small.status, jobId: String(small.body.jobId), rows: 10 },
        { status: medium.status, jobId: String(medium.body.jobId), rows: 1000 },
      ];
      expect(accepted.map((a) => a.status)).toEqual([202, 202, 202, 202]);
      const bigJob = accepted[0]?.jobId ?? '';

      // Stop Redis once the big job is under way.
      const client = new Redis(redis.url, { maxRetriesPerRequest: 1 });
      const bigKey = jobKey(env.REDIS_PREFIX, bigJob);
      await eventually('the big job has started', async () => Number(await client.hget(bigKey, 'done')) > 0, 30_000, 20);
      const doneBefore = Number(await client.hget(bigKey, 'done'));
      await client.quit();
      await redis.stop();
      expect(doneBefore).toBeLessThan(BIG); // mid-flight

      // While it is down: not ready, as problem+json; the process answers at once.
      await sleep(500);
      const down = await readyz();
      expect(down.status).toBe(503);
      expect(down.type).toMatch(/^application\/problem\+json/);
      expect(down.body).toMatchObject({ status: 503, code: 'OB_ERR_NOT_READY', checks: { redis: false } });
      await sleep(DOWN_MS - 500);
      expect((await readyz()).status).toBe(503);

      await redis.restart();
      const back = Date.now();
      await eventually('/readyz answers 200 again', async () => (await readyz()).status === 200, 20_000, 100);
      const recoveredMs = Date.now() - back;

      const jobs = await Promise.all(accepted.map((a) => finishedJob(url, a.jobId, 90_000)));
      for (const [i, job] of jobs.entries()) {
        const rows = accepted[i]?.rows ?? 0;
        expect(job).toMatchObject({ status: 'completed', progress: { done: rows, total: rows, failed: 0 } });
      }
      const lines = await resultLines(url, bigJob);
      expect(lines).toHaveLength(BIG);
      expect(lines.findIndex((line, i) => (JSON.parse(line) as { id: string }).id !== irisRow(i).id)).toBe(-1);
      expect(recoveredMs).toBeLessThan(20_000);

      // Nothing left in the queues, and the very same processes did all of it.
      const counts = await settledQueueCounts(redis.url, env.REDIS_PREFIX);
      expect(countOf(counts, 'active', 'wait', 'delayed', 'prioritized', 'waiting-children', 'failed')).toBe(0);
      for (const proc of [api, ...workers]) expect(proc.child.exitCode).toBeNull();
      expect([api, ...workers].map((p) => p.pid)).toEqual(pids);
    },
    150_000,
  );
});
