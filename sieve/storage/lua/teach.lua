-- Records labels, all or nothing, appends them to the label log and bumps the versions. A label of the
-- 'eval' split goes to the evaluation items instead: set apart from queries and training for good.
-- KEYS: meta, rows, labels, labeled, class_counts, log, pending, leases, lease owners, returned, held, idem,
--       idem_at, eval, audit.
-- ARGV: m, label kind, job prefix, pending ttl ms, source, max classes, idempotency key ('' = none),
--       body hash, idempotency ttl s, a guard ('1' when the pool must have no label yet, a creation;
--       'n=<count>' when the pool must hold exactly count items, labels of the items added just before
--       in the same transaction; '' none), m ids, m JSON labels, m splits ('t' training, 'e' evaluation,
--       'd' none given: evaluation for an item a query served as an audit item, else training).
local meta, rows_key, labels_key, labeled, counts, log, pending, leases, owners, returned, held, idem, idem_at,
  eval, audit = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10],
  KEYS[11], KEYS[12], KEYS[13], KEYS[14], KEYS[15]
if redis.call('EXISTS', meta) == 0 then return {'gone'} end
local replay = idem_lookup(idem, ARGV[7])
if replay then return {'replay', replay} end
if ARGV[10] == '1' and redis.call('XLEN', log) > 0 then return {'conflict'} end
-- The items these labels came with were refused (or replayed): their labels are not taught either.
if ARGV[10]:sub(1, 2) == 'n=' and redis.call('HGET', meta, 'n_items') ~= ARGV[10]:sub(3) then return {'skipped'} end
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
local rows, missing = rows_of(rows_key, first, m)
if not rows then return {'missing', unpack(missing)} end
local splits, any_training = {}, false
for i = 1, m do
  splits[i] = ARGV[first + 2 * m + i - 1]
  if splits[i] == 'd' then
    splits[i] = redis.call('SISMEMBER', audit, rows[i]) == 1 and 'e' or 't'
  end
  -- An item stays in the split it was first labeled in: evaluation items must never be trained on.
  local other = labels_key
  if splits[i] == 't' then other, any_training = eval, true end
  if redis.call('HEXISTS', other, rows[i]) == 1 then return {'split', tostring(i - 1)} end
end
local new_classes, seen = 0, {}
for i = 1, m do
  local label = ARGV[first + m + i - 1]
  if splits[i] == 't' and not seen[label] and redis.call('HEXISTS', counts, label) == 0 then
    new_classes = new_classes + 1
    seen[label] = true
  end
end
if redis.call('HLEN', counts) + new_classes > tonumber(ARGV[6]) then return {'classes', ARGV[6]} end
local ids, labels, eval_ids = {}, {}, {}
for i = 1, m do
  local label = ARGV[first + m + i - 1]
  if splits[i] == 'e' then
    -- Audit items among the evaluation items: when all are, the estimate's source is 'audit'.
    if redis.call('HSET', eval, rows[i], label) == 1 and redis.call('SISMEMBER', audit, rows[i]) == 1 then
      redis.call('HINCRBY', meta, 'n_audit_eval', 1)
    end
    eval_ids[#eval_ids + 1] = ARGV[first + i - 1]
  else
    local old = redis.call('HGET', labels_key, rows[i])
    if old ~= label then
      if old and redis.call('HINCRBY', counts, old, -1) <= 0 then redis.call('HDEL', counts, old) end
      redis.call('HINCRBY', counts, label, 1)
      redis.call('HSET', labels_key, rows[i], label)
    end
  end
  redis.call('SETBIT', labeled, rows[i], 1)
  -- Teaching an item ends its lease, and it is no longer waiting to be handed out again.
  end_lease(leases, owners, held, rows[i])
  redis.call('SREM', returned, rows[i])
  ids[i] = ARGV[first + i - 1]
  labels[i] = label
end
-- n_labeled is kept here so that a query reads the budget's state with the fields it reads anyway.
redis.call('HSET', meta, 'label_kind', ARGV[2], 'n_labeled', redis.call('HLEN', labels_key),
  'n_eval', redis.call('HLEN', eval))
-- Evaluation labels change no model: they bump version only, and the next refresh re-evaluates.
local labels_version = tonumber(redis.call('HGET', meta, 'labels_version'))
if any_training then labels_version = redis.call('HINCRBY', meta, 'labels_version', 1) end
local version = redis.call('HINCRBY', meta, 'version', 1)
local entry = {'labels_version', labels_version, 'source', ARGV[5],
  'ids', cjson.encode(ids), 'labels', '[' .. table.concat(labels, ',') .. ']'}
if #eval_ids > 0 then
  entry[#entry + 1] = 'eval_ids'
  entry[#entry + 1] = cjson.encode(eval_ids)
end
redis.call('XADD', log, '*', unpack(entry))
local job_id = request_refresh(pending, ARGV[3], version, ARGV[4])
idem_store(idem, idem_at, ARGV[7], cjson.encode({hash = ARGV[8], labels_version = labels_version,
  version = version, job_id = job_id}), ARGV[9])
return {'ok', tostring(labels_version), tostring(version), job_id}
