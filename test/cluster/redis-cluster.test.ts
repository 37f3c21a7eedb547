import { createHash } from 'node:crypto';
import { jobTag } from '@onnx-batch/shared';
import { testEnv, type TestEnv } from '../helpers/env';
import { getJson, postJson } from '../helpers/http';
import { startRedisCluster, type RedisClusterHandle } from '../helpers/redis-topologies';
import {
  countOf,
  finishedJob,
  irisRow,
  ProcessGroup,
  resultLines,
  settledQueueCounts,
  uploadIrisNdjson,
  warnings,
} from '../helpers/reliability';

/**
 * The same work on a 3-master Redis Cluster (3 queue shards) and on one Redis: 500 small jobs,
 * a few multi-chunk ones (BullMQ flows), a 1 000 000-row streamed job, a cancel and a delete.
 * Results must be identical, and the jobs' keys must be spread over every master.
 */
const SMALL_JOBS = 500;
const MEDIUM_JOBS = 6;
const MEDIUM_ROWS = 10_000;
const BIG = 1_000_000;
const IN_FLIGHT = 25;

/** Rows of small job `k`: 1 to 12 rows, different for every job. */
const smallRows = (k: number): ReturnType<typeof irisRow>[] => Array.from({ length: 1 + (k % 12) }, (_, j) => irisRow(k * 13 + j));

async function inBatches<T, R>(items: readonly T[], size: number, each: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let from = 0; from < items.length; from += size)
    out.push(...(await Promise.all(items.slice(from, from + size).map((item, i) => each(item, from + i)))));
  return out;
}

interface Run {
  small: string[][];
  medium: string[][];
  bigLines: number;
  bigSha: string;
  smallIds: string[];
}

/** Submits the whole workload to an API and reads every result back. */
async function runWorkload(url: string): Promise<Run> {
  const bigAnswer = uploadIrisNdjson(url, BIG);
  const smallIds = await inBatches(
    Array.from({ length: SMALL_JOBS }, (_, k) => k),
    IN_FLIGHT,
    async (k) => {
      const answer = await postJson(`${url}/v1/batch-predict`, { model: 'iris', version: '2', inputs: smallRows(k) });
      if (answer.status !== 202) throw new Error(`small job ${k}: HTTP ${answer.status} ${JSON.stringify(answer.body)}`);
      return String(answer.body.jobId);
    },
  );
  const mediumIds = await Promise.all(
    Array.from({ length: MEDIUM_JOBS }, async (_, k) => {
      const answer = await postJson(`${url}/v1/batch-predict`, {
        model: 'iris',
        version: '2',
        inputs: Array.from({ length: MEDIUM_ROWS }, (_, i) => irisRow(k * 1000 + i)),
      });
      if (answer.status !== 202) throw new Error(`medium job ${k}: HTTP ${answer.status}`);
      return String(answer.body.jobId);
    }),
  );
  const big = await bigAnswer;
  if (big.status !== 202) throw new Error(`big job: HTTP ${big.status} ${big.text}`);
  const bigId = String((JSON.parse(big.text) as { jobId: string }).jobId);

  const all = [...smallIds, ...mediumIds, bigId];
  const finished = await inBatches(all, IN_FLIGHT, (id) => finishedJob(url, id, 120_000));
  const notCompleted = finished.filter((job) => job.status !== 'completed');
  if (notCompleted.length > 0) throw new Error(`jobs did not complete: ${JSON.stringify(notCompleted.slice(0, 3))}`);

  const small = await inBatches(smallIds, IN_FLIGHT, (id) => resultLines(url, id));
  const medium = await inBatches(mediumIds, 2, (id) => resultLines(url, id));
  const bigResults = await resultLines(url, bigId);
  return { small, medium, bigLines: bigResults.length, bigSha: createHash('sha256').update(bigResults.join('\n')).digest('hex'), smallIds };
}

describe('Redis Cluster: 3 masters, 3 queue shards', () => {
  let cluster: RedisClusterHandle;
  let clusterEnv: TestEnv;
  let clusterUrl: string;
  let singleUrl: string;
  const group = new ProcessGroup();
  const common = { MAX_ACTIVE_JOBS_PER_TENANT: '2000', RATE_LIMIT_PER_MINUTE: '0', WORKER_CONCURRENCY: '8' };

  beforeAll(async () => {
    cluster = await startRedisCluster(3);
    // REDIS_URL points nowhere: on a cluster it must be ignored.
    clusterEnv = testEnv({ ...common, REDIS_CLUSTER_NODES: cluster.nodes, REDIS_URL: 'redis://127.0.0.1:1', QUEUE_SHARDS: '3' });
    const singleEnv = testEnv(common);
    const [clusterApi, singleApi] = await Promise.all([
      group.api(clusterEnv),
      group.api(singleEnv),
      group.worker(clusterEnv),
      group.worker(singleEnv),
    ]);
    clusterUrl = clusterApi.url;
    singleUrl = singleApi.url;
  }, 60_000);

  afterAll(async () => {
    await group.stopAll('SIGTERM');
    await cluster?.destroy();
  });

  it('when the same jobs run on a cluster and on one Redis, then every result is identical and job keys lie on every master', async () => {
    // Act
    // Side by side: each topology has its own api and worker.
    const [onCluster, onSingle] = await Promise.all([runWorkload(clusterUrl), runWorkload(singleUrl)]);

    // Assert: identical results, every row back once.
    expect(onCluster.bigLines).toBe(BIG);
    expect(onCluster.bigSha).toBe(onSingle.bigSha);
    expect(onCluster.small).toEqual(onSingle.small);
    expect(onCluster.medium).toEqual(onSingle.medium);
    expect(onCluster.small.map((lines) => lines.length)).toEqual(Array.from({ length: SMALL_JOBS }, (_, k) => smallRows(k).length));
    expect(onCluster.medium.every((lines) => lines.length === MEDIUM_ROWS)).toBe(true);

    // The jobs spread over the cluster: every master holds job records (the tag is the id's first two hex digits).
    const perMaster = await cluster.keysPerMaster(`${clusterEnv.REDIS_PREFIX}:job`);
    for (const keys of perMaster) expect(keys.filter((key) => !key.includes(':in:') && !key.includes(':out:')).length).toBeGreaterThan(10);
    const tags = new Set(onCluster.smallIds.map(jobTag));
    expect(tags.size).toBeGreaterThan(150);
    // The tenant's job list (one slot of its own) names every job, finished, newest first.
    const listed: { jobId: string; status: string; createdAt: string }[] = [];
    for (let next: string | null = '/v1/jobs?limit=1000'; next !== null;) {
      const page = (await (await fetch(`${clusterUrl}${next}`)).json()) as { data: typeof listed; next: string | null };
      listed.push(...page.data);
      next = page.next;
    }
    expect(listed.map((job) => job.jobId)).toEqual(expect.arrayContaining(onCluster.smallIds));
    expect(new Set(listed.map((job) => job.jobId)).size).toBe(listed.length);
    expect(listed.every((job) => job.status === 'completed')).toBe(true);
    const created = listed.map((job) => Date.parse(job.createdAt));
    expect(created).toEqual([...created].sort((a, b) => b - a));
    // Every queue shard (its own hash tag) carried chunks; nothing is left in any of them.
    for (const shard of [0, 1, 2]) {
      const prefix = `{${clusterEnv.REDIS_PREFIX}-s${shard}}`;
      expect((await cluster.keysPerMaster(`${prefix}:chunks`)).flat()).toContain(`${prefix}:chunks:events`);
      expect(
        countOf(
          await settledQueueCounts({ clusterNodes: cluster.nodes }, prefix),
          'active',
          'wait',
          'delayed',
          'prioritized',
          'waiting-children',
          'failed',
        ),
      ).toBe(0);
    }
    // (Node's MaxListenersExceededWarning comes from streaming a 1 000 000-row result, on one Redis too.)
    expect(warnings(group.all.map((p) => p.output)).filter((line) => !line.includes('MaxListenersExceededWarning'))).toEqual([]);
  }, 240_000);

  it(
    'when a job is cancelled and another deleted on the cluster, then the cancelled one stops and no key of the deleted one is ' +
      'left on any master',
    async () => {
      // Arrange: a big job, so there is time to cancel it, and a small one that finishes.
      const big = await uploadIrisNdjson(clusterUrl, 200_000);
      expect(big.status).toBe(202);
      const bigId = String((JSON.parse(big.text) as { jobId: string }).jobId);
      // Under an Idempotency-Key: its claim shares the job's slot (commit and remove touch both).
      const body = { model: 'iris', version: '2', inputs: smallRows(7) };
      const small = await postJson(`${clusterUrl}/v1/batch-predict`, body, { 'idempotency-key': 'cluster-small-7' });
      const again = await postJson(`${clusterUrl}/v1/batch-predict`, body, { 'idempotency-key': 'cluster-small-7' });
      const smallId = String(small.body.jobId);

      // Act
      const cancelled = await postJson(`${clusterUrl}/v1/batch-result/${bigId}/cancel`, {});
      await finishedJob(clusterUrl, smallId);
      const deleted = await fetch(`${clusterUrl}/v1/batch-result/${smallId}`, { method: 'DELETE' });

      // Assert
      expect(cancelled.status).toBe(200);
      expect(cancelled.body.status).toBe('cancelled');
      const after = await finishedJob(clusterUrl, bigId);
      expect(after.status).toBe('cancelled');
      expect((after.progress as { done: number }).done).toBeLessThan(200_000);
      expect(small.status).toBe(202);
      expect(again.body.jobId).toBe(smallId);
      expect(deleted.status).toBe(204);
      expect((await getJson(`${clusterUrl}/v1/batch-result/${smallId}`)).status).toBe(404);
      const everyKey = (await cluster.keysPerMaster(clusterEnv.REDIS_PREFIX)).flat();
      expect(everyKey.filter((key) => key.includes(smallId.slice(2)) || key.includes(':idem:'))).toEqual([]);
      // A cancelled job's staged inputs are dropped at once.
      expect(everyKey.filter((key) => key.includes(bigId.slice(2)) && key.includes(':in:'))).toEqual([]);
    },
    60_000,
  );

  it('when one master of the cluster may evict keys, then /readyz names it and submits are refused until it is fixed', async () => {
    const [, master] = cluster.clients();
    const port = cluster.masters[1]?.port;
    if (!master || !port) throw new Error('the cluster has no second master');
    await master.config('SET', 'maxmemory-policy', 'allkeys-lru');
    try {
      const ready = await getJson(`${clusterUrl}/readyz`);
      expect(ready.status).toBe(503);
      expect(String(ready.body.detail)).toContain(`127.0.0.1:${port} (maxmemory-policy allkeys-lru)`);
      const nodes = (ready.body.storage as { nodes: { node: string; policy: string }[] }).nodes;
      expect(nodes.map((n) => n.node).sort()).toEqual(cluster.nodes.split(',').sort());
      const refused = await postJson(`${clusterUrl}/v1/batch-predict`, { model: 'iris', inputs: smallRows(1) });
      expect(refused.status).toBe(503);
      expect(refused.body.code).toBe('OB_ERR_REDIS_EVICTING');
    } finally {
      await master.config('SET', 'maxmemory-policy', 'noeviction');
    }
    expect((await getJson(`${clusterUrl}/readyz`)).status).toBe(200);
  });
});
