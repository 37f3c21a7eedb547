/**
 * Cancels a job that has not finished: its unstarted chunks are skipped when they come up, its
 * staged inputs are dropped now, and waiting clients are told.
 *
 * KEYS[1] job hash
 * ARGV[1] now (ISO 8601)   ARGV[2] TTL in seconds after the finish
 * ARGV[3] channel announcing finished jobs   ARGV[4] job id
 *
 * Returns -1 job gone, 0 already finished (nothing changed), 1 cancelled.
 */
export const CANCEL_JOB = `
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return -1 end
if status == 'completed' or status == 'failed' or status == 'cancelled' then return 0 end
redis.call('HSET', KEYS[1], 'status', 'cancelled', 'finishedAt', ARGV[1])
local chunks = tonumber(redis.call('HGET', KEYS[1], 'chunks'))
local ttl = tonumber(ARGV[2])
redis.call('EXPIRE', KEYS[1], ttl)
for i = 0, chunks - 1 do
  redis.call('DEL', KEYS[1] .. ':in:' .. i)
  redis.call('EXPIRE', KEYS[1] .. ':out:' .. i, ttl)
end
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1
`;
