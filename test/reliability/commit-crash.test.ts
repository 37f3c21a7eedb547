import path from 'node:path';
import type { Redis } from 'ioredis';
import { dropPrefix, jobKey, keysWithPrefix, newRedis, REDIS_URL, testEnv, type TestEnv } from '../helpers/env';
import { countOf, eventually, finishedJob, irisRow, ProcessGroup, queueCounts } from '../helpers/reliability';

/**
 * An API that dies between committing a job and queueing it must not leave a `queued` job that
 * nothing will ever run: the job waits in its outbox, and a worker's recovery sweep queues it.
 * The API under test is a test entry point whose submitter kills the process (SIGKILL) right
 * after the commit.
 */
const CRASHING_API = path.join(__dirname, '..', 'helpers', 'api-crash-after-commit.cjs');

async function submitTo(url: string, rows: number): Promise<string> {
  try {
    const response = await fetch(`${url}/v1/batch-predict`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'iris', version: '2', inputs: Array.from({ length: rows }, (_, i) => irisRow(i)) }),
    });
    return `HTTP ${response.status}`;
  } catch (error) {
    return String((error as Error & { cause?: Error }).cause?.message ?? error);
  }
}

describe('reliability: an API killed between commit and enqueue', () => {
  const group = new ProcessGroup();
  const client: Redis = newRedis();
  let env: TestEnv;

  beforeAll(() => {
    env = testEnv({ CHUNK_SIZE: '100', RECOVERY_INTERVAL_MS: '500' });
  });

  afterAll(async () => {
    await group.stopAll();
    await dropPrefix(client, env.REDIS_PREFIX);
    await client.quit();
  });

  /** Ids of the job records under the prefix. */
  const jobIds = async (): Promise<string[]> => {
    const keys = (await keysWithPrefix(client, `${env.REDIS_PREFIX}:job`)).filter((k) => !/:(in|out):\d+$/.test(k));
    return Promise.all(keys.map(async (k) => String(await client.hget(k, 'id'))));
  };

  it.each([
    ['a one-chunk job', 40],
    ['a 5-chunk batch (a flow)', 500],
  ])(
    'when it dies right after committing %s, then no answer came, and a worker queues and runs it: every row comes back',
    async (_what, rows) => {
      const before = await jobIds();
      const { proc, url } = await group.api(env, CRASHING_API);

      const answer = await submitTo(url, rows);
      await eventually('the API process is gone', () => proc.child.exitCode !== null || proc.child.signalCode !== null, 5000);

      expect(answer).not.toMatch(/^HTTP/); // the connection died with the process
      expect(proc.child.signalCode).toBe('SIGKILL');
      const [jobId] = (await jobIds()).filter((id) => !before.includes(id));
      expect(jobId).toBeDefined();
      expect(await client.hget(jobKey(env.REDIS_PREFIX, jobId as string), 'status')).toBe('queued');
      // nothing was queued
      expect(countOf(await queueCounts(REDIS_URL, env.REDIS_PREFIX), 'wait', 'prioritized', 'waiting-children')).toBe(0);

      await group.worker(env);
      const api = await group.api(env); // a healthy API to read the results through
      const job = await finishedJob(api.url, jobId as string, 30_000);

      expect(job).toMatchObject({ status: 'completed', progress: { done: rows, total: rows, failed: 0 } });
      await eventually(
        'the outbox is empty',
        async () =>
          (await keysWithPrefix(client, `${env.REDIS_PREFIX}:outbox`)).length === 0 ||
          (await Promise.all((await keysWithPrefix(client, `${env.REDIS_PREFIX}:outbox`)).map((k) => client.zcard(k)))).every(
            (n) => n === 0,
          ),
        5000,
      );
    },
    60_000,
  );
});
