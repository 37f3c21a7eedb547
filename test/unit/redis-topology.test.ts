import type { Redis } from 'ioredis';
import { ConfigError, loadConfig, parseRedisEndpoints, queuePrefix, ReplicaWait, shardOf, shardPrefix } from '@onnx-batch/shared';

function configError(env: Record<string, string>): string {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error.message;
    throw error;
  }
  throw new Error(`loadConfig accepted ${JSON.stringify(env)}`);
}

describe('Redis topology settings', () => {
  it('when REDIS_CLUSTER_NODES lists host:port entries, then they are parsed, TLS only with rediss://', () => {
    expect(parseRedisEndpoints('10.0.0.1:7000, redis-1.local:7001')).toEqual({
      nodes: [
        { host: '10.0.0.1', port: 7000 },
        { host: 'redis-1.local', port: 7001 },
      ],
      tls: false,
    });
    expect(parseRedisEndpoints('rediss://a:1,rediss://[::1]:2')).toEqual({
      nodes: [
        { host: 'a', port: 1 },
        { host: '::1', port: 2 },
      ],
      tls: true,
    });
  });

  it('when an entry has no port, or TLS and plain entries are mixed, then loadConfig names the variable', () => {
    expect(configError({ REDIS_CLUSTER_NODES: 'a:1,b' })).toMatch(/REDIS_CLUSTER_NODES=.*'b' is not host:port/);
    expect(configError({ REDIS_SENTINELS: 'rediss://a:1,b:2' })).toMatch(/REDIS_SENTINELS=.*mixes rediss:\/\//);
  });

  it('when settings contradict each other, then loadConfig refuses them and says why', () => {
    expect(configError({ REDIS_CLUSTER_NODES: 'a:1', REDIS_SENTINELS: 'b:2' })).toMatch(/both set/);
    expect(configError({ REDIS_CLUSTER_NODES: 'a:1', REDIS_PREFIX: '{onnx-batch}' })).toMatch(/REDIS_PREFIX="\{onnx-batch\}" has braces/);
    expect(configError({ REDIS_CLUSTER_NODES: 'a:1', REDIS_WAIT_REPLICAS: '1' })).toMatch(
      /REDIS_WAIT_REPLICAS is not supported with REDIS_CLUSTER_NODES/,
    );
    expect(configError({ TLS_CERT_FILE: '/tmp/cert.pem' })).toMatch(/TLS_CERT_FILE and TLS_KEY_FILE go together/);
  });

  it('when Sentinels are set and REDIS_WAIT_REPLICAS is not, then a commit waits for one replica; otherwise for none or as told', () => {
    expect(loadConfig({ REDIS_SENTINELS: 'a:26379' }).REDIS_WAIT_REPLICAS).toBe(1);
    expect(loadConfig({ REDIS_SENTINELS: 'a:26379', REDIS_WAIT_REPLICAS: '0' }).REDIS_WAIT_REPLICAS).toBe(0);
    expect(loadConfig({}).REDIS_WAIT_REPLICAS).toBe(0);
    expect(loadConfig({ REDIS_WAIT_REPLICAS: '2' }).REDIS_WAIT_REPLICAS).toBe(2);
  });

  it(
    'when the queues are on one Redis, then their prefix is REDIS_PREFIX as before; on a cluster it is its hash tag, ' + 'one per shard',
    () => {
      const single = loadConfig({});
      const cluster = loadConfig({ REDIS_CLUSTER_NODES: 'a:1' });
      const sharded = loadConfig({ REDIS_CLUSTER_NODES: 'a:1', QUEUE_SHARDS: '4' });

      expect([queuePrefix(single), shardPrefix(single, 0)]).toEqual(['onnx-batch', 'onnx-batch']);
      expect([queuePrefix(cluster), shardPrefix(cluster, 0)]).toEqual(['{onnx-batch}', '{onnx-batch}']);
      expect([0, 1, 2, 3].map((i) => shardPrefix(sharded, i))).toEqual([
        '{onnx-batch-s0}',
        '{onnx-batch-s1}',
        '{onnx-batch-s2}',
        '{onnx-batch-s3}',
      ]);
      expect(shardPrefix(loadConfig({ QUEUE_SHARDS: '2' }), 1)).toBe('onnx-batch-s1');
    },
  );

  it('when jobs are assigned to shards, then a job always gets the same one, chosen by its tag', () => {
    expect(shardOf('0a3b5c7d-0000-4000-8000-000000000000', 4)).toBe(0x0a % 4);
    expect(shardOf('ff3b5c7d-0000-4000-8000-000000000000', 3)).toBe(0xff % 3);
    expect(shardOf('ff3b5c7d-0000-4000-8000-000000000000', 1)).toBe(0);
  });
});

describe('ReplicaWait', () => {
  /** A connection whose WAITs are answered by hand, in order. */
  function fakeConnection(): { redis: Redis; sent: number; answer(replicas: number): void } {
    const pending: ((n: number) => void)[] = [];
    const fake = {
      sent: 0,
      redis: {
        wait: () => {
          fake.sent++;
          return new Promise<number>((resolve) => pending.push(resolve));
        },
      } as unknown as Redis,
      answer: (replicas: number) => pending.shift()?.(replicas),
    };
    return fake;
  }

  it('when commits wait while a WAIT is in flight, then they share the next WAIT: at most one in flight and one pending', async () => {
    // Arrange
    const connection = fakeConnection();
    const wait = new ReplicaWait(connection.redis, 1, 100);

    // Act
    const first = wait.wait();
    const second = wait.wait();
    const third = wait.wait();
    expect(connection.sent).toBe(1);
    connection.answer(1);
    await first;
    await new Promise((r) => setImmediate(r));
    expect(connection.sent).toBe(2);
    connection.answer(0);

    // Assert
    await expect(first).resolves.toBe(1);
    await expect(second).resolves.toBe(0);
    await expect(third).resolves.toBe(0);
    expect(connection.sent).toBe(2);
    const later = wait.wait();
    expect(connection.sent).toBe(3);
    connection.answer(1);
    await expect(later).resolves.toBe(1);
  });
});
