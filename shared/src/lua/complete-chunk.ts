import { EXPIRE_FINISHED_JOB } from './expire-job';

/**
 * Records one chunk's results exactly once and finishes the job after its last chunk.
 * A re-run of a chunk that already has results changes nothing (idempotent). Results have no
 * TTL until the job finishes; then every key of the job gets the job's TTL. The job's counters
 * are read once and written once (the script runs atomically), so a chunk costs a handful of
 * commands however the job ends.
 *
 * KEYS[1] job hash   KEYS[2] chunk output   KEYS[3] chunk input
 * ARGV[1] results (one JSON line per row)   ARGV[2] rows in the chunk
 * ARGV[3] rows that failed                  ARGV[4] now (ISO 8601)
 * ARGV[5] TTL in seconds after the finish   ARGV[6] problem JSON used if every row failed
 * ARGV[7] channel announcing finished jobs  ARGV[8] job id
 * ARGV[9] chunk index                     ARGV[10] now (ms)
 *
 * Returns {code} where code is -1 job gone (or no such chunk), -2 job cancelled, 0 already
 * recorded, 1 recorded; or {2, field, value, …}: recorded and the job finished, with its record.
 */
export const COMPLETE_CHUNK = `${EXPIRE_FINISHED_JOB}
local job = redis.call('HMGET', KEYS[1], 'status', 'chunks', 'total', 'done', 'failed', 'chunksDone', 'claimKey', 'listKey')
-- The chunk has run: its input goes, whatever happens to its results below.
redis.call('DEL', KEYS[3])
local status = job[1]
local chunks = tonumber(job[2])
if not status or not chunks or tonumber(ARGV[9]) >= chunks then return {-1} end
if status == 'cancelled' then return {-2} end
if not redis.call('SET', KEYS[2], ARGV[1], 'NX') then return {0} end
local done = tonumber(job[4] or '0') + tonumber(ARGV[2])
local failed = tonumber(job[5] or '0') + tonumber(ARGV[3])
local chunksDone = tonumber(job[6] or '0') + 1
local fields = {'done', done, 'failed', failed, 'chunksDone', chunksDone}
if status == 'queued' then
  table.insert(fields, 'status'); table.insert(fields, 'running')
  table.insert(fields, 'startedAt'); table.insert(fields, ARGV[4])
end
if chunksDone < chunks then
  redis.call('HSET', KEYS[1], unpack(fields))
  return {1}
end
table.insert(fields, 'finishedAt'); table.insert(fields, ARGV[4])
table.insert(fields, 'status')
if failed >= tonumber(job[3]) then
  table.insert(fields, 'failed')
  table.insert(fields, 'error'); table.insert(fields, ARGV[6])
else
  table.insert(fields, 'completed')
end
redis.call('HSET', KEYS[1], unpack(fields))
expireFinishedJob(tonumber(ARGV[5]), chunks, job[7], job[8], ARGV[10], ARGV[8])
redis.call('PUBLISH', ARGV[7], ARGV[8])
local reply = redis.call('HGETALL', KEYS[1])
table.insert(reply, 1, 2)
return reply
`;
