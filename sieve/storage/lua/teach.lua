-- Records labels, all or nothing, appends them to the label log and bumps the versions.
-- KEYS: meta, rows, labels, labeled, class_counts, log, pending, leases, lease owners, returned, held, idem,
--       idem_at.
-- ARGV: m, label kind, job prefix, pending ttl ms, source, max classes, idempotency key ('' = none),
--       body hash, idempotency ttl s, expected labels_version ('' = any), m ids, m JSON labels.
local meta, rows_key, labels_key, labeled, counts, log, pending, leases, owners, returned, held, idem, idem_at =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10], KEYS[11],
  KEYS[12], KEYS[13]
if redis.call('EXISTS', meta) == 0 then return {'gone'} end
local replay = idem_lookup(idem, ARGV[7])
if replay then return {'replay', replay} end
if ARGV[10] ~= '' and redis.call('HGET', meta, 'labels_version') ~= ARGV[10] then return {'conflict'} end
local kind = redis.call('HGET', meta, 'label_kind')
if kind and kind ~= '' and kind ~= ARGV[2] then return {'kind', kind} end
local m = tonumber(ARGV[1])
local first = 11
-- A pool with a closed list of classes refuses any other label, naming the first one.
local allowed = redis.call('HGET', meta, 'allowed_labels')
if not allowed then
  -- A pool stored before this field existed: its classes re-encoded here match for plain labels.
  local classes = redis.call('HGET', meta, 'classes')
  if classes and classes ~= '' then
    local encoded = {}
    for i, c in ipairs(cjson.decode(classes)) do encoded[i] = cjson.encode(c) end
    allowed = cjson.encode(encoded)
  end
end
if allowed and allowed ~= '' then
  local ok = {}
  for _, label in ipairs(cjson.decode(allowed)) do ok[label] = true end
  for i = 1, m do
    if not ok[ARGV[first + m + i - 1]] then return {'not_allowed', tostring(i - 1), allowed} end
  end
end
local rows, missing = {}, {}
for i = 1, m do
  local row = redis.call('HGET', rows_key, ARGV[first + i - 1])
  if not row then
    missing[#missing + 1] = ARGV[first + i - 1]
    if #missing >= 20 then break end
  end
  rows[i] = row
end
if #missing > 0 then return {'missing', unpack(missing)} end
local new_classes, seen = 0, {}
for i = 1, m do
  local label = ARGV[first + m + i - 1]
  if not seen[label] and redis.call('HEXISTS', counts, label) == 0 then new_classes = new_classes + 1 end
  seen[label] = true
end
if redis.call('HLEN', counts) + new_classes > tonumber(ARGV[6]) then return {'classes', ARGV[6]} end
local ids, labels = {}, {}
for i = 1, m do
  local label = ARGV[first + m + i - 1]
  local old = redis.call('HGET', labels_key, rows[i])
  if old ~= label then
    if old and redis.call('HINCRBY', counts, old, -1) <= 0 then redis.call('HDEL', counts, old) end
    redis.call('HINCRBY', counts, label, 1)
    redis.call('HSET', labels_key, rows[i], label)
  end
  redis.call('SETBIT', labeled, rows[i], 1)
  -- Teaching an item ends its lease, and it is no longer waiting to be handed out again.
  end_lease(leases, owners, held, rows[i])
  redis.call('SREM', returned, rows[i])
  ids[i] = ARGV[first + i - 1]
  labels[i] = label
end
redis.call('HSET', meta, 'label_kind', ARGV[2])
local labels_version = redis.call('HINCRBY', meta, 'labels_version', 1)
local version = redis.call('HINCRBY', meta, 'version', 1)
redis.call('XADD', log, '*', 'labels_version', labels_version, 'source', ARGV[5],
  'ids', cjson.encode(ids), 'labels', '[' .. table.concat(labels, ',') .. ']')
local job_id = request_refresh(pending, ARGV[3], version, ARGV[4])
idem_store(idem, idem_at, ARGV[7], cjson.encode({hash = ARGV[8], labels_version = labels_version,
  version = version, job_id = job_id}), ARGV[9])
return {'ok', tostring(labels_version), tostring(version), job_id}
