/**
 * Lua shared by the scripts that finish a job: from the finish on, the job's record, results and
 * idempotency claim live RESULT_TTL_SECONDS (until then they have no TTL, however long the job
 * waited in the queue). Expects `KEYS[1]` to be the job hash.
 */
export const EXPIRE_FINISHED_JOB = `
local function expireFinishedJob(ttl, chunks)
  redis.call('EXPIRE', KEYS[1], ttl)
  for i = 0, chunks - 1 do
    redis.call('EXPIRE', KEYS[1] .. ':out:' .. i, ttl)
  end
  local claimKey = redis.call('HGET', KEYS[1], 'claimKey')
  if claimKey then redis.call('EXPIRE', claimKey, ttl) end
end
`;
