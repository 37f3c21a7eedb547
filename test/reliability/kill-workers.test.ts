import { QueueEvents } from 'bullmq';
import type { Redis } from 'ioredis';
import { QueueName } from '@onnx-batch/shared';
import { jobKey, testEnv, type TestEnv } from '../helpers/env';
import { startPrivateRedis, type PrivateRedis } from '../helpers/private-redis';
import type { Spawned } from '../helpers/processes';
import {
  failedJobs,
  finishedJob,
  irisRow,
  ProcessGroup,
  resultLines,
  seededRandom,
  settledQueueCounts,
  sleep,
  uploadIrisNdjson,
  warnings,
} from '../helpers/reliability';

/**
 * At-least-once work, exactly-once results: workers SIGKILLed at random while a 200 000-row job
 * runs cost re-runs of the chunks they held, never a row, a duplicate or a different answer.
 *
 * Small chunks (50 rows, 4 000 chunks) and one chunk in hand per worker make the job last long
 * enough (~15–25 s under the kills) for twelve kills to land while it runs.
 */
const ROWS = 200_000;
const WORKERS = 3;
const MIN_KILLS = 10;
/** Kills stop here and the job finishes on a full set of workers: killing until it ends only made it last (two minutes). */
const KILLS = MIN_KILLS + 2;
const SEED = 20240501;

describe('reliability: workers killed with SIGKILL mid-job', () => {
  let redis: PrivateRedis;
  let client: Redis;
  let env: TestEnv;
  let api: Spawned;
  let url: string;
  /** Every process this test started (killed ones included). */
  const group = new ProcessGroup();
  /** Workers that are ready and have not been killed. */
  let alive: Spawned[] = [];
  let clean: string[] = [];

  const startWorker = (): Promise<Spawned> => group.worker(env);

  beforeAll(async () => {
    redis = await startPrivateRedis();
    client = redis.client();
    env = testEnv({
      REDIS_URL: redis.url,
      CHUNK_SIZE: '50',
      LOCK_DURATION_MS: '2000',
      STALLED_INTERVAL_MS: '1000',
      WORKER_CONCURRENCY: '1',
      SHUTDOWN_GRACE_MS: '5000',
    });
    const [started, workers] = await Promise.all([group.api(env), Promise.all(Array.from({ length: WORKERS }, () => startWorker()))]);
    ({ proc: api, url } = started);
    alive = workers;
  }, 60_000);

  afterAll(async () => {
    await api?.stop();
    await group.stopAll();
    await redis?.destroy();
  });

  const jobStatus = (jobId: string): Promise<string | null> => client.hget(jobKey(env.REDIS_PREFIX, jobId), 'status');

  it('when the job runs undisturbed, then every row comes back once, in order (the reference run)', async () => {
    const submitted = await uploadIrisNdjson(url, ROWS);
    expect(submitted.status).toBe(202);
    const jobId = String((JSON.parse(submitted.text) as { jobId: string }).jobId);

    const job = await finishedJob(url, jobId, 90_000);
    clean = await resultLines(url, jobId);

    expect(job).toMatchObject({ status: 'completed', progress: { done: ROWS, total: ROWS, failed: 0 } });
    expect(clean).toHaveLength(ROWS);
    const misplaced = clean.findIndex((line, i) => (JSON.parse(line) as { id: string }).id !== irisRow(i).id);
    expect(misplaced).toBe(-1);
  }, 120_000);

  it(
    `when a random worker is SIGKILLed at least ${MIN_KILLS} times while the same rows run, then every row comes back exactly ` +
      `once, in order, with the same result`,
    async () => {
      expect(clean).toHaveLength(ROWS);
      const random = seededRandom(SEED);
      // Chunks whose worker died holding them: BullMQ announces each re-queued one as `stalled`.
      const events = new QueueEvents(QueueName.Chunks, { connection: { host: '127.0.0.1', port: redis.port }, prefix: env.REDIS_PREFIX });
      await events.waitUntilReady();
      const stalls = new Map<string, number>();
      events.on('stalled', ({ jobId }) => stalls.set(jobId, (stalls.get(jobId) ?? 0) + 1));

      const submitted = await uploadIrisNdjson(url, ROWS);
      expect(submitted.status).toBe(202);
      const jobId = String((JSON.parse(submitted.text) as { jobId: string }).jobId);

      let kills = 0;
      const replacements: Promise<void>[] = [];
      const deadline = Date.now() + 100_000;
      const running = async (): Promise<boolean> => !['completed', 'failed', 'cancelled'].includes((await jobStatus(jobId)) ?? 'gone');
      while (kills < KILLS && (await running()) && Date.now() < deadline) {
        await sleep(300 + Math.floor(random() * 200));
        if (alive.length < 2 || !(await running())) continue; // always leave one worker running
        const victim = alive[Math.floor(random() * alive.length)] as Spawned;
        alive = alive.filter((w) => w !== victim);
        await victim.stop('SIGKILL');
        kills++;
        replacements.push(startWorker().then((worker) => void alive.push(worker)));
      }
      await Promise.all(replacements);

      const job = await finishedJob(url, jobId, 60_000);
      const lines = await resultLines(url, jobId);
      await sleep(200); // the last `stalled` events
      await events.close();

      expect(kills).toBeGreaterThanOrEqual(MIN_KILLS);
      expect(stalls.size).toBeGreaterThan(0); // the kills did land mid-chunk: some chunks ran again
      const progress = job.progress as { failed: number };
      if (progress.failed > 0) {
        // Say why before failing: which chunk jobs failed, how often chunks were re-run, what the workers logged.
        const failed = await failedJobs(redis.url, env.REDIS_PREFIX);
        const rerunMoreThanTwice = [...stalls].filter(([, n]) => n > 2).map(([id, n]) => `${id} stalled ${n}×`);
        const logged = warnings(group.all.map((p) => p.output)).slice(0, 20);
        expect({ kills, failedRows: progress.failed, failed, rerunMoreThanTwice, logged }).toEqual({
          kills,
          failedRows: 0,
          failed: [],
          rerunMoreThanTwice: [],
          logged: [],
        });
      }
      expect(job).toMatchObject({ status: 'completed', progress: { done: ROWS, total: ROWS, failed: 0 } });
      expect(lines).toHaveLength(ROWS);
      const wrongIds: string[] = [];
      const differing: string[] = [];
      lines.forEach((line, i) => {
        const id = (JSON.parse(line) as { id: string }).id;
        if (id !== irisRow(i).id && wrongIds.length < 5) wrongIds.push(`line ${i}: ${id}`);
        if (line !== clean[i] && differing.length < 5) differing.push(`line ${i}: ${line} ≠ ${clean[i] ?? ''}`);
      });
      expect(wrongIds).toEqual([]);
      expect(differing).toEqual([]);
      // A chunk whose worker died after recording its results runs once more (and finds them there),
      // and the batch's parent runs last: the queues empty soon after the job completes.
      const counts = await settledQueueCounts(redis.url, env.REDIS_PREFIX);
      expect(counts).toMatchObject({
        chunks: { active: 0, wait: 0, delayed: 0, prioritized: 0, failed: 0 },
        batches: { active: 0, wait: 0, 'waiting-children': 0, failed: 0 },
      });
    },
    160_000,
  );
});
