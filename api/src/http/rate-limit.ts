import type { RequestHandler } from 'express';
import type { RedisClient } from '@onnx-batch/shared';
import { RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import { ProblemError, type Logger } from '@onnx-batch/shared';

/**
 * Requests per minute per API key, counted in Redis so every API replica shares the budget.
 * If Redis cannot be asked, the request goes through: the submit itself will fail clearly.
 */
export function rateLimit(redis: RedisClient, keyPrefix: string, perMinute: number, logger: Logger): RequestHandler {
  if (perMinute <= 0) return (_req, _res, next) => next();
  const limiter = new RateLimiterRedis({ storeClient: redis, keyPrefix, points: perMinute, duration: 60 });
  return async (req, res, next) => {
    try {
      const used = await limiter.consume(req.caller.keyId);
      res.setHeader('RateLimit-Limit', String(perMinute));
      res.setHeader('RateLimit-Remaining', String(used.remainingPoints));
    } catch (error) {
      if (error instanceof RateLimiterRes) {
        const retryAfter = Math.max(1, Math.ceil(error.msBeforeNext / 1000));
        throw new ProblemError('OB_ERR_RATE_LIMITED', `more than ${perMinute} requests a minute with this key; retry in ${retryAfter} s`, { retryAfter });
      }
      logger.warn('rate limiter unavailable; letting the request through', { error: String(error) });
    }
    next();
  };
}
