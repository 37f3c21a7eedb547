/**
 * Records one chunk's results exactly once and finishes the job after its last chunk.
 * A re-run of a chunk that already has results changes nothing (idempotent).
 *
 * KEYS[1] job hash   KEYS[2] chunk output   KEYS[3] chunk input
 * ARGV[1] results (one JSON line per row)   ARGV[2] rows in the chunk
 * ARGV[3] rows that failed                  ARGV[4] now (ISO 8601)
 * ARGV[5] TTL in seconds after the finish   ARGV[6] problem JSON used if every row failed
 * ARGV[7] channel announcing finished jobs  ARGV[8] job id
 *
 * Returns -1 job gone, -2 job cancelled, 0 already recorded, 1 recorded, 2 recorded and job finished.
 */
export const COMPLETE_CHUNK = `
local status = redis.call('HGET', KEYS[1], 'status')
if not status then
  redis.call('DEL', KEYS[3])
  return -1
end
if status == 'cancelled' then
  redis.call('DEL', KEYS[3])
  return -2
end
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('DEL', KEYS[3])
  return 0
end
local ttl = tonumber(ARGV[5])
redis.call('SET', KEYS[2], ARGV[1], 'EX', ttl)
redis.call('DEL', KEYS[3])
redis.call('HINCRBY', KEYS[1], 'done', ARGV[2])
local failed = redis.call('HINCRBY', KEYS[1], 'failed', ARGV[3])
local chunksDone = redis.call('HINCRBY', KEYS[1], 'chunksDone', 1)
if status == 'queued' then
  redis.call('HSET', KEYS[1], 'status', 'running', 'startedAt', ARGV[4])
end
local chunks = tonumber(redis.call('HGET', KEYS[1], 'chunks'))
if chunksDone < chunks then return 1 end
if failed >= tonumber(redis.call('HGET', KEYS[1], 'total')) then
  redis.call('HSET', KEYS[1], 'status', 'failed', 'finishedAt', ARGV[4], 'error', ARGV[6])
else
  redis.call('HSET', KEYS[1], 'status', 'completed', 'finishedAt', ARGV[4])
end
redis.call('EXPIRE', KEYS[1], ttl)
for i = 0, chunks - 1 do
  redis.call('EXPIRE', KEYS[1] .. ':out:' .. i, ttl)
end
redis.call('PUBLISH', ARGV[7], ARGV[8])
return 2
`;
