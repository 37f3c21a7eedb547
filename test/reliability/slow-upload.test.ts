import http from 'node:http';
import type { Redis } from 'ioredis';
import { dropPrefix, newRedis, REDIS_URL, testEnv, type TestEnv } from '../helpers/env';
import { countOf, drained, finishedJob, irisNdjson, jobKeys, ProcessGroup, queueCounts, sleep } from '../helpers/reliability';

/**
 * A 202 is a promise that every row runs. An upload that pauses longer than STAGING_TTL_SECONDS
 * must keep the chunks it has staged, and a commit must never accept a job whose staged input is
 * gone: it answers an error and queues nothing.
 */
const STAGING_TTL_SECONDS = 10;
const CHUNK_SIZE = 10;
const PAUSE_MS = 12_000;

interface PausedUpload {
  /** Resolves with the API's answer (status and body). */
  answer: Promise<{ status: number; body: Record<string, unknown> }>;
  /** Sends the rest of the rows and ends the request. */
  finish(): Promise<void>;
}

/** An NDJSON upload of 30 iris rows that sends 10 rows, then waits for `finish()`. */
async function pausedUpload(url: string): Promise<PausedUpload> {
  const req = http.request(new URL('/v1/batch-predict?model=iris&version=2', url), {
    method: 'POST',
    headers: { 'content-type': 'application/x-ndjson' },
    agent: false,
  });
  const answer = new Promise<{ status: number; body: Record<string, unknown> }>((resolve, reject) => {
    req.on('response', (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as Record<string, unknown> }));
    });
    req.on('error', reject);
  });
  if (!req.write(irisNdjson(0, 10))) await drained(req);
  return {
    answer,
    async finish() {
      req.end(irisNdjson(10, 30));
      await Promise.resolve();
    },
  };
}

describe('reliability: an upload that pauses longer than the staging TTL', () => {
  const group = new ProcessGroup();
  const client: Redis = newRedis();
  let env: TestEnv;
  let url: string;

  beforeAll(async () => {
    env = testEnv({ STAGING_TTL_SECONDS: String(STAGING_TTL_SECONDS), CHUNK_SIZE: String(CHUNK_SIZE) });
    ({ url } = await group.api(env));
    await group.worker(env);
  }, 60_000);

  afterAll(async () => {
    await group.stopAll();
    await dropPrefix(client, env.REDIS_PREFIX);
    await client.quit();
  });

  it('when a client pauses 12 s after its first chunk, then the staged chunk is kept alive and all 30 rows run', async () => {
    const upload = await pausedUpload(url);
    await sleep(PAUSE_MS);
    await upload.finish();

    const { status, body } = await upload.answer;
    expect(status).toBe(202);
    const job = await finishedJob(url, String(body.jobId));
    expect(job).toMatchObject({ status: 'completed', progress: { done: 30, total: 30, failed: 0 } });
  }, 40_000);

  it(
    'when a staged chunk is gone at commit (evicted, deleted), then the answer is 503 OB_ERR_STAGING_LOST and ' + 'nothing is queued',
    async () => {
      const keysBefore = (await jobKeys(client, env.REDIS_PREFIX)).sort();
      const queuedBefore = countOf(
        await queueCounts(REDIS_URL, env.REDIS_PREFIX),
        'active',
        'wait',
        'waiting',
        'delayed',
        'prioritized',
        'waiting-children',
        'completed',
        'failed',
      );
      const upload = await pausedUpload(url);
      let staged: string[] = [];
      for (let i = 0; i < 50 && staged.length === 0; i++) {
        staged = (await jobKeys(client, env.REDIS_PREFIX)).filter((k) => /:in:0$/.test(k) && !keysBefore.includes(k));
        await sleep(100);
      }
      expect(staged).toHaveLength(1);
      await client.del(staged[0] as string); // what an eviction under memory pressure does
      await upload.finish();

      const { status, body } = await upload.answer;
      expect(status).toBe(503);
      expect(body).toMatchObject({ code: 'OB_ERR_STAGING_LOST' });
      expect(String(body.detail)).toMatch(/chunk 0 .*nothing was queued/);
      const counts = await queueCounts(REDIS_URL, env.REDIS_PREFIX);
      expect(countOf(counts, 'active', 'wait', 'waiting', 'delayed', 'prioritized', 'waiting-children', 'completed', 'failed')).toBe(
        queuedBefore,
      );
      expect((await jobKeys(client, env.REDIS_PREFIX)).sort()).toEqual(keysBefore);
    },
    40_000,
  );
});
