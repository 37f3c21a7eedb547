import { EXPIRE_FINISHED_JOB } from './expire-job';

/**
 * Cancels a job that has not finished: its unstarted chunks are skipped when they come up, its
 * staged inputs are dropped now, its keys get the job's TTL, and waiting clients are told.
 *
 * KEYS[1] job hash
 * ARGV[1] now (ISO 8601)   ARGV[2] TTL in seconds after the finish
 * ARGV[3] channel announcing finished jobs   ARGV[4] job id   ARGV[5] now (ms)
 *
 * Returns -1 job gone, 0 already finished (nothing changed), 1 cancelled.
 */
export const CANCEL_JOB = `${EXPIRE_FINISHED_JOB}
local job = redis.call('HMGET', KEYS[1], 'status', 'chunks', 'claimKey', 'listKey')
local status = job[1]
if not status then return -1 end
if status == 'completed' or status == 'failed' or status == 'cancelled' then return 0 end
redis.call('HSET', KEYS[1], 'status', 'cancelled', 'finishedAt', ARGV[1])
local chunks = tonumber(job[2])
for i = 0, chunks - 1 do
  redis.call('DEL', KEYS[1] .. ':in:' .. i)
end
expireFinishedJob(tonumber(ARGV[2]), chunks, job[3], job[4], ARGV[5], ARGV[4])
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1
`;
