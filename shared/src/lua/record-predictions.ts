/**
 * Keeps a chunk's predictions for labels and adds what they count to the quality counters, once:
 * a re-run of the chunk (after a crash) finds its predictions kept and adds nothing. Every key is
 * in the model's slot.
 *
 * KEYS[1] kept predictions   KEYS[2] the job's counters   KEYS[3] hour bucket   KEYS[4] day bucket
 * KEYS[5] the model's series hash
 * ARGV[1] the encoded predictions   ARGV[2] their EXPIREAT (s)   ARGV[3] the hour bucket's EXPIREAT
 * ARGV[4] the day bucket's EXPIREAT   ARGV[5] the series field (`<version>:<arm>`)   ARGV[6] now (ms)
 * ARGV[7] 1: count them in the job's counters too (0: a shadow's, which judge the shadow version only)
 * ARGV[8..] field, increment, field, increment, …
 *
 * Returns 1 when kept, 0 when they were already.
 */
export const RECORD_PREDICTIONS = `
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EXAT', ARGV[2]) then return 0 end
local job = ARGV[7] == '1'
for i = 8, #ARGV - 1, 2 do
  if job then redis.call('HINCRBYFLOAT', KEYS[2], ARGV[i], ARGV[i + 1]) end
  redis.call('HINCRBYFLOAT', KEYS[3], ARGV[i], ARGV[i + 1])
  redis.call('HINCRBYFLOAT', KEYS[4], ARGV[i], ARGV[i + 1])
end
if job then
  redis.call('HSETNX', KEYS[2], 'at', ARGV[6])
  -- The job's counters last as long as its latest chunk's predictions (EXPIRETIME: -1 none, -2 no key).
  if redis.call('EXPIRETIME', KEYS[2]) < tonumber(ARGV[2]) then redis.call('EXPIREAT', KEYS[2], ARGV[2]) end
end
redis.call('EXPIREAT', KEYS[3], ARGV[3])
redis.call('EXPIREAT', KEYS[4], ARGV[4])
redis.call('HSET', KEYS[5], ARGV[5], ARGV[6])
-- The series list lasts as long as the latest predictions (entries older than the retention are filtered on read).
redis.call('EXPIREAT', KEYS[5], ARGV[2])
return 1
`;
