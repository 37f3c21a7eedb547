import type { Redis } from 'ioredis';
import type { Config } from './config';
import { connectRedis, isCluster, type RedisConnectionConfig } from './redis';

/**
 * Redis `WAIT` for the writes made on one connection, shared by concurrent callers. A WAIT blocks
 * the connection that sends it and covers every write sent on it before, so a caller whose write
 * has been answered joins the next WAIT rather than queueing one of its own: at most one is in
 * flight and one pending, and when replicas are missing a caller waits at most two timeouts.
 */
export class ReplicaWait {
  private current: Promise<number> | null = null;
  private next: Promise<number> | null = null;

  constructor(
    /** The connection the writes were made on (WAIT only counts that client's writes). */
    readonly redis: Redis,
    readonly replicas: number,
    private readonly timeoutMs: number,
  ) {}

  /** How many replicas acknowledged every write this connection had answered before the call. */
  wait(): Promise<number> {
    if (!this.current) return this.send();
    // The WAIT in flight may have been sent before the caller's write was: take the one after it.
    this.next ??= this.current.then(
      () => this.send(),
      () => this.send(),
    );
    return this.next;
  }

  private send(): Promise<number> {
    this.next = null;
    const sent: Promise<number> = this.redis.wait(this.replicas, this.timeoutMs).finally(() => {
      if (this.current === sent) this.current = null;
    });
    this.current = sent;
    return sent;
  }
}

/**
 * The WAIT of an API process's commits when REDIS_WAIT_REPLICAS > 0 (null otherwise), on a
 * connection of its own: a WAIT blocks its connection, and reads must not queue behind it.
 */
export function replicaWaitFor(
  config: RedisConnectionConfig & Pick<Config, 'REDIS_WAIT_REPLICAS' | 'REDIS_WAIT_TIMEOUT_MS'>,
): ReplicaWait | null {
  if (config.REDIS_WAIT_REPLICAS <= 0) return null;
  const connection = connectRedis(config);
  // loadConfig refuses REDIS_WAIT_REPLICAS with REDIS_CLUSTER_NODES; this keeps the types honest.
  if (isCluster(connection)) throw new Error('REDIS_WAIT_REPLICAS is not supported on Redis Cluster');
  return new ReplicaWait(connection, config.REDIS_WAIT_REPLICAS, config.REDIS_WAIT_TIMEOUT_MS);
}
