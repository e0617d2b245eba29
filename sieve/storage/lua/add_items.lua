-- Appends items to a pool, all or nothing.
-- KEYS: meta, ids, rows, pending, then the feature chunks touched.
-- ARGV: expected n_items, dim, m, max pool items, job prefix, pending ttl ms, m ids, one payload per chunk.
local meta, ids_key, rows_key, pending = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
if redis.call('EXISTS', meta) == 0 then return {'gone'} end
local n = tonumber(redis.call('HGET', meta, 'n_items') or '0')
if n ~= tonumber(ARGV[1]) then return {'retry', tostring(n)} end
local dim = redis.call('HGET', meta, 'dim')
if dim and dim ~= '' and dim ~= ARGV[2] then return {'dim', dim} end
local m = tonumber(ARGV[3])
if n + m > tonumber(ARGV[4]) then return {'full', tostring(n)} end
local first = 7
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
for j = 5, #KEYS do
  redis.call('APPEND', KEYS[j], ARGV[first + m + j - 5])
end
redis.call('HSET', meta, 'n_items', n + m, 'dim', ARGV[2])
local version = redis.call('HINCRBY', meta, 'version', 1)
return {'ok', tostring(version), request_refresh(pending, ARGV[5], version, ARGV[6])}
