import { readFileSync } from 'node:fs';
import type { ConnectionOptions as TlsOptions } from 'node:tls';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { Config } from './config';
import { parseRedisEndpoints } from './redis-endpoints';

/** A connection to onnx-batch's Redis: one server (maybe found through Sentinel), or a Redis Cluster. */
export type RedisClient = Redis | Cluster;

/** The settings that say where Redis is and how to reach it. */
export type RedisConnectionConfig = Pick<
  Config,
  | 'REDIS_URL'
  | 'REDIS_CLUSTER_NODES'
  | 'REDIS_SENTINELS'
  | 'REDIS_SENTINEL_NAME'
  | 'REDIS_PASSWORD'
  | 'REDIS_SENTINEL_PASSWORD'
  | 'REDIS_TLS_CA_FILE'
>;

/** Reconnection backoff: unbounded attempts, at most 2 s apart, so processes ride out a restart or a fail-over. */
const backoff = (attempt: number): number => Math.min(50 * attempt, 2000);

/**
 * `maxRetriesPerRequest: null` is what BullMQ requires of the connections it blocks on;
 * reconnection is unbounded with a capped backoff so processes ride out a Redis restart by themselves.
 */
const BASE_OPTIONS: RedisOptions = { maxRetriesPerRequest: null, enableReadyCheck: true, retryStrategy: backoff };

/**
 * The connection every onnx-batch process makes, as configured: an ioredis Cluster when
 * REDIS_CLUSTER_NODES is set, a Sentinel-managed primary (followed through fail-overs) when
 * REDIS_SENTINELS is, else the server of REDIS_URL. TLS with `rediss://`, trusting
 * REDIS_TLS_CA_FILE when given. `options` apply to each server connection.
 */
export function connectRedis(config: RedisConnectionConfig, options: RedisOptions = {}): RedisClient {
  const ca = config.REDIS_TLS_CA_FILE ? readFileSync(config.REDIS_TLS_CA_FILE) : undefined;
  const tlsOptions = (tls: boolean): TlsOptions | undefined => (tls ? (ca ? { ca } : {}) : undefined);
  const password = config.REDIS_PASSWORD || undefined;
  if (config.REDIS_CLUSTER_NODES) {
    const { nodes, tls } = parseRedisEndpoints(config.REDIS_CLUSTER_NODES);
    const { enableAutoPipelining, ...perNode } = options;
    return new Cluster(nodes, {
      redisOptions: { ...BASE_OPTIONS, password, tls: tlsOptions(tls), ...perNode },
      clusterRetryStrategy: backoff,
      enableReadyCheck: true,
      enableAutoPipelining: enableAutoPipelining ?? false,
    });
  }
  if (config.REDIS_SENTINELS) {
    const { nodes, tls } = parseRedisEndpoints(config.REDIS_SENTINELS);
    return new Redis({
      ...BASE_OPTIONS,
      sentinels: nodes,
      name: config.REDIS_SENTINEL_NAME,
      role: 'master',
      password,
      sentinelPassword: config.REDIS_SENTINEL_PASSWORD || undefined,
      sentinelRetryStrategy: backoff,
      // Sentinel's +switch-master closes the connection at once, even to a primary that is still up.
      failoverDetector: true,
      tls: tlsOptions(tls),
      sentinelTLS: tlsOptions(tls),
      enableTLSForSentinelMode: tls,
      ...options,
    });
  }
  const tls = config.REDIS_URL.startsWith('rediss://') && ca ? { tls: { ca } } : {};
  return new Redis(config.REDIS_URL, { ...BASE_OPTIONS, ...tls, ...options });
}

/** Whether a connection is to a Redis Cluster. */
export function isCluster(redis: RedisClient): redis is Cluster {
  return redis instanceof Cluster;
}
