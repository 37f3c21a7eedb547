import type { Redis } from 'ioredis';
import { dropPrefix, jobKey, newRedis, testEnv, type TestEnv } from '../helpers/env';
import { eventually, finishedJob, irisRow, ProcessGroup, resultLines, sleep } from '../helpers/reliability';

/**
 * A job's TTL runs from when it finishes, as the README says: a job queued (or running) longer
 * than RESULT_TTL_SECONDS keeps every key until it has run, then its record and results live
 * RESULT_TTL_SECONDS more.
 */
const TTL_SECONDS = 2;
const ROWS = 250;

describe('reliability: TTLs run from the finish', () => {
  const group = new ProcessGroup();
  const client: Redis = newRedis();
  let env: TestEnv;
  let url: string;

  beforeAll(async () => {
    env = testEnv({ RESULT_TTL_SECONDS: String(TTL_SECONDS), CHUNK_SIZE: '100' });
    ({ url } = await group.api(env));
  }, 60_000);

  afterAll(async () => {
    await group.stopAll();
    await dropPrefix(client, env.REDIS_PREFIX);
    await client.quit();
  });

  it(
    'when a job waits in the queue twice its TTL (no worker yet), then nothing expires; it runs in full, then expires TTL ' +
      'seconds after it finished',
    async () => {
      const response = await fetch(`${url}/v1/batch-predict`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'iris', inputs: Array.from({ length: ROWS }, (_, i) => irisRow(i)) }),
      });
      const { jobId } = (await response.json()) as { jobId: string };
      const record = jobKey(env.REDIS_PREFIX, jobId);

      await sleep(TTL_SECONDS * 2 * 1000);
      const whileQueued = {
        record: await client.ttl(record),
        inputs: await Promise.all([0, 1, 2].map((c) => client.ttl(`${record}:in:${c}`))),
      };
      await group.worker(env);
      const job = await finishedJob(url, jobId, 30_000);
      const lines = await resultLines(url, jobId);
      const afterFinish = {
        record: await client.ttl(record),
        outputs: await Promise.all([0, 1, 2].map((c) => client.ttl(`${record}:out:${c}`))),
      };

      expect(response.status).toBe(202);
      expect(whileQueued).toEqual({ record: -1, inputs: [-1, -1, -1] }); // -1: the key exists and has no TTL
      expect(job).toMatchObject({ status: 'completed', progress: { done: ROWS, total: ROWS, failed: 0 } });
      expect(lines).toHaveLength(ROWS);
      expect(afterFinish.record).toBeGreaterThan(0);
      expect(afterFinish.record).toBeLessThanOrEqual(TTL_SECONDS);
      for (const ttl of afterFinish.outputs) expect(ttl).toBeGreaterThan(0);
      await eventually(
        'the finished job expired',
        async () => (await client.exists(record, `${record}:out:0`, `${record}:out:1`, `${record}:out:2`)) === 0,
        (TTL_SECONDS + 3) * 1000,
      );
    },
    60_000,
  );
});
