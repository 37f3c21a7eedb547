/**
 * Records where a job's webhook delivery stands, on the job's own hash, only while the job
 * exists (an HSET on an expired job would bring back a hash without a TTL).
 *
 * KEYS[1] job hash
 * ARGV    field, value, field, value, …
 *
 * Returns 1 recorded, 0 job gone.
 */
export const RECORD_WEBHOOK = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
`;
