-- Appends items to a pool, all or nothing.
-- KEYS: meta, ids, rows, pending, idem, idem_at, then the feature chunks touched.
-- ARGV: expected n_items, dim, m, max pool items, job prefix, pending ttl ms, idempotency key ('' = none),
--       body hash, idempotency ttl s, m ids, one payload per chunk.
local meta, ids_key, rows_key, pending, idem, idem_at = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local first_chunk = 7
if redis.call('EXISTS', meta) == 0 then return {'gone'} end
local replay = idem_lookup(idem, ARGV[7])
if replay then return {'replay', replay} end
local n = tonumber(redis.call('HGET', meta, 'n_items') or '0')
if n ~= tonumber(ARGV[1]) then return {'retry', tostring(n)} end
local dim = redis.call('HGET', meta, 'dim')
if dim and dim ~= '' and dim ~= ARGV[2] then return {'dim', dim} end
local m = tonumber(ARGV[3])
if n + m > tonumber(ARGV[4]) then return {'full', tostring(n)} end
local first = 10
local dups = {}
for i = first, first + m - 1 do
  if redis.call('HEXISTS', rows_key, ARGV[i]) == 1 then
    dups[#dups + 1] = ARGV[i]
    if #dups >= 20 then break end
  end
end
if #dups > 0 then return {'dup', unpack(dups)} end
local by_id, by_row = {}, {}
for i = 0, m - 1 do
  local id = ARGV[first + i]
  by_id[#by_id + 1] = id
  by_id[#by_id + 1] = n + i
  by_row[#by_row + 1] = n + i
  by_row[#by_row + 1] = id
end
hset_many(rows_key, by_id)
hset_many(ids_key, by_row)
for j = first_chunk, #KEYS do
  redis.call('APPEND', KEYS[j], ARGV[first + m + j - first_chunk])
end
redis.call('HSET', meta, 'n_items', n + m, 'dim', ARGV[2])
local version = redis.call('HINCRBY', meta, 'version', 1)
local job_id = request_refresh(pending, ARGV[5], version, ARGV[6])
idem_store(idem, idem_at, ARGV[7], cjson.encode({hash = ARGV[8], version = version, job_id = job_id,
  n_items = n + m}), ARGV[9])
return {'ok', tostring(version), job_id, tostring(n + m)}
