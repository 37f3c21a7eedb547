import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { ChunkEnqueuer, createFlowProducer, MAX_GROUP, QueueName, type ChunkQueue } from '@onnx-batch/shared';
import { dropPrefix, newRedis, testConfig } from '../helpers/env';
import { startStack, type Stack } from '../helpers/stack';

const ROW = [5.1, 3.5, 1.4, 0.2];
const job = (i: number, priority = 100) => ({ id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`, chunks: 1, priority });

describe('one-chunk jobs queued together', () => {
  const redis: Redis = newRedis();

  afterAll(async () => {
    await redis.quit();
  });

  it(
    'when 100 one-chunk jobs are queued in one moment, then the first goes alone and the rest go as groups of at most ' +
      'MAX_GROUP, by priority',
    async () => {
      const config = testConfig();
      const queue = new Queue(QueueName.Chunks, { connection: redis, prefix: config.REDIS_PREFIX }) as ChunkQueue;
      const flows = createFlowProducer(redis, config);
      const enqueuer = new ChunkEnqueuer(queue, flows, config);
      try {
        await Promise.all([
          ...Array.from({ length: 95 }, (_, i) => enqueuer.enqueue(job(i))),
          ...Array.from({ length: 5 }, (_, i) => enqueuer.enqueue(job(100 + i, 10))),
        ]);

        const jobs = await queue.getJobs(['prioritized', 'wait']);
        const groups = jobs.filter((j) => j.name === 'run-chunk-group');
        const members = groups.flatMap((g) => (g.data as { chunks: { jobId: string }[] }).chunks.map((c) => c.jobId));
        expect(jobs.filter((j) => j.name === 'run-chunk').map((j) => j.id)).toEqual([`${job(0).id}.0`]);
        expect(groups.map((g) => (g.data as { chunks: unknown[] }).chunks.length).sort((a, b) => a - b)).toEqual([5, 30, MAX_GROUP]);
        expect(new Set(members).size).toBe(99);
        // the urgent ones, together, first
        expect(groups.find((g) => (g.data as { chunks: unknown[] }).chunks.length === 5)?.opts.priority).toBe(10);
      } finally {
        await flows.close();
        await queue.close();
        await dropPrefix(redis, config.REDIS_PREFIX);
      }
    },
  );

  describe('through the service', () => {
    let stack: Stack;

    beforeAll(async () => {
      stack = await startStack({ MAX_ACTIVE_JOBS_PER_TENANT: '1000' });
    });

    afterAll(async () => {
      await stack.close();
    });

    it(
      'when 200 one-row jobs are submitted 32 at a time, then every one completes with its own result, and fewer BullMQ jobs ' +
        'than jobs were added',
      async () => {
        const ids: string[] = [];
        for (let i = 0; i < 200; i += 32) {
          const answers = await Promise.all(
            Array.from({ length: Math.min(32, 200 - i) }, (_, k) =>
              fetch(`${stack.url}/v1/batch-predict`, {
                method: 'POST',
                headers: { 'content-type': 'application/json' },
                body: JSON.stringify({
                  model: 'iris',
                  inputs: [{ id: `r${i + k}`, sepal_length: ROW[0], sepal_width: ROW[1], petal_length: ROW[2], petal_width: ROW[3] }],
                }),
              }).then(async (r) => ((await r.json()) as { jobId: string }).jobId),
            ),
          );
          ids.push(...answers);
        }
        const results = await Promise.all(
          ids.map(async (id) => {
            for (;;) {
              const body = (await (await fetch(`${stack.url}/v1/batch-result/${id}?wait=5`)).json()) as {
                status: string;
                results: { id: string; label: string }[];
              };
              if (body.status === 'completed') return body.results;
            }
          }),
        );
        const added = ((await redis.xrange(`${stack.config.REDIS_PREFIX}:chunks:events`, '-', '+')) as [string, string[]][]).filter(
          ([, f]) => f[1] === 'added',
        );

        expect(results.map((r) => r[0]?.id)).toEqual(ids.map((_, i) => `r${i}`));
        expect(results.every((r) => r[0]?.label === 'setosa')).toBe(true);
        expect(added.length).toBeLessThan(200);
        expect(added.some(([, f]) => String(f[3]).startsWith('group.'))).toBe(true);
      },
      60_000,
    );
  });
});
