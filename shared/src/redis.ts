import { Redis, type RedisOptions } from 'ioredis';

/**
 * A Redis connection for onnx-batch. `maxRetriesPerRequest: null` is what BullMQ requires of
 * the connections it blocks on; reconnection is unbounded with a capped backoff so processes
 * ride out a Redis restart by themselves.
 */
export function createRedis(url: string, options: RedisOptions = {}): Redis {
  return new Redis(url, {
    maxRetriesPerRequest: null,
    enableReadyCheck: true,
    retryStrategy: (attempt) => Math.min(50 * attempt, 2000),
    ...options,
  });
}
