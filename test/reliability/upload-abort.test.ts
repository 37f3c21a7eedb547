import http from 'node:http';
import type { Redis } from 'ioredis';
import { QueueName } from '@onnx-batch/shared';
import { keysWithPrefix, testEnv, type TestEnv } from '../helpers/env';
import { startPrivateRedis, type PrivateRedis } from '../helpers/private-redis';
import type { Spawned } from '../helpers/processes';
import { countOf, drained, eventually, irisNdjson, jobKeys, ProcessGroup, queueCounts, queueEvents, sleep } from '../helpers/reliability';

/**
 * A streamed upload that never completes — the client goes away, or the API is told to stop —
 * leaves nothing behind that can run: no job record, no queued chunk, and its staged inputs are
 * deleted or expire within STAGING_TTL_SECONDS.
 */
const ROWS = 200_000;
/** The smallest staging TTL the configuration accepts. */
const STAGING_TTL_SECONDS = 10;
const GRACE_MS = 2000;

interface Upload {
  req: http.ClientRequest;
  /** Settles when the request ends either way: the answer's status, or the error's code. */
  outcome: Promise<string>;
}

/** Starts a chunked NDJSON upload and writes the first half of its rows. */
async function startHalfUpload(baseUrl: string): Promise<Upload> {
  const req = http.request(new URL('/v1/batch-predict?model=iris&version=2', baseUrl), {
    method: 'POST',
    headers: { 'content-type': 'application/x-ndjson' },
    agent: false,
  });
  const outcome = new Promise<string>((resolve) => {
    req.on('response', (res) => {
      res.resume();
      resolve(`HTTP ${res.statusCode ?? 0}`);
    });
    req.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
    req.on('close', () => resolve('closed'));
  });
  req.flushHeaders();
  for (let from = 0; from < ROWS / 2; from += 2000) {
    if (!req.write(irisNdjson(from, from + 2000))) {
      await drained(req);
    }
  }
  return { req, outcome };
}

describe('reliability: streamed uploads that never finish', () => {
  let redis: PrivateRedis;
  let client: Redis;
  let env: TestEnv;
  let worker: Spawned;
  const group = new ProcessGroup();

  beforeAll(async () => {
    redis = await startPrivateRedis();
    client = redis.client();
    env = testEnv({
      REDIS_URL: redis.url,
      CHUNK_SIZE: '1000',
      STAGING_TTL_SECONDS: String(STAGING_TTL_SECONDS),
      SHUTDOWN_GRACE_MS: String(GRACE_MS),
    });
    // A worker at debug level logs every chunk it runs or skips: it must never see one.
    worker = await group.worker({ ...env, LOG_LEVEL: 'debug' });
  }, 60_000);

  afterAll(async () => {
    await group.stopAll();
    await redis?.destroy();
  });

  const inputKeys = async (): Promise<string[]> => (await jobKeys(client, env.REDIS_PREFIX)).filter((k) => /:in:\d+$/.test(k));

  /** Nothing of any job exists or ever reached BullMQ or a worker. */
  const expectNothingLeft = async (): Promise<void> => {
    expect(await jobKeys(client, env.REDIS_PREFIX)).toEqual([]);
    expect(await client.zcard(`${env.REDIS_PREFIX}:tenant:{default}:active`)).toBe(0);
    const counts = await queueCounts(redis.url, env.REDIS_PREFIX);
    expect(countOf(counts, 'active', 'wait', 'delayed', 'prioritized', 'waiting-children', 'completed', 'failed')).toBe(0);
    for (const queue of [QueueName.Chunks, QueueName.Batches]) expect(await queueEvents(client, env.REDIS_PREFIX, queue)).toEqual([]);
    // BullMQ's own keys hold only its bookkeeping (meta, stalled-check…), no job.
    const bullJobs = (await keysWithPrefix(client, env.REDIS_PREFIX)).filter((k) => /:(chunks|batches):[0-9a-f-]{36}/.test(k));
    expect(bullJobs).toEqual([]);
    expect(worker.output.filter((line) => line.includes('"jobId"'))).toEqual([]);
  };

  it(
    'when the client destroys its socket halfway through, then no job exists, nothing is queued and the staged ' + 'inputs are gone',
    async () => {
      const { proc, url } = await group.api(env);
      const upload = await startHalfUpload(url);
      await eventually('chunks of the upload are staged', async () => (await inputKeys()).length > 0, 20_000, 20);
      const staged = await inputKeys();
      const ttls = await Promise.all(staged.map((k) => client.ttl(k)));

      upload.req.destroy();
      const aborted = Date.now();
      await upload.outcome;
      await eventually(
        'the staged inputs are gone',
        async () => (await jobKeys(client, env.REDIS_PREFIX)).length === 0,
        (STAGING_TTL_SECONDS + 3) * 1000,
        100,
      );
      const goneAfterMs = Date.now() - aborted;

      for (const ttl of ttls) {
        expect(ttl).toBeGreaterThan(0);
        expect(ttl).toBeLessThanOrEqual(STAGING_TTL_SECONDS);
      }
      expect(goneAfterMs).toBeLessThan((STAGING_TTL_SECONDS + 3) * 1000);
      await sleep(500);
      await expectNothingLeft();
      expect(proc.output.filter((line) => line.includes('job queued'))).toEqual([]);
      expect((await fetch(`${url}/livez`)).status).toBe(200);
    },
    60_000,
  );

  it(
    'when the API process is sent SIGTERM halfway through an upload, then it exits within its grace period and nothing of the ' +
      'upload can ever run',
    async () => {
      const { proc, url } = await group.api(env);
      const upload = await startHalfUpload(url);
      await eventually('chunks of the upload are staged', async () => (await inputKeys()).length > 0, 20_000, 20);
      const staged = await inputKeys();

      // The client stalls mid-body; the API is told to stop.
      const signalled = Date.now();
      const exitCode = await proc.stop('SIGTERM');
      const exitedAfterMs = Date.now() - signalled;
      const clientSaw = await upload.outcome;
      const ttls = await Promise.all(staged.map((k) => client.ttl(k)));
      await eventually(
        'the staged inputs are gone',
        async () => (await jobKeys(client, env.REDIS_PREFIX)).length === 0,
        (STAGING_TTL_SECONDS + 3) * 1000,
        100,
      );

      expect(exitCode).not.toBeNull();
      expect(exitedAfterMs).toBeLessThan(GRACE_MS + 2000);
      expect(clientSaw).not.toMatch(/^HTTP 2/);
      for (const ttl of ttls) expect(ttl).toBeLessThanOrEqual(STAGING_TTL_SECONDS); // -2: already deleted
      await sleep(500);
      await expectNothingLeft();
      expect(proc.output.filter((line) => line.includes('job queued'))).toEqual([]);
    },
    60_000,
  );
});
