import type { ServerResponse } from 'node:http';
import type { RequestHandler } from 'express';
import { ProblemError } from '@onnx-batch/contracts';
import { type Logger, type RedisClient } from '@onnx-batch/shared';

/** A window's budget is leased from Redis this many tokens at a time (at least 1): one round trip per lease. */
const LEASES_PER_WINDOW = 100;
const WINDOW_MS = 60_000;

interface Bucket {
  window: number;
  /** Tokens this process holds for the window (leased from Redis). */
  granted: number;
  used: number;
  /** Tokens leased by every process together, as of this process's last lease. */
  leasedByAll: number;
  /** A lease under way: concurrent requests of the key wait for it rather than each asking Redis. */
  leasing: Promise<void> | null;
  /** The window's budget is spent across all processes: refuse without asking Redis again. */
  exhausted: boolean;
}

/**
 * Requests per minute per API key, shared by every API process and replica, without a Redis
 * round trip per request: each process leases tokens from a per-key, per-minute counter in Redis
 * (`INCRBY`, a hundredth of the budget at a time) and spends them locally. The budget holds
 * across processes exactly; tokens a process leased but did not spend by the end of the minute
 * are lost, so with P processes a key may be refused up to P hundredths early. Windows are
 * whole minutes of the clock, the same in every process.
 *
 * If Redis cannot be asked (down, or at maxmemory: a lease is a write), requests go through, a
 * lease's worth at a time, and that is logged once a window: polls and downloads go on, and a
 * submit is refused by what it would store (507 OB_ERR_STORAGE_FULL, or the connection error).
 */
export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly lease: number;
  /** The last window in which a failed lease was logged. */
  private warnedWindow = -1;

  constructor(
    private readonly redis: RedisClient,
    private readonly keyPrefix: string,
    readonly perMinute: number,
    private readonly logger: Logger,
  ) {
    this.lease = Math.max(1, Math.ceil(perMinute / LEASES_PER_WINDOW));
  }

  /**
   * Spends one token of `key`: answers about how many are left this minute (exact with one
   * process; with several, as of this process's last lease), or throws a 429 problem.
   */
  async consume(key: string, now = Date.now()): Promise<number> {
    const window = Math.floor(now / WINDOW_MS);
    let bucket = this.buckets.get(key);
    if (!bucket || bucket.window !== window) {
      bucket = { window, granted: 0, used: 0, leasedByAll: 0, leasing: null, exhausted: false };
      this.buckets.set(key, bucket);
      this.forgetOldWindows(window);
    }
    while (bucket.used >= bucket.granted) {
      if (bucket.exhausted) throw this.refusal(window, now);
      bucket.leasing ??= this.leaseMore(key, bucket).finally(() => {
        if (bucket) bucket.leasing = null;
      });
      await bucket.leasing;
    }
    bucket.used++;
    return Math.max(0, this.perMinute - bucket.leasedByAll) + bucket.granted - bucket.used;
  }

  private async leaseMore(key: string, bucket: Bucket): Promise<void> {
    const counter = `${this.keyPrefix}:${key}:${bucket.window}`;
    try {
      const [[, total]] = ((await this.redis
        .multi()
        .incrby(counter, this.lease)
        .pexpire(counter, WINDOW_MS * 2)
        .exec()) ?? [[null, 0]]) as [[Error | null, number]];
      const before = Number(total) - this.lease;
      bucket.leasedByAll = Math.min(this.perMinute, Number(total));
      const got = Math.max(0, Math.min(this.lease, this.perMinute - before));
      bucket.granted += got;
      if (got < this.lease) bucket.exhausted = true;
    } catch (error) {
      if (this.warnedWindow !== bucket.window) {
        this.warnedWindow = bucket.window;
        this.logger.warn('rate limiter unavailable; letting requests through (logged once a minute)', { error: String(error) });
      }
      bucket.granted += this.lease;
    }
  }

  private refusal(window: number, now: number): ProblemError {
    const retryAfter = Math.max(1, Math.ceil(((window + 1) * WINDOW_MS - now) / 1000));
    return new ProblemError(
      'OB_ERR_RATE_LIMITED',
      `more than ${this.perMinute} requests a minute with this key; retry in ${retryAfter} s`,
      { retryAfter },
    );
  }

  private forgetOldWindows(window: number): void {
    if (this.buckets.size < 1024) return;
    for (const [key, bucket] of this.buckets) if (bucket.window !== window) this.buckets.delete(key);
  }
}

/** A limiter for RATE_LIMIT_PER_MINUTE, or null when it is 0 (no limit). */
export function rateLimiterFor(redis: RedisClient, keyPrefix: string, perMinute: number, logger: Logger): RateLimiter | null {
  return perMinute > 0 ? new RateLimiter(redis, keyPrefix, perMinute, logger) : null;
}

/** Spends one token of the caller's key and sets `RateLimit-Limit` and `RateLimit-Remaining`; rejects with the 429 problem. */
export async function spendToken(limiter: RateLimiter, keyId: string, res: ServerResponse): Promise<void> {
  const remaining = await limiter.consume(keyId);
  res.setHeader('RateLimit-Limit', String(limiter.perMinute));
  res.setHeader('RateLimit-Remaining', String(remaining));
}

/** The limiter as middleware (a pass-through without a limit). */
export function rateLimit(limiter: RateLimiter | null): RequestHandler {
  if (!limiter) return (_req, _res, next) => next();
  return (req, res, next) => {
    spendToken(limiter, req.caller.keyId, res).then(() => next(), next);
  };
}
