import { QueueEvents } from 'bullmq';
import { Redis } from 'ioredis';
import { QueueName } from '@onnx-batch/shared';
import { jobKey, testEnv, type TestEnv } from '../helpers/env';
import { postJson } from '../helpers/http';
import { startPrivateRedis, type PrivateRedis } from '../helpers/private-redis';
import {
  countOf,
  eventually,
  finishedJob,
  irisRow,
  ProcessGroup,
  queueCounts,
  rawRequest,
  resultLines,
  settledQueueCounts,
  sleep,
  uploadIrisNdjson,
} from '../helpers/reliability';

/**
 * SIGTERM is a clean goodbye: an API answers the requests it holds and refuses new connections;
 * a worker finishes the chunks in its hands and takes no more, so nothing is left active or
 * stalled and another worker picks the job up where it stopped.
 */
const GRACE_MS = 10_000;
const ROWS = 30_000;

describe('reliability: graceful shutdown on SIGTERM', () => {
  let redis: PrivateRedis;
  let env: TestEnv;
  const group = new ProcessGroup();

  beforeAll(async () => {
    redis = await startPrivateRedis();
    env = testEnv({
      REDIS_URL: redis.url,
      CHUNK_SIZE: '100',
      WORKER_CONCURRENCY: '4',
      SHUTDOWN_GRACE_MS: String(GRACE_MS),
      LOCK_DURATION_MS: '5000',
      STALLED_INTERVAL_MS: '1000',
    });
  }, 30_000);

  afterAll(async () => {
    await group.stopAll();
    await redis?.destroy();
  });

  it(
    'when an API process gets SIGTERM during a long poll, then the poll is answered, new connections are refused and it exits 0 ' +
      'within SHUTDOWN_GRACE_MS',
    async () => {
      const { proc, url } = await group.api(env);
      // No worker runs: this job stays queued, so the long poll lasts its full 3 s.
      const submitted = await postJson(`${url}/v1/batch-predict`, { model: 'iris', inputs: [irisRow(0)] });
      expect(submitted.status).toBe(202);
      const jobId = String(submitted.body.jobId);

      const polled = Date.now();
      let answered = false;
      const longPoll = fetch(`${url}/v1/batch-result/${jobId}?wait=3`).then(async (r) => {
        const body = (await r.json()) as Record<string, unknown>;
        answered = true;
        return { status: r.status, body, at: Date.now() - polled };
      });
      await sleep(500); // the poll is in the API's hands
      const signalled = Date.now();
      const exited = proc.stop('SIGTERM');
      await proc.waitForLine((l) => String(l.message).startsWith('shutting down'), 5000);
      // The listening socket closes on a loop turn after server.close(): from then on, connecting fails.
      let refused = await rawRequest(url, 'GET', '/livez', {});
      for (let tries = 0; !refused.text.includes('ECONNREFUSED') && tries < 20; tries++) {
        await sleep(100);
        refused = await rawRequest(url, 'GET', '/livez', {});
      }
      const refusedWhilePollPending = !answered;
      const answer = await longPoll;
      const exitCode = await exited;
      const exitedAfterMs = Date.now() - signalled;

      expect(refused).toMatchObject({ status: 0, text: expect.stringMatching(/ECONNREFUSED/) });
      expect(refusedWhilePollPending).toBe(true);
      expect(answer.status).toBe(200);
      expect(answer.body).toMatchObject({ jobId, status: 'queued' });
      expect(answer.at).toBeGreaterThanOrEqual(2900); // it held the full wait, it was not cut short
      expect(exitCode).toBe(0);
      expect(exitedAfterMs).toBeLessThan(GRACE_MS);
    },
    60_000,
  );

  it(
    'when a worker process gets SIGTERM mid-job, then it exits 0 leaving no chunk active or stalled, and a second worker ' +
      'completes the job with every row once',
    async () => {
      const { url } = await group.api(env);
      const first = await group.worker(env);
      const client = new Redis(redis.url, { maxRetriesPerRequest: 1 });
      const events = new QueueEvents(QueueName.Chunks, { connection: { host: '127.0.0.1', port: redis.port }, prefix: env.REDIS_PREFIX });
      await events.waitUntilReady();
      let stalled = 0;
      events.on('stalled', () => stalled++);

      try {
        const submitted = await uploadIrisNdjson(url, ROWS);
        expect(submitted.status).toBe(202);
        const jobId = String((JSON.parse(submitted.text) as { jobId: string }).jobId);
        const recordKey = jobKey(env.REDIS_PREFIX, jobId);
        await eventually('the worker has started on the job', async () => Number(await client.hget(recordKey, 'done')) > 0, 30_000, 10);

        const signalled = Date.now();
        const exitCode = await first.stop('SIGTERM');
        const exitedAfterMs = Date.now() - signalled;
        const afterExit = await queueCounts(redis.url, env.REDIS_PREFIX);
        const doneAtExit = Number(await client.hget(recordKey, 'done'));
        const statusAtExit = await client.hget(recordKey, 'status');

        expect(exitCode).toBe(0);
        expect(exitedAfterMs).toBeLessThan(GRACE_MS);
        expect(countOf(afterExit, 'active')).toBe(0);
        expect(statusAtExit).toBe('running');
        expect(doneAtExit).toBeLessThan(ROWS); // the job really was cut in the middle
        expect(doneAtExit % 100).toBe(0); // whole chunks only

        // A second worker takes over; had a chunk been left behind locked, its stall checks would say so.
        await group.worker(env);
        const job = await finishedJob(url, jobId, 90_000);
        const lines = await resultLines(url, jobId);
        const done = await settledQueueCounts(redis.url, env.REDIS_PREFIX);

        expect(job).toMatchObject({ status: 'completed', progress: { done: ROWS, total: ROWS, failed: 0 } });
        expect(lines).toHaveLength(ROWS);
        expect(lines.findIndex((line, i) => (JSON.parse(line) as { id: string }).id !== irisRow(i).id)).toBe(-1);
        expect(countOf(done, 'active', 'wait', 'delayed', 'prioritized', 'waiting-children', 'failed')).toBe(0);
        expect(stalled).toBe(0);
      } finally {
        await events.close();
        await client.quit();
      }
    },
    120_000,
  );
});
