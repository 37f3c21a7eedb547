import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import {
  ChunkEncoder,
  ChunkEnqueuer,
  createFlowProducer,
  JobStore,
  newJobId,
  QueueName,
  type ChunkQueue,
  type JobRecord,
} from '@onnx-batch/shared';
import { dropPrefix, newRedis, testConfig, testEnv, type TestEnv } from '../helpers/env';
import { readManifest } from '../helpers/model-files';
import type { Spawned } from '../helpers/processes';
import { eventually, ProcessGroup, sleep } from '../helpers/reliability';

/**
 * One-chunk jobs queued together share one BullMQ job (a group). When the worker running a group
 * is killed and the group stalls out, every job of the group still ends (each marked failed).
 */
const JOBS = 4;
const ROWS = 40_000;

describe('reliability: a group of one-chunk jobs whose worker is killed', () => {
  const group = new ProcessGroup();
  const redis: Redis = newRedis();
  let env: TestEnv;

  beforeAll(() => {
    env = testEnv({
      CHUNK_SIZE: '1000000',
      MAX_STALLED_COUNT: '0',
      LOCK_DURATION_MS: '1000',
      STALLED_INTERVAL_MS: '1000',
      RECOVERY_INTERVAL_MS: '1000',
    });
  });

  afterAll(async () => {
    await group.stopAll();
    await dropPrefix(redis, env.REDIS_PREFIX);
    await redis.quit();
  });

  it('when it is killed mid-group, then every job of the group ends failed within seconds', async () => {
    const config = testConfig(env);
    const store = new JobStore(redis, config.REDIS_PREFIX, config.RESULT_TTL_SECONDS);
    const manifest = readManifest('spam', '1');
    const ids: string[] = [];
    for (let j = 0; j < JOBS; j++) {
      const encoder = new ChunkEncoder(manifest, ROWS);
      for (let i = 0; i < ROWS; i++)
        encoder.add({ text: `message ${j}.${i}: free offer meeting tomorrow click here invoice attached winner project` });
      const id = newJobId();
      const now = new Date().toISOString();
      const record: JobRecord = {
        id,
        tenant: 'default',
        model: 'spam',
        version: '1',
        route: 'pinned',
        rolloutRevision: 0,
        status: 'queued',
        total: ROWS,
        done: 0,
        failed: 0,
        chunks: 1,
        chunksDone: 0,
        chunkSize: ROWS,
        priority: 100,
        callbackUrl: null,
        createdAt: now,
        startedAt: null,
        finishedAt: null,
        error: null,
      };
      expect((await store.commit(record, { lastInput: encoder.finish() })).state).toBe('committed');
      ids.push(id);
    }
    const first: Spawned = await group.worker(env);
    const queue = new Queue(QueueName.Chunks, { connection: redis, prefix: config.REDIS_PREFIX }) as ChunkQueue;
    const flows = createFlowProducer(redis, config);
    // Queued in one moment: the first alone, the other three as one group.
    const enqueuer = new ChunkEnqueuer(queue, flows, config);
    await Promise.all(ids.map((id) => enqueuer.enqueue({ id, chunks: 1, priority: 100 })));
    expect((await queue.getJobs(['prioritized', 'wait', 'active'])).map((j) => j.name).sort()).toEqual(['run-chunk', 'run-chunk-group']);
    await flows.close();
    await queue.close();
    await eventually(
      'every job is running',
      async () => (await Promise.all(ids.map((id) => store.get(id)))).every((r) => r?.status === 'running'),
      30_000,
      50,
    );

    await group.worker(env);
    await sleep(200);
    await first.stop('SIGKILL');

    await eventually(
      'every job has ended',
      async () => (await Promise.all(ids.map((id) => store.get(id)))).every((r) => r?.status === 'failed'),
      15_000,
      100,
    );
    for (const id of ids)
      expect(await store.get(id)).toMatchObject({ status: 'failed', done: ROWS, failed: ROWS, error: { code: 'OB_ERR_INFERENCE_FAILED' } });
  }, 90_000);
});
