-- Removes labels, all or nothing, appends the removal to the label log and bumps the versions.
-- Items go back among the unlabeled; the next refresh, which this asks for, ranks them again.
-- Evaluation items are not training labels: unlabeling one changes nothing.
-- KEYS: meta, rows, labels, labeled, class_counts, log, pending.
-- ARGV: m, job prefix, pending ttl ms, source, m ids.
local meta, rows_key, labels_key, labeled, counts, log, pending =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
if redis.call('EXISTS', meta) == 0 then return {'gone'} end
local m = tonumber(ARGV[1])
local first = 5
local rows, missing = rows_of(rows_key, first, m)
if not rows then return {'missing', unpack(missing)} end
local ids = {}
for i = 1, m do
  local old = redis.call('HGET', labels_key, rows[i])
  if old then
    if redis.call('HINCRBY', counts, old, -1) <= 0 then redis.call('HDEL', counts, old) end
    redis.call('HDEL', labels_key, rows[i])
    redis.call('SETBIT', labeled, rows[i], 0)
    ids[#ids + 1] = ARGV[first + i - 1]
  end
end
if #ids == 0 then
  -- Nothing was labeled: nothing changes, so no version moves and no refresh is needed.
  return {'ok', '0', redis.call('HGET', meta, 'labels_version'), redis.call('HGET', meta, 'version'), ''}
end
-- The budget's label count, which the query script reads with the versions.
redis.call('HSET', meta, 'n_labeled', redis.call('HLEN', labels_key))
local labels_version = redis.call('HINCRBY', meta, 'labels_version', 1)
local version = redis.call('HINCRBY', meta, 'version', 1)
-- A null label in the log: the item was unlabeled at this labels_version.
local nulls = {}
for i = 1, #ids do nulls[i] = 'null' end
redis.call('XADD', log, '*', 'labels_version', labels_version, 'source', ARGV[4],
  'ids', cjson.encode(ids), 'labels', '[' .. table.concat(nulls, ',') .. ']')
local job_id = request_refresh(pending, ARGV[2], version, ARGV[3])
return {'ok', tostring(#ids), tostring(labels_version), tostring(version), job_id}
