import type { Redis } from 'ioredis';
import { dropPrefixAndQuit, keysWithPrefix, newRedis, testEnv, type TestEnv } from '../helpers/env';
import { finishedJob, irisRow, ProcessGroup, sleep } from '../helpers/reliability';

/**
 * Claiming an Idempotency-Key and committing its job are one atomic step: identical keyed submits
 * racing through two API processes give exactly one job, and a key whose job is gone is free again.
 */
const ROWS = 2000;

interface Answer {
  status: number;
  body: Record<string, unknown>;
}

async function submit(url: string, body: unknown, key?: string): Promise<Answer> {
  const response = await fetch(`${url}/v1/batch-predict`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(key ? { 'idempotency-key': key } : {}) },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

const batch = (offset: number) => ({ model: 'iris', version: '2', inputs: Array.from({ length: ROWS }, (_, i) => irisRow(offset + i)) });

/**
 * Two API processes and a worker on a private prefix, started for the tests of one describe.
 * Results are kept `resultTtlSeconds` after a job finishes, and its idempotency claim with them.
 */
function twoApisAndAWorker(resultTtlSeconds: number): { prefix: () => string; urls: string[] } {
  const group = new ProcessGroup();
  const urls: string[] = [];
  let env: TestEnv | undefined;
  beforeAll(async () => {
    env = testEnv({ CHUNK_SIZE: '100', RESULT_TTL_SECONDS: String(resultTtlSeconds), MAX_ACTIVE_JOBS_PER_TENANT: '1000' });
    for (let i = 0; i < 2; i++) urls.push((await group.api(env)).url);
    await group.worker(env);
  }, 60_000);
  afterAll(async () => {
    await group.stopAll();
    if (env) await dropPrefixAndQuit(env.REDIS_PREFIX);
  });
  return { prefix: () => (env as TestEnv).REDIS_PREFIX, urls };
}

describe('reliability: idempotent submits under concurrency', () => {
  const client: Redis = newRedis();

  afterAll(async () => {
    await client.quit();
  });

  const claims = (prefix: string): Promise<string[]> => keysWithPrefix(client, `${prefix}:idem`);

  // Results kept long enough that no job or claim expires while a test counts them (with a few
  // seconds, the first rounds' jobs expired before a slow run's last round and were missed).
  describe('with results kept ten minutes', () => {
    const service = twoApisAndAWorker(600);
    const urls = service.urls;

    /** Job records under the prefix whose rows start at irisRow(0): the keyed submits (the load starts elsewhere). */
    const keyedJobs = async (): Promise<string[]> => {
      const records = (await keysWithPrefix(client, `${service.prefix()}:job`)).filter((k) => !/:(in|out):\d+$/.test(k));
      const keyed: string[] = [];
      for (const key of records) {
        const [id, total] = await client.hmget(key, 'id', 'total');
        if (
          id &&
          [1, 50, ROWS].includes(Number(total)) &&
          (await client.exists(`${key}:out:0`)) &&
          (await resultsStartAtRowZero(String(id)))
        )
          keyed.push(id);
      }
      return keyed;
    };
    const resultsStartAtRowZero = async (jobId: string): Promise<boolean> => {
      const response = await fetch(`${urls[0] as string}/v1/batch-result/${jobId}/results?offset=0&limit=1`);
      const page = (await response.json()) as { results: { id: string }[] };
      return page.results[0]?.id === 'r0';
    };

    it(
      'when 16 identical keyed submits race through two API processes under load, then one answers 202, the rest 200 with the ' +
        'same job, and one job exists',
      async () => {
        const load = Array.from({ length: 8 }, (_, i) => submit(urls[i % 2] as string, batch(10_000 + i)));
        // Many rounds, small and large bodies: the race is between claiming and committing, at any size
        // (before claim and commit were one script, about one round in twenty made two or three jobs).
        const sizes = [...Array.from<number>({ length: 20 }).fill(1), 50, 50, 50, ROWS];
        for (const [round, rows] of sizes.entries()) {
          const key = `race-${round}-${service.prefix()}`;
          const body = { ...batch(0), inputs: batch(0).inputs.slice(0, rows) };

          const answers = await Promise.all(Array.from({ length: 16 }, (_, i) => submit(urls[i % 2] as string, body, key)));

          const created = answers.filter((a) => a.status === 202);
          const repeated = answers.filter((a) => a.status === 200);
          expect({ round, created: created.length, repeated: repeated.length }).toEqual({ round, created: 1, repeated: 15 });
          const jobId = String(created[0]?.body.jobId);
          for (const answer of repeated) expect(answer.body.jobId).toBe(jobId);
          const job = await finishedJob(urls[0] as string, jobId);
          expect(job).toMatchObject({ status: 'completed', progress: { done: rows, total: rows, failed: 0 } });
          const conflicting = await submit(urls[1] as string, batch(1), key);
          expect(conflicting.status).toBe(409);
          expect(conflicting.body).toMatchObject({ code: 'OB_ERR_IDEMPOTENCY_CONFLICT', jobId });
        }
        await Promise.all(load);
        expect(await keyedJobs()).toHaveLength(sizes.length); // one job per key, however many submits raced
      },
      90_000,
    );

    it('when the job a key named is deleted, then its claim goes with it and the key makes a new job', async () => {
      const key = `deleted-${service.prefix()}`;
      const first = await submit(urls[0] as string, batch(0), key);
      await finishedJob(urls[0] as string, String(first.body.jobId));
      const claimsBefore = await claims(service.prefix());

      const deleted = await fetch(`${urls[1] as string}/v1/batch-result/${String(first.body.jobId)}`, { method: 'DELETE' });
      const claimsAfterDelete = await claims(service.prefix());
      const again = await submit(urls[1] as string, batch(0), key);

      expect(deleted.status).toBe(204);
      expect(claimsAfterDelete).toHaveLength(claimsBefore.length - 1);
      expect(again.status).toBe(202);
      expect(again.body.jobId).not.toBe(first.body.jobId);
      const job = await finishedJob(urls[1] as string, String(again.body.jobId));
      expect(job).toMatchObject({ status: 'completed', progress: { done: ROWS, failed: 0 } });
    }, 60_000);
  });

  describe('with results kept three seconds', () => {
    const service = twoApisAndAWorker(3);
    const urls = service.urls;

    it(
      'when the job a key named has expired (RESULT_TTL_SECONDS after it finished), then its claim expired with it and the key ' +
        'makes a new job',
      async () => {
        const key = `expired-${service.prefix()}`;
        const first = await submit(urls[0] as string, batch(0), key);
        await finishedJob(urls[0] as string, String(first.body.jobId));
        const idem = (await claims(service.prefix())).length;
        await sleep(4000); // RESULT_TTL_SECONDS is 3

        const claimsLeft = (await claims(service.prefix())).length;
        const again = await submit(urls[0] as string, batch(0), key);

        expect(claimsLeft).toBeLessThan(idem);
        expect(again.status).toBe(202);
        expect(again.body.jobId).not.toBe(first.body.jobId);
      },
      60_000,
    );
  });
});
