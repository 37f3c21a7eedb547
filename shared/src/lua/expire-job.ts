/**
 * Lua shared by the scripts that finish a job: from the finish on, the job's record, results and
 * idempotency claim live RESULT_TTL_SECONDS (until then they have no TTL, however long the job
 * waited in the queue), and a listed job is put in its tenant's expiring set, scored by when its
 * keys go, so list requests prune its entry then (jobs/job-list.ts). Expects `KEYS[1]` to be the
 * job hash; `claimKey` and `listKey` are its fields of those names (false when it has none: the
 * list of a job on Redis Cluster is kept apart, see job-store.ts).
 */
export const EXPIRE_FINISHED_JOB = `
local function expireFinishedJob(ttl, chunks, claimKey, listKey, nowMs, id)
  redis.call('EXPIRE', KEYS[1], ttl)
  for i = 0, chunks - 1 do
    redis.call('EXPIRE', KEYS[1] .. ':out:' .. i, ttl)
  end
  if claimKey then redis.call('EXPIRE', claimKey, ttl) end
  if listKey then redis.call('ZADD', listKey .. ':expiring', tonumber(nowMs) + ttl * 1000, id) end
end
`;
