import type { Redis } from 'ioredis';
import { isCluster, type RedisClient } from '../redis';

/** The one eviction policy under which Redis never drops a key of an accepted job (docs/operations.md, "Redis memory"). */
export const SAFE_EVICTION_POLICY = 'noeviction';

/** What one Redis server says of its memory and of what it does when that is full. */
export interface RedisNodeMemory {
  /** `host:port` of the server. */
  node: string;
  /** `maxmemory-policy`, or null when neither CONFIG nor INFO told it. */
  policy: string | null;
  /** Where the policy was read: `CONFIG GET`, or `INFO memory` where CONFIG is disabled (managed services). */
  policySource: 'config' | 'info' | null;
  /** Memory Redis counts against maxmemory (`used_memory` less `mem_not_counted_for_evict`), in bytes. */
  usedBytes: number;
  /** `maxmemory` in bytes; 0: no limit. */
  maxBytes: number;
}

/** Share of maxmemory in use (0 without a limit): what Redis compares to decide that it is full. */
export function memoryRatio(node: Pick<RedisNodeMemory, 'usedBytes' | 'maxBytes'>): number {
  return node.maxBytes > 0 ? node.usedBytes / node.maxBytes : 0;
}

/** Whether an error is Redis refusing a write because it is at maxmemory (`-OOM command not allowed …`), as a reply or inside a script. */
export function isOutOfMemoryError(error: unknown): boolean {
  return error instanceof Error && /^OOM\b/.test(error.message);
}

/** The servers a client writes to: every primary of a cluster, else the one server (a Sentinel set-up's current primary). */
export function writtenNodes(redis: RedisClient): Redis[] {
  return isCluster(redis) ? redis.nodes('master') : [redis];
}

function field(info: string, name: string): string | null {
  const match = new RegExp(`^${name}:(.*)$`, 'm').exec(info);
  return match ? (match[1] as string).trim() : null;
}

async function configuredPolicy(redis: Redis): Promise<string | null> {
  try {
    const reply = (await redis.config('GET', 'maxmemory-policy')) as unknown;
    // [name, value] in RESP2; an empty list when the parameter is unknown.
    return Array.isArray(reply) && typeof reply[1] === 'string' ? reply[1] : null;
  } catch {
    // CONFIG renamed away or not permitted (ACL, managed services): INFO still tells.
    return null;
  }
}

/** `host:port` of the server a connection reached (through Sentinel: the primary it found, not the configured address). */
function nodeName(redis: Redis): string {
  const socket = redis.stream as { remoteAddress?: string; remotePort?: number } | undefined;
  if (socket?.remoteAddress && socket.remotePort) return `${socket.remoteAddress}:${socket.remotePort}`;
  return `${redis.options.host ?? 'localhost'}:${redis.options.port ?? 6379}`;
}

/** Reads one server's eviction policy (`CONFIG GET maxmemory-policy`, else `INFO memory`) and memory figures. */
export async function inspectNode(redis: Redis): Promise<RedisNodeMemory> {
  const [fromConfig, info] = await Promise.all([configuredPolicy(redis), redis.info('memory')]);
  const fromInfo = field(info, 'maxmemory_policy');
  const used = Number(field(info, 'used_memory') ?? 0) - Number(field(info, 'mem_not_counted_for_evict') ?? 0);
  return {
    node: nodeName(redis),
    policy: fromConfig ?? fromInfo,
    policySource: fromConfig !== null ? 'config' : fromInfo !== null ? 'info' : null,
    usedBytes: Math.max(0, used),
    maxBytes: Number(field(info, 'maxmemory') ?? 0),
  };
}
