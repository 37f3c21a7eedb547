/**
 * Removes every key of a job now: record, chunk inputs and results, its idempotency claim (when
 * the claim still names this job), its outbox entry and its entries in its tenant's job list (when
 * the record names the list: one Redis node; on a cluster JobStore drops them after).
 *
 * KEYS[1] job hash   KEYS[2] outbox zset
 * ARGV[1] job id     ARGV[2] chunks (used when the record is already gone)
 *
 * Returns the number of keys deleted.
 */
export const REMOVE_JOB = `
local chunks = tonumber(redis.call('HGET', KEYS[1], 'chunks') or ARGV[2])
local claimKey = redis.call('HGET', KEYS[1], 'claimKey')
local listKey = redis.call('HGET', KEYS[1], 'listKey')
if listKey then
  redis.call('ZREM', listKey, ARGV[1])
  redis.call('ZREM', listKey .. ':expiring', ARGV[1])
end
local deleted = 0
if claimKey then
  local claim = redis.call('GET', claimKey)
  if claim and string.sub(claim, 1, string.len(KEYS[1]) + 1) == KEYS[1] .. ' ' then
    deleted = deleted + redis.call('DEL', claimKey)
  end
end
deleted = deleted + redis.call('DEL', KEYS[1])
for i = 0, chunks - 1 do
  deleted = deleted + redis.call('DEL', KEYS[1] .. ':in:' .. i, KEYS[1] .. ':out:' .. i)
end
redis.call('ZREM', KEYS[2], ARGV[1])
return deleted
`;
