-- Gives a pool made while auth was off (tenant '') to a tenant: its meta, the two tenants' indexes and
-- its Label Studio project's entry change together, so no request sees the pool in both or in neither.
-- KEYS: meta, the empty tenant's pools, the new tenant's pools, the pool's Label Studio link, the
--       Label Studio projects (hash). ARGV: pool id, tenant.
-- Returns 1 when adopted; 0 when the pool is gone or already has a tenant.
if redis.call('EXISTS', KEYS[1]) == 0 or (redis.call('HGET', KEYS[1], 'tenant') or '') ~= '' then return 0 end
redis.call('HSET', KEYS[1], 'tenant', ARGV[2])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[3], 0, ARGV[1])
local project_id = redis.call('HGET', KEYS[4], 'project_id')
if project_id and redis.call('HGET', KEYS[5], '/' .. project_id) == ARGV[1] then
  redis.call('HDEL', KEYS[5], '/' .. project_id)
  redis.call('HSETNX', KEYS[5], ARGV[2] .. '/' .. project_id, ARGV[1])
end
return 1
