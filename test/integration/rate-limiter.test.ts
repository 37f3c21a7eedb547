import { createLogger } from '@onnx-batch/shared';
import { RateLimiter } from '@onnx-batch/api';
import { startPrivateRedis, type PrivateRedis } from '../helpers/private-redis';

/** Calls of one command in Redis so far (INFO commandstats). */
async function calls(redis: PrivateRedis, command: string): Promise<number> {
  const info = await redis.client().info('commandstats');
  return Number(new RegExp(`cmdstat_${command}:calls=(\\d+)`).exec(info)?.[1] ?? 0);
}

describe('the rate limiter: a budget shared by processes, without a round trip per request', () => {
  let redis: PrivateRedis;
  const logger = createLogger('error', 'test');

  beforeAll(async () => {
    redis = await startPrivateRedis();
  });

  afterAll(async () => {
    await redis.destroy();
  });

  it(
    'when two processes spend one key’s 1000 a minute, then together they pass at most 1000 and at least 980, asking Redis ' +
      'about once per 10 requests',
    async () => {
      const now = Date.UTC(2026, 10, 29, 12, 0, 5);
      const [a, b] = [new RateLimiter(redis.client(), 'rl', 1000, logger), new RateLimiter(redis.client(), 'rl', 1000, logger)];
      const before = await calls(redis, 'incrby');
      let passed = 0;
      let refused = 0;
      for (let i = 0; i < 1200; i++) {
        try {
          await (i % 2 === 0 ? a : b).consume('key-1', now + i);
          passed++;
        } catch (error) {
          refused++;
          expect((error as { code?: string }).code).toBe('OB_ERR_RATE_LIMITED');
          // seconds to the next minute
          expect((error as { extensions: { retryAfter: number } }).extensions.retryAfter).toBeGreaterThanOrEqual(54);
        }
      }
      const leases = (await calls(redis, 'incrby')) - before;

      expect(passed).toBeLessThanOrEqual(1000);
      expect(passed).toBeGreaterThanOrEqual(980); // a process may strand up to one lease (10) at the end of a minute
      expect(refused).toBe(1200 - passed);
      expect(leases).toBeLessThanOrEqual(Math.ceil(1000 / 10) + 4);
    },
  );

  it('when the next minute starts, then the budget is whole again; another key never shares it', async () => {
    const limiter = new RateLimiter(redis.client(), 'rl2', 3, logger);
    const minute = Date.UTC(2026, 10, 29, 12, 1, 0);
    for (let i = 0; i < 3; i++) await limiter.consume('k', minute + i);

    await expect(limiter.consume('k', minute + 10)).rejects.toMatchObject({ code: 'OB_ERR_RATE_LIMITED' });
    await expect(limiter.consume('other', minute + 10)).resolves.toBe(2);
    await expect(limiter.consume('k', minute + 60_000)).resolves.toBe(2);
  });
});
