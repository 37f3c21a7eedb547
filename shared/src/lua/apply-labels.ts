/**
 * Gives rows of one chunk their labels and adds the difference they make to the quality counters,
 * only if every row still holds the label the caller computed that difference from (else nothing
 * is written and the caller reads again): two requests labelling the same rows at once each count
 * once, and a label that replaces another is counted once. Every key is in the model's slot.
 *
 * KEYS[1] the chunk's labels   KEYS[2] the job's counters   KEYS[3] hour bucket   KEYS[4] day bucket
 * KEYS[5] the shadow's hour bucket   KEYS[6] the shadow's day bucket (when the chunk has a shadow's predictions)
 * ARGV[1] bytes per row   ARGV[2] the labels' EXPIREAT (s; their predictions')
 * ARGV[3] the hour bucket's EXPIREAT   ARGV[4] the day bucket's EXPIREAT
 * ARGV[5] rows (uint32 LE each)   ARGV[6] the bytes each row holds now (all zero: no label)
 * ARGV[7] the bytes each row gets   ARGV[8] the shadow buckets' EXPIREAT (its day bucket's, the later; 0: no shadow)
 * ARGV[9] n, the number of field/increment pairs of the job's arm
 * ARGV[10..] n pairs field, increment for the job (its counters and buckets), then pairs for the shadow's buckets
 *
 * Returns 1 when applied, 0 when a row's label had changed meanwhile.
 */
export const APPLY_LABELS = `
local width = tonumber(ARGV[1])
local rows, expected, given = ARGV[5], ARGV[6], ARGV[7]
local count = #rows / 4
local current = redis.call('GET', KEYS[1]) or ''
local zero = string.rep('\\0', width)
for i = 0, count - 1 do
  local offset = struct.unpack('<I4', rows, i * 4 + 1) * width
  local now = string.sub(current, offset + 1, offset + width)
  if #now < width then now = now .. string.sub(zero, 1, width - #now) end
  if now ~= string.sub(expected, i * width + 1, (i + 1) * width) then return 0 end
end
for i = 0, count - 1 do
  local offset = struct.unpack('<I4', rows, i * 4 + 1) * width
  redis.call('SETRANGE', KEYS[1], offset, string.sub(given, i * width + 1, (i + 1) * width))
end
redis.call('EXPIREAT', KEYS[1], ARGV[2])
local shadowFrom = 10 + 2 * tonumber(ARGV[9])
for i = 10, shadowFrom - 1, 2 do
  redis.call('HINCRBYFLOAT', KEYS[2], ARGV[i], ARGV[i + 1])
  redis.call('HINCRBYFLOAT', KEYS[3], ARGV[i], ARGV[i + 1])
  redis.call('HINCRBYFLOAT', KEYS[4], ARGV[i], ARGV[i + 1])
end
if ARGV[8] ~= '0' then
  for i = shadowFrom, #ARGV - 1, 2 do
    redis.call('HINCRBYFLOAT', KEYS[5], ARGV[i], ARGV[i + 1])
    redis.call('HINCRBYFLOAT', KEYS[6], ARGV[i], ARGV[i + 1])
  end
  redis.call('EXPIREAT', KEYS[5], ARGV[8])
  redis.call('EXPIREAT', KEYS[6], ARGV[8])
end
-- After the increments, which create a key that had gone: the job's counters last as long as its latest predictions.
if redis.call('EXPIRETIME', KEYS[2]) < tonumber(ARGV[2]) then redis.call('EXPIREAT', KEYS[2], ARGV[2]) end
redis.call('EXPIREAT', KEYS[3], ARGV[3])
redis.call('EXPIREAT', KEYS[4], ARGV[4])
return 1
`;
