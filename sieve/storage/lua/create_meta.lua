-- Creates a pool's meta unless the pool exists: an idempotent create replayed under the same id
-- changes nothing, and the items and labels scripts of the same transaction then refuse as well.
-- KEYS: meta. ARGV: field, value, field, value...
if redis.call('EXISTS', KEYS[1]) == 1 then return 'exists' end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 'ok'
