/**
 * Starts work on one chunk: marks the job running and returns the chunk's input.
 *
 * KEYS[1] job hash   KEYS[2] chunk input   KEYS[3] chunk output
 * ARGV[1] now (ISO 8601)   ARGV[2] chunk index
 *
 * Returns { state, input?, model?, version?, route?, rolloutRevision?, tenant?, chunkSize?, total?, chunks? } where state is
 *   'missing'   the job is gone (deleted or expired), or has no such chunk: skip the chunk
 *   'cancelled' the job was cancelled: skip the chunk
 *   'done'      the chunk already has results (a re-run after a crash): nothing to do
 *   'noinput'   the input is gone but no results exist: the chunk cannot run
 *   'running'   run it: input, model, version, route, rollout revision, tenant, chunk size, rows and chunks follow
 */
export const BEGIN_CHUNK = `
local job = redis.call('HMGET', KEYS[1], 'status', 'chunks', 'model', 'version', 'route', 'rolloutRevision', 'tenant', 'chunkSize', 'total')
local status = job[1]
local chunks = tonumber(job[2])
if not status or not chunks or tonumber(ARGV[2]) >= chunks then return {'missing'} end
if status == 'cancelled' then return {'cancelled'} end
if redis.call('EXISTS', KEYS[3]) == 1 then return {'done'} end
local input = redis.call('GET', KEYS[2])
if not input then return {'noinput'} end
if status == 'queued' then
  redis.call('HSET', KEYS[1], 'status', 'running', 'startedAt', ARGV[1])
end
return {'running', input, job[3], job[4], job[5] or 'pinned', job[6] or '0', job[7] or '', job[8] or '0', job[9] or '0', job[2]}
`;
