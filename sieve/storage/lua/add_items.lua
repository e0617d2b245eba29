-- Appends items to a pool, all or nothing: every check runs before the first write, so a refused call
-- leaves the pool exactly as it was.
-- KEYS: meta, ids, rows, pending, idem, idem_at, then the feature keys touched (one payload each).
-- ARGV: expected n_items, dim, m, max pool items, job prefix, pending ttl ms, idempotency key ('' = none),
--       body hash, idempotency ttl s, rows per chunk, max bytes of one key, values this call stores, max
--       values of the pool, the m ids as one JSON array, one payload per feature key.
-- The ids come as one JSON array rather than m arguments: packing and reading a hundred thousand
-- arguments cost more than the rest of the call.
local meta, ids_key, rows_key, pending, idem, idem_at = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local first_chunk = 7
if redis.call('EXISTS', meta) == 0 then return {'gone'} end
local replay = idem_lookup(idem, ARGV[7])
if replay then return {'replay', replay} end
local n = tonumber(redis.call('HGET', meta, 'n_items') or '0')
if n ~= tonumber(ARGV[1]) then return {'retry', tostring(n)} end
local dim = redis.call('HGET', meta, 'dim')
if dim and dim ~= '' and dim ~= ARGV[2] then return {'dim', dim} end
-- Readers find rows by the pool's rows per chunk: the caller must have cut the payloads by the same.
-- A pool stored before the field existed was cut at 65536 rows.
local chunk_rows = redis.call('HGET', meta, 'chunk_rows')
if not chunk_rows or chunk_rows == '' then
  if n == 0 then chunk_rows = ARGV[10] else chunk_rows = '65536' end
end
if chunk_rows ~= ARGV[10] then return {'retry', tostring(n)} end
local m = tonumber(ARGV[3])
if n + m > tonumber(ARGV[4]) then return {'full', tostring(n)} end
-- Values stored so far: pools stored before the field existed hold n x dim float32 values.
local values = tonumber(redis.call('HGET', meta, 'n_values') or '') or n * (tonumber(dim) or 0)
if values + tonumber(ARGV[12]) > tonumber(ARGV[13]) then return {'values', tostring(values)} end
local ids = cjson.decode(ARGV[14])
local first_payload = 15
local dups = {}
-- One HMGET per slice (below Lua's unpack limit) rather than one HEXISTS per id.
local step = 2000
for i = 1, m, step do
  local last = math.min(i + step - 1, m)
  local found = redis.call('HMGET', rows_key, unpack(ids, i, last))
  for j = 1, #found do
    if found[j] and #dups < 20 then dups[#dups + 1] = ids[i + j - 1] end
  end
  if #dups >= 20 then break end
end
if #dups > 0 then return {'dup', unpack(dups)} end
-- An append past Redis's limit on one string fails half-way through a script, after earlier writes.
for j = first_chunk, #KEYS do
  if redis.call('STRLEN', KEYS[j]) + #ARGV[first_payload + j - first_chunk] > tonumber(ARGV[11]) then
    return {'chunk', KEYS[j]}
  end
end
local by_id, by_row = {}, {}
for i = 0, m - 1 do
  local id = ids[i + 1]
  by_id[#by_id + 1] = id
  by_id[#by_id + 1] = n + i
  by_row[#by_row + 1] = n + i
  by_row[#by_row + 1] = id
end
hset_many(rows_key, by_id)
hset_many(ids_key, by_row)
for j = first_chunk, #KEYS do
  redis.call('APPEND', KEYS[j], ARGV[first_payload + j - first_chunk])
end
redis.call('HSET', meta, 'n_items', n + m, 'dim', ARGV[2], 'chunk_rows', chunk_rows,
  'n_values', values + tonumber(ARGV[12]))
local version = redis.call('HINCRBY', meta, 'version', 1)
local job_id = request_refresh(pending, ARGV[5], version, ARGV[6])
idem_store(idem, idem_at, ARGV[7], cjson.encode({hash = ARGV[8], version = version, job_id = job_id,
  n_items = n + m}), ARGV[9])
return {'ok', tostring(version), job_id, tostring(n + m)}
