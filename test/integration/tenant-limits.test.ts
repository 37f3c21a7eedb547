import { randomUUID } from 'node:crypto';
import { RedisKeys, TenantLimits } from '@onnx-batch/shared';
import { startPrivateRedis, type PrivateRedis } from '../helpers/private-redis';

/** Calls of one command so far, from INFO commandstats (this Redis is the test's own). */
async function callsOf(redis: ReturnType<PrivateRedis['client']>, command: string): Promise<number> {
  const info = await redis.info('commandstats');
  return Number(new RegExp(`^cmdstat_${command}:calls=(\\d+)`, 'm').exec(info)?.[1] ?? 0);
}

describe("a tenant's count of unfinished jobs (MAX_ACTIVE_JOBS_PER_TENANT)", () => {
  let server: PrivateRedis;
  beforeAll(async () => {
    server = await startPrivateRedis();
  });
  afterAll(async () => {
    await server.destroy();
  });

  async function seed(keys: RedisKeys, tenant: string, statuses: string[]): Promise<string[]> {
    const redis = server.client();
    const ids = statuses.map(() => randomUUID());
    const write = redis.multi();
    ids.forEach((id, i) => {
      write.hset(keys.job(id), 'id', id, 'status', statuses[i]!);
      write.zadd(keys.tenantActive(tenant), i, id);
    });
    await write.exec();
    return ids;
  }

  it(
    'when 32 submits find the set full of finished jobs at once, then they share one prune: each job status is read once, ' +
      'not 32 times',
    async () => {
      const redis = server.client();
      const keys = new RedisKeys(`t${randomUUID().slice(0, 8)}`);
      const limits = new TenantLimits(redis, keys, 3600);
      await seed(keys, 'acme', [...Array<string>(90).fill('completed'), ...Array<string>(10).fill('running')]);
      const before = await callsOf(redis, 'hget');

      const counts = await Promise.all(Array.from({ length: 32 }, () => limits.activeJobs('acme')));

      expect(counts).toEqual(Array<number>(32).fill(10));
      expect((await callsOf(redis, 'hget')) - before).toBe(100);
      expect(await redis.zcard(keys.tenantActive('acme'))).toBe(10);
    },
  );

  it('when a prune has finished, then the next one reads the set afresh (nothing is cached past it)', async () => {
    const redis = server.client();
    const keys = new RedisKeys(`t${randomUUID().slice(0, 8)}`);
    const limits = new TenantLimits(redis, keys, 3600);
    const [first] = await seed(keys, 'acme', ['running', 'running']);
    expect(await limits.activeJobs('acme')).toBe(2);

    await redis.hset(keys.job(first!), 'status', 'failed');
    await seed(keys, 'acme', ['queued', 'queued', 'queued']);

    expect(await limits.activeJobs('acme')).toBe(4);
    expect(await limits.belowActiveLimit('acme', 5)).toBe(true);
    expect(await limits.belowActiveLimit('acme', 4)).toBe(false);
  });

  it('when two tenants prune at once, then each counts its own jobs', async () => {
    const redis = server.client();
    const keys = new RedisKeys(`t${randomUUID().slice(0, 8)}`);
    const limits = new TenantLimits(redis, keys, 3600);
    await seed(keys, 'acme', ['running', 'completed']);
    await seed(keys, 'globex', ['running', 'running', 'running']);

    expect(await Promise.all([limits.activeJobs('acme'), limits.activeJobs('globex')])).toEqual([1, 3]);
  });
});
