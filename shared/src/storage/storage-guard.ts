import type { Config } from '../config';
import { RedisEvictingError, StorageFullError } from '../domain-errors';
import type { Logger } from '../logger';
import type { RedisClient } from '../redis';
import { inspectNode, memoryRatio, SAFE_EVICTION_POLICY, writtenNodes, type RedisNodeMemory } from './redis-memory';

/** What the last check of every Redis server written to found. */
export interface StorageState {
  /** When the last check answered (ms since the epoch); null before the first one. */
  checkedAt: number | null;
  nodes: RedisNodeMemory[];
  /** Servers whose policy may delete keys when memory is full (anything but noeviction, or a policy that could not be read). */
  evicting: RedisNodeMemory[];
  /** The fullest server's share of its maxmemory (0 when none has a limit). */
  memoryRatio: number;
}

export interface StorageGuardSettings {
  /** ALLOW_EVICTING_REDIS: accept jobs although a server may evict (loudly logged). */
  allowEvicting: boolean;
  /** REDIS_MEMORY_HIGH_WATERMARK: share of maxmemory from which new jobs are refused. */
  highWatermark: number;
  /** REDIS_MEMORY_CHECK_INTERVAL_MS. */
  intervalMs: number;
  /** Whether this process accepts jobs (API, scheduler), so that crossing the watermark is its news to log. */
  admitsJobs: boolean;
}

/** How long a client refused for space is asked to wait (Retry-After): long enough for jobs to finish or expire. */
export const STORAGE_FULL_RETRY_AFTER_SECONDS = 30;

/** Waiting for room: first and longest pause between checks. */
const ROOM_WAIT_MS = { first: 200, longest: 2000 };

/**
 * Keeps an eye on the Redis servers the process writes to (every primary of a cluster), so that
 * accepted work is never lost to a full or evicting Redis (docs/operations.md, "Redis memory"):
 *
 * - **Eviction policy.** Anything but `noeviction` may delete the keys of jobs already accepted,
 *   so new jobs are refused (`RedisEvictingError`) unless ALLOW_EVICTING_REDIS says otherwise.
 * - **Headroom.** From REDIS_MEMORY_HIGH_WATERMARK of maxmemory on, new jobs are refused
 *   (`StorageFullError`), so the jobs already accepted still have room for their results.
 * - **Full.** Code that met an `OOM` reply waits here (`waitForRoom`) instead of failing its work.
 *
 * Checked every REDIS_MEMORY_CHECK_INTERVAL_MS and on every readiness check; a change of verdict is
 * logged once (an error for an evicting server, naming the setting and its fix).
 */
export class StorageGuard {
  private current: StorageState = { checkedAt: null, nodes: [], evicting: [], memoryRatio: 0 };
  private inFlight: Promise<StorageState> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private loggedEvicting = '';
  private loggedAboveWatermark = false;

  constructor(
    private readonly redis: RedisClient,
    readonly settings: StorageGuardSettings,
    private readonly logger: Logger,
  ) {}

  static fromConfig(
    redis: RedisClient,
    config: Pick<Config, 'ALLOW_EVICTING_REDIS' | 'REDIS_MEMORY_HIGH_WATERMARK' | 'REDIS_MEMORY_CHECK_INTERVAL_MS'>,
    logger: Logger,
    admitsJobs: boolean,
  ): StorageGuard {
    return new StorageGuard(
      redis,
      {
        allowEvicting: config.ALLOW_EVICTING_REDIS === 'true',
        highWatermark: config.REDIS_MEMORY_HIGH_WATERMARK,
        intervalMs: config.REDIS_MEMORY_CHECK_INTERVAL_MS,
        admitsJobs,
      },
      logger,
    );
  }

  /** Checks now (the verdict is logged when Redis answers) and then every interval. */
  start(): void {
    if (this.settings.allowEvicting && this.settings.admitsJobs)
      this.logger.error(
        'ALLOW_EVICTING_REDIS=true: jobs are accepted even when Redis may evict keys; an evicted job is lost without a word',
      );
    void this.refresh().catch(() => undefined);
    this.timer = setInterval(() => void this.refresh().catch(() => undefined), this.settings.intervalMs);
    this.timer.unref();
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  get state(): StorageState {
    return this.current;
  }

  /** Whether new jobs are accepted as far as the eviction policy goes (it is safe, or evicting is allowed). */
  get policyAccepted(): boolean {
    return this.current.evicting.length === 0 || this.settings.allowEvicting;
  }

  /** Whether Redis has room for new jobs (below the high watermark). */
  get belowWatermark(): boolean {
    return this.current.memoryRatio < this.settings.highWatermark;
  }

  /** Reads every server again (concurrent callers share one check). Rejects when Redis does not answer. */
  refresh(): Promise<StorageState> {
    this.inFlight ??= this.check().finally(() => {
      this.inFlight = null;
    });
    return this.inFlight;
  }

  /** Why a new job may not be accepted now, from the last check; null when it may. */
  refusal(): Error | null {
    const state = this.current;
    if (!this.policyAccepted) return new RedisEvictingError(describeEvicting(state.evicting));
    if (!this.belowWatermark) {
      return new StorageFullError(
        `Redis is ${percent(state.memoryRatio)} full, above the ${percent(this.settings.highWatermark)} kept for the jobs already ` +
          `accepted (REDIS_MEMORY_HIGH_WATERMARK); nothing was queued: retry once jobs have finished or been deleted`,
        STORAGE_FULL_RETRY_AFTER_SECONDS,
      );
    }
    return null;
  }

  /** Throws the refusal of a new job, if any; before the first check has answered, waits for it. */
  async admit(): Promise<void> {
    if (this.current.checkedAt === null) await this.refresh().catch(() => undefined);
    const refusal = this.refusal();
    if (refusal) throw refusal;
  }

  /**
   * Resolves once no server is at its maxmemory any more (checking with a growing pause), or when
   * `signal` aborts. For work that met an OOM reply and must not fail for it.
   */
  async waitForRoom(signal?: AbortSignal): Promise<void> {
    let pause = ROOM_WAIT_MS.first;
    while (!signal?.aborted) {
      const state = await this.refresh().catch(() => null);
      if (state && state.nodes.every((node) => memoryRatio(node) < 1)) return;
      await new Promise((resolve) => setTimeout(resolve, pause));
      pause = Math.min(ROOM_WAIT_MS.longest, pause * 2);
    }
  }

  private async check(): Promise<StorageState> {
    const nodes = await Promise.all(writtenNodes(this.redis).map((node) => inspectNode(node)));
    const evicting = nodes.filter((node) => node.policy !== SAFE_EVICTION_POLICY);
    this.current = {
      checkedAt: Date.now(),
      nodes,
      evicting,
      memoryRatio: Math.max(0, ...nodes.map(memoryRatio)),
    };
    this.logChanges();
    return this.current;
  }

  private logChanges(): void {
    const { evicting, memoryRatio: ratio } = this.current;
    const key = evicting.map((n) => `${n.node}=${n.policy ?? '?'}`).join(',');
    if (key !== this.loggedEvicting) {
      this.loggedEvicting = key;
      if (evicting.length > 0) {
        this.logger.error(describeEvicting(evicting), {
          setting: 'maxmemory-policy',
          nodes: evicting.map((n) => ({ node: n.node, policy: n.policy })),
          accepting: this.settings.allowEvicting ? 'yes (ALLOW_EVICTING_REDIS=true)' : 'no: new jobs are refused',
        });
      } else {
        this.logger.info('every Redis server has maxmemory-policy noeviction: accepted jobs cannot be evicted');
      }
    }
    const above = ratio >= this.settings.highWatermark;
    if (this.settings.admitsJobs && above !== this.loggedAboveWatermark) {
      this.loggedAboveWatermark = above;
      const figures = { memoryRatio: Number(ratio.toFixed(4)), highWatermark: this.settings.highWatermark };
      if (above)
        this.logger.warn(
          'Redis memory is above REDIS_MEMORY_HIGH_WATERMARK: new jobs are refused until jobs finish or are deleted',
          figures,
        );
      else this.logger.info('Redis memory is below REDIS_MEMORY_HIGH_WATERMARK again: new jobs are accepted', figures);
    }
  }
}

/** What is wrong with the policy of these servers and the one-line fix. */
function describeEvicting(nodes: readonly RedisNodeMemory[]): string {
  const named = nodes.map((n) => (n.policy === null ? `${n.node} (policy unreadable)` : `${n.node} (maxmemory-policy ${n.policy})`));
  return (
    `Redis may evict the keys of accepted jobs: ${named.join(', ')}. Fix: redis-cli CONFIG SET maxmemory-policy noeviction ` +
    `(and maxmemory-policy noeviction in redis.conf); ALLOW_EVICTING_REDIS=true accepts jobs anyway`
  );
}

function percent(share: number): string {
  return `${(share * 100).toFixed(share >= 0.995 && share < 1 ? 1 : 0)} %`;
}
