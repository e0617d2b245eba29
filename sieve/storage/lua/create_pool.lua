-- Creates a pool's meta and enters the pool in the indexes, unless its Idempotency-Key already made a pool
-- that still exists, or the tenant holds its most pools. The items and labels scripts of the same
-- transaction run against the new id, so when this refuses they find no pool and write nothing.
-- KEYS: new meta, every pool (set), the tenant's pools (sorted set), the tenant's create records (hash) and
--       their times (sorted set), the meta of the pool the key's record named when the caller read it.
-- ARGV: new pool id, idempotency key ('' = none), body hash, the pool the caller read in the record ('' =
--       none), most pools per tenant ('' = no cap), idempotency ttl s, then field, value, field, value...
local meta, every, tenant_pools, creates, creates_at, recorded_meta =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local pool_id, key, hash, read = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
if key ~= '' then
  local record = idem_lookup(creates, key)
  local recorded = ''
  if record then
    local stored = cjson.decode(record)
    if stored.hash ~= hash then return {'reused'} end
    recorded = stored.pool
  end
  -- Another create of this key got in since the caller read the record: it reads it again.
  if recorded ~= read then return {'retry'} end
  if recorded ~= '' and redis.call('EXISTS', recorded_meta) == 1 then return {'replay', recorded} end
end
if ARGV[5] ~= '' then
  local held = redis.call('ZCARD', tenant_pools)
  if held >= tonumber(ARGV[5]) then return {'full', tostring(held)} end
end
if redis.call('EXISTS', meta) == 1 then return {'exists'} end
redis.call('HSET', meta, unpack(ARGV, 7))
redis.call('SADD', every, pool_id)
redis.call('ZADD', tenant_pools, 0, pool_id)
idem_store(creates, creates_at, key, cjson.encode({hash = hash, pool = pool_id}), ARGV[6])
return {'ok'}
