import { EXPIRE_FINISHED_JOB } from './expire-job';

/**
 * Records one chunk's results exactly once and finishes the job after its last chunk.
 * A re-run of a chunk that already has results changes nothing (idempotent). Results have no
 * TTL until the job finishes; then every key of the job gets the job's TTL.
 *
 * KEYS[1] job hash   KEYS[2] chunk output   KEYS[3] chunk input
 * ARGV[1] results (one JSON line per row)   ARGV[2] rows in the chunk
 * ARGV[3] rows that failed                  ARGV[4] now (ISO 8601)
 * ARGV[5] TTL in seconds after the finish   ARGV[6] problem JSON used if every row failed
 * ARGV[7] channel announcing finished jobs  ARGV[8] job id
 * ARGV[9] chunk index
 *
 * Returns -1 job gone (or no such chunk), -2 job cancelled, 0 already recorded, 1 recorded,
 * 2 recorded and job finished.
 */
export const COMPLETE_CHUNK = `${EXPIRE_FINISHED_JOB}
local status = redis.call('HGET', KEYS[1], 'status')
local chunks = tonumber(redis.call('HGET', KEYS[1], 'chunks'))
if not status or not chunks or tonumber(ARGV[9]) >= chunks then
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
redis.call('SET', KEYS[2], ARGV[1])
redis.call('DEL', KEYS[3])
redis.call('HINCRBY', KEYS[1], 'done', ARGV[2])
local failed = redis.call('HINCRBY', KEYS[1], 'failed', ARGV[3])
local chunksDone = redis.call('HINCRBY', KEYS[1], 'chunksDone', 1)
if status == 'queued' then
  redis.call('HSET', KEYS[1], 'status', 'running', 'startedAt', ARGV[4])
end
if chunksDone < chunks then return 1 end
if failed >= tonumber(redis.call('HGET', KEYS[1], 'total')) then
  redis.call('HSET', KEYS[1], 'status', 'failed', 'finishedAt', ARGV[4], 'error', ARGV[6])
else
  redis.call('HSET', KEYS[1], 'status', 'completed', 'finishedAt', ARGV[4])
end
expireFinishedJob(tonumber(ARGV[5]), chunks)
redis.call('PUBLISH', ARGV[7], ARGV[8])
return 2
`;
