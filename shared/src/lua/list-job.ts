/**
 * Lua of a tenant's job list (see jobs/job-list.ts): two sorted sets in the tenant's slot, the
 * jobs by creation time (ms) and the finished ones by the time their keys expire (ms).
 * `pruneListed` drops up to `most` entries whose job has expired from both; the commit script
 * runs it too, so a tenant that never lists does not pile up entries of jobs long gone.
 */
export const PRUNE_LISTED = `
local function pruneListed(jobs, expiring, now, most)
  local gone = redis.call('ZRANGEBYSCORE', expiring, '-inf', now, 'LIMIT', 0, most)
  if #gone > 0 then
    redis.call('ZREM', jobs, unpack(gone))
    redis.call('ZREM', expiring, unpack(gone))
  end
  return #gone
end
`;

/**
 * Lists a job apart from its commit (Redis Cluster: the tenant's list is in another slot than
 * the job; also the recovery sweep's repair). Idempotent.
 *
 * KEYS[1] the tenant's jobs (zset by creation ms)   KEYS[2] its expiring jobs (zset by expiry ms)
 * ARGV[1] creation time (ms)   ARGV[2] job id   ARGV[3] now (ms)   ARGV[4] most expired entries to prune
 *
 * Returns the number of expired entries pruned.
 */
export const LIST_JOB = `${PRUNE_LISTED}
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
return pruneListed(KEYS[1], KEYS[2], ARGV[3], tonumber(ARGV[4]))
`;

/**
 * Drops the entries of expired jobs from a tenant's list (before each list request).
 *
 * KEYS[1] the tenant's jobs   KEYS[2] its expiring jobs
 * ARGV[1] now (ms)   ARGV[2] most entries to prune
 *
 * Returns the number pruned.
 */
export const PRUNE_LIST = `${PRUNE_LISTED}
return pruneListed(KEYS[1], KEYS[2], ARGV[1], tonumber(ARGV[2]))
`;
