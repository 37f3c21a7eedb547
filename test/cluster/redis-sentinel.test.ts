import { Redis } from 'ioredis';
import { jobKey, testEnv, type TestEnv } from '../helpers/env';
import { getJson, postJson } from '../helpers/http';
import { startSentinelSet, type SentinelSetHandle } from '../helpers/redis-topologies';
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
  type Answer,
} from '../helpers/reliability';

/**
 * A primary, a replica and three Sentinels. The primary is killed (SIGKILL) while a job runs; the
 * Sentinels promote the replica and the API and workers, never restarted, follow it by
 * themselves. Every job answered 202, before the kill or after, completes with each of its rows
 * exactly once.
 */
const BIG = 100_000;

interface Accepted {
  jobId: string;
  rows: number;
  /** First row index of the job (rows are irisRow(first …)). */
  first: number;
}

describe('Redis Sentinel: the primary dies mid-job', () => {
  let set: SentinelSetHandle;
  let env: TestEnv;
  let url: string;
  const group = new ProcessGroup();

  beforeAll(async () => {
    set = await startSentinelSet();
    env = testEnv({
      REDIS_SENTINELS: set.sentinelList,
      REDIS_SENTINEL_NAME: set.name,
      // Ignored with Sentinels: nothing listens there.
      REDIS_URL: 'redis://127.0.0.1:1',
      REDIS_WAIT_TIMEOUT_MS: '300',
      CHUNK_SIZE: '1000',
      WORKER_CONCURRENCY: '4',
      LOCK_DURATION_MS: '4000',
      STALLED_INTERVAL_MS: '2000',
      RECOVERY_INTERVAL_MS: '1000',
      RATE_LIMIT_PER_MINUTE: '0',
    });
    const [api] = await Promise.all([group.api(env), group.worker(env), group.worker(env)]);
    url = api.url;
  }, 60_000);

  afterAll(async () => {
    // The assertion shows only counts: a chunk that failed through the fail-over says why here.
    for (const proc of group.all)
      for (const line of proc.lines((l) => /chunk failed/.test(String(l.message)))) console.log(JSON.stringify(line));
    await group.stopAll('SIGTERM');
    await set?.destroy();
  });

  /** Submits `rows` rows from `first` as JSON; the job when answered 202, null otherwise (the API could not commit it). */
  async function submit(first: number, rows: number): Promise<Accepted | null> {
    try {
      const answer = await postJson(`${url}/v1/batch-predict`, {
        model: 'iris',
        version: '2',
        inputs: Array.from({ length: rows }, (_, i) => irisRow(first + i)),
      });
      return answer.status === 202 ? { jobId: String(answer.body.jobId), rows, first } : null;
    } catch {
      return null;
    }
  }

  it(
    'when the primary is killed mid-job and a replica is promoted, then every job accepted before and after completes with ' +
      'every row once',
    async () => {
      // Arrange: small jobs and a big streamed one, all committed with a replica's acknowledgement.
      const accepted: Accepted[] = [];
      for (let k = 0; k < 20; k++) {
        const job = await submit(k * 100, 1 + (k % 5) * 600);
        expect(job).not.toBeNull();
        accepted.push(job as Accepted);
      }
      const big: Answer = await uploadIrisNdjson(url, BIG);
      expect(big.status).toBe(202);
      accepted.unshift({ jobId: String((JSON.parse(big.text) as { jobId: string }).jobId), rows: BIG, first: 0 });
      const primary = new Redis({ port: set.primary.port, host: '127.0.0.1', maxRetriesPerRequest: 1 });
      const bigKey = jobKey(env.REDIS_PREFIX, accepted[0]?.jobId ?? '');
      await eventually('the big job has started', async () => Number(await primary.hget(bigKey, 'done')) > 0, 30_000, 20);
      const doneBefore = Number(await primary.hget(bigKey, 'done'));
      primary.disconnect();

      // Act: kill the primary, keep submitting through the fail-over.
      await set.primary.stop(true);
      expect(doneBefore).toBeLessThan(BIG);
      const during: (Accepted | null)[] = [];
      const killedAt = Date.now();
      while ((await set.primaryPort().catch(() => 0)) !== set.replica.port) {
        if (Date.now() - killedAt > 30_000) throw new Error('the Sentinels did not promote the replica in 30 s');
        during.push(await submit(10_000 + during.length * 10, 10));
        await sleep(100);
      }
      const promotedMs = Date.now() - killedAt;
      for (const job of during) if (job) accepted.push(job);
      // After the fail-over: accepted again, each with a warning (no replica is left to acknowledge it).
      const after: Accepted[] = [];
      for (let k = 0; k < 20; k++) {
        let job: Accepted | null = null;
        for (let attempt = 0; attempt < 50 && !job; attempt++) {
          job = await submit(50_000 + k * 100, 1 + (k % 5) * 600);
          if (!job) await sleep(200);
        }
        expect(job).not.toBeNull();
        after.push(job as Accepted);
      }
      const bigAfter = await uploadIrisNdjson(url, 20_000);
      expect(bigAfter.status).toBe(202);
      after.push({ jobId: String((JSON.parse(bigAfter.text) as { jobId: string }).jobId), rows: 20_000, first: 0 });
      accepted.push(...after);

      // Assert: every accepted job completes, each row exactly once and in order.
      const finished = await Promise.all(accepted.map((job) => finishedJob(url, job.jobId, 120_000)));
      for (const [i, job] of finished.entries()) {
        const rows = accepted[i]?.rows ?? 0;
        expect(job).toMatchObject({ status: 'completed', progress: { done: rows, total: rows, failed: 0 } });
      }
      for (const job of accepted) {
        const ids = (await resultLines(url, job.jobId)).map((line) => (JSON.parse(line) as { id: string }).id);
        expect(ids).toEqual(Array.from({ length: job.rows }, (_, i) => irisRow(job.first + i).id));
      }
      const counts = await settledQueueCounts(`redis://127.0.0.1:${set.replica.port}`, env.REDIS_PREFIX);
      expect(countOf(counts, 'active', 'wait', 'delayed', 'prioritized', 'waiting-children', 'failed')).toBe(0);
      // The very processes that started on the old primary did it all.
      for (const proc of group.all) expect(proc.child.exitCode).toBeNull();
      // Commits before the kill were acknowledged by the replica; after it, with no replica left, each was answered with a warning.
      const unreplicated = group.all.flatMap((p) => p.output).filter((line) => line.includes('not yet on enough Redis replicas'));
      expect(unreplicated.length).toBeGreaterThanOrEqual(after.length);
      expect(unreplicated.filter((line) => line.includes(accepted[1]?.jobId ?? '?'))).toEqual([]);
      expect(promotedMs).toBeLessThan(30_000);
      // Readiness checks the server written to: the promoted primary, found through the Sentinels.
      const ready = await getJson(`${url}/readyz`);
      expect(ready.status).toBe(200);
      expect((ready.body.storage as { nodes: { node: string; policy: string }[] }).nodes).toEqual([
        expect.objectContaining({ node: `127.0.0.1:${set.replica.port}`, policy: 'noeviction' }),
      ]);
    },
    180_000,
  );
});
