-- Enters a pool made before tenants had indexes in its tenant's index, if it still exists and is the
-- tenant's: a delete running at the same time cannot leave it listed.
-- KEYS: meta, the tenant's pools. ARGV: pool id, tenant.
if (redis.call('HGET', KEYS[1], 'tenant') or false) ~= ARGV[2] then return 0 end
return redis.call('ZADD', KEYS[2], 0, ARGV[1])
