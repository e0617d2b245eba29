-- A refresh job starts: it takes the pending mark (so later changes queue a new job) and marks itself running.
-- KEYS: meta, pending, running. ARGV: job id, running ttl ms.
if redis.call('EXISTS', KEYS[1]) == 0 then return 'gone' end
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
redis.call('SET', KEYS[3], ARGV[1], 'PX', ARGV[2])
return 'ok'
