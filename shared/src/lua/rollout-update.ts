/**
 * Changes a model's rollout if nobody changed it since it was read (compare-and-set on its
 * revision), appends the change to the model's audit stream and announces it.
 *
 * KEYS[1] rollout (JSON)   KEYS[2] audit stream
 * ARGV[1] revision read    ARGV[2] new rollout (JSON)   ARGV[3] channel announcing changes
 * ARGV[4] model name       ARGV[5] audit stream length kept (approximately)
 * ARGV[6…] the audit entry, as field, value, …
 *
 * Returns 1 changed, 0 someone changed it first (read it again).
 */
export const ROLLOUT_UPDATE = `
local current = redis.call('GET', KEYS[1])
local revision = 0
if current then revision = tonumber(cjson.decode(current)['revision']) or 0 end
if revision ~= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], '*', unpack(ARGV, 6))
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1
`;
