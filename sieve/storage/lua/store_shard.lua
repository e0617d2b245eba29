-- A shard of a sharded refresh stores what it scored, once, and only while its refresh's plan lives: a
-- shard of a refresh that ended (published, failed, or its worker died and the plan expired) writes nothing.
-- KEYS: plan, scores. ARGV: ttl ms, then field, value pairs.
if redis.call('EXISTS', KEYS[1]) == 0 then return 'gone' end
if redis.call('EXISTS', KEYS[2]) == 1 then return 'done' end
redis.call('HSET', KEYS[2], unpack(ARGV, 2))
redis.call('PEXPIRE', KEYS[2], ARGV[1])
return 'ok'
