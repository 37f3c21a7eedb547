/**
 * Lua shared by the scripts that finish a job: from the finish on, the job's record, results and
 * idempotency claim live RESULT_TTL_SECONDS (until then they have no TTL, however long the job
 * waited in the queue). Expects `KEYS[1]` to be the job hash; `claimKey` is its `claimKey` field (false when it has none).
 */
export const EXPIRE_FINISHED_JOB = `
local function expireFinishedJob(ttl, chunks, claimKey)
  redis.call('EXPIRE', KEYS[1], ttl)
  for i = 0, chunks - 1 do
    redis.call('EXPIRE', KEYS[1] .. ':out:' .. i, ttl)
  end
  if claimKey then redis.call('EXPIRE', claimKey, ttl) end
end
`;
