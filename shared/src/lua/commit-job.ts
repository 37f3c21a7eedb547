import { PRUNE_LISTED } from './list-job';

/**
 * Commits a staged job in one atomic step: claims its Idempotency-Key (if any), checks that every
 * staged chunk input still exists, makes the inputs permanent, writes the job record, puts the
 * job in its outbox (workers queue outbox entries an API left behind, see reconciler.ts) and, on
 * one Redis node, in its tenant's job list (pruning a few expired entries of it). On Redis Cluster
 * everything it touches shares the job's hash tag; the tenant's sets are kept apart then.
 *
 * KEYS[1] job hash   KEYS[2] outbox zset   KEYS[3] idempotency claim (= KEYS[1] when there is none)
 * KEYS[4] the tenant's active-job zset (= KEYS[1] when it is kept apart: Redis Cluster, another slot)
 * ARGV[1] staged chunks (inputs 0 … n-1 must exist)
 * ARGV[2] last chunk's input, written now as chunk n ('' when every chunk was staged)
 * ARGV[3] claim value `<job key> <jobId> <bodyHash>` ('' when there is no Idempotency-Key)
 * ARGV[4] now (ms; the outbox score)   ARGV[5] job id
 * KEYS[5] the tenant's job list (zset by creation ms)   KEYS[6] its expiring jobs (both = KEYS[1] when kept apart)
 * ARGV[6] the tenant's limit of unfinished jobs (0: KEYS[4] is not used)   ARGV[7] its set's TTL (s)
 * ARGV[8] creation time (ms; the list's score)   ARGV[9] '1': list the job (KEYS[5], KEYS[6]); '0': not here
 * ARGV[10…] the record, as field, value, field, value, …
 *
 * Returns {'committed'}, {'claimed', '<job key> <jobId> <bodyHash>'} when the key already names a
 * job that exists (nothing is written), {'lost', '<chunk>'} when a staged input is gone, or
 * {'limit'} when the tenant's active set is full (prune it and try again).
 */
export const COMMIT_JOB = `${PRUNE_LISTED}
local claimed = ARGV[3] ~= ''
if claimed then
  local claim = redis.call('GET', KEYS[3])
  if claim then
    local jobKey = string.match(claim, '^(%S+) ')
    if jobKey and redis.call('EXISTS', jobKey) == 1 then return {'claimed', claim} end
  end
end
local limit = tonumber(ARGV[6])
if limit > 0 and redis.call('ZCARD', KEYS[4]) >= limit then return {'limit'} end
local staged = tonumber(ARGV[1])
for i = 0, staged - 1 do
  if redis.call('EXISTS', KEYS[1] .. ':in:' .. i) == 0 then return {'lost', tostring(i)} end
end
for i = 0, staged - 1 do
  redis.call('PERSIST', KEYS[1] .. ':in:' .. i)
end
if ARGV[2] ~= '' then redis.call('SET', KEYS[1] .. ':in:' .. staged, ARGV[2]) end
redis.call('HSET', KEYS[1], unpack(ARGV, 10))
if claimed then
  redis.call('SET', KEYS[3], ARGV[3])
  redis.call('HSET', KEYS[1], 'claimKey', KEYS[3])
end
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[5])
if limit > 0 then
  redis.call('ZADD', KEYS[4], ARGV[4], ARGV[5])
  redis.call('EXPIRE', KEYS[4], ARGV[7])
end
if ARGV[9] == '1' then
  redis.call('ZADD', KEYS[5], ARGV[8], ARGV[5])
  redis.call('HSET', KEYS[1], 'listKey', KEYS[5])
  pruneListed(KEYS[5], KEYS[6], ARGV[4], 10)
end
return {'committed'}
`;
