/** One Redis server named in REDIS_CLUSTER_NODES or REDIS_SENTINELS. */
export interface RedisEndpoint {
  host: string;
  port: number;
}

/** A list of Redis endpoints, and whether they are reached over TLS. */
export interface RedisEndpoints {
  nodes: RedisEndpoint[];
  tls: boolean;
}

const ENDPOINT = /^(?:(rediss?):\/\/)?([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):(\d{1,5})$/;

/**
 * Parses comma-separated `host:port` entries (each may start with `redis://` or `rediss://`; TLS
 * is all or nothing). Throws an Error saying what is wrong, as config checks expect.
 */
export function parseRedisEndpoints(value: string): RedisEndpoints {
  const entries = value
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '');
  if (entries.length === 0) throw new Error('names no host:port');
  const schemes = new Set<boolean>();
  const nodes = entries.map((entry) => {
    const match = ENDPOINT.exec(entry);
    const port = Number(match?.[3]);
    if (!match || port < 1 || port > 65_535) throw new Error(`'${entry}' is not host:port`);
    schemes.add(match[1] === 'rediss');
    return { host: (match[2] as string).replace(/^\[|\]$/g, ''), port };
  });
  if (schemes.size > 1) throw new Error('mixes rediss:// and plain entries: TLS is used for all of them or none');
  return { nodes, tls: schemes.has(true) };
}
