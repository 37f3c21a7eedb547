import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { Redis } from 'ioredis';
import { loadConfig, RedisKeys, type Config } from '@onnx-batch/shared';

export const ROOT = path.resolve(__dirname, '..', '..');
export const MODELS_DIR = path.join(ROOT, 'models');
export const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** Environment of one isolated test run: its own key prefix on the shared Redis. */
export type TestEnv = Record<string, string> & { REDIS_PREFIX: string; REDIS_URL: string };

export function testEnv(overrides: Record<string, string> = {}): TestEnv {
  return {
    REDIS_URL,
    REDIS_PREFIX: `test-${randomUUID().slice(0, 12)}`,
    MODELS_DIR,
    LOG_LEVEL: 'error',
    PORT: '0',
    HOST: '127.0.0.1',
    MODEL_RELOAD_INTERVAL_MS: '0',
    JOB_BACKOFF_MS: '50',
    METRICS_PORT: '0',
    // One plain API process whatever the machine's CPU count (API_PROCESSES' default); cluster tests set it.
    API_PROCESSES: '1',
    ...overrides,
  };
}

export function testConfig(overrides: Record<string, string> = {}): Config {
  return loadConfig(testEnv(overrides));
}

/** Keys under a prefix (SCAN, never KEYS). */
export async function keysWithPrefix(redis: Redis, prefix: string): Promise<string[]> {
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    found.push(...keys);
  } while (cursor !== '0');
  return found;
}

/** Deletes every key of a test prefix. */
export async function dropPrefix(redis: Redis, prefix: string): Promise<void> {
  const keys = await keysWithPrefix(redis, prefix);
  for (let i = 0; i < keys.length; i += 500) await redis.del(...keys.slice(i, i + 500));
}

/** Deletes every key of a test prefix through a connection of its own (an afterAll that has none open). */
export async function dropPrefixAndQuit(prefix: string): Promise<void> {
  const redis = newRedis();
  try {
    await dropPrefix(redis, prefix);
  } finally {
    await redis.quit();
  }
}

export function newRedis(): Redis {
  return new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
}

/** The Redis key of a job's record under a prefix (its chunk keys append `:in:<n>` / `:out:<n>`). */
export function jobKey(prefix: string, jobId: string): string {
  return new RedisKeys(prefix).job(jobId);
}
