-- A refresh job starts. If another refresh of the pool is running, this one waits ('busy'), or gives
-- way to a newer queued job ('covered'); it keeps the pending mark meanwhile, so changes made in the
-- meantime still coalesce into it. Otherwise it takes the pending mark (so later changes queue a new
-- job) and marks itself running.
-- KEYS: meta, pending, running. ARGV: job id, running ttl ms.
if redis.call('EXISTS', KEYS[1]) == 0 then return 'gone' end
local running = redis.call('GET', KEYS[3])
local pending = redis.call('GET', KEYS[2])
if running and running ~= ARGV[1] then
  if pending and pending ~= ARGV[1] then return 'covered' end
  return 'busy'
end
if pending == ARGV[1] then redis.call('DEL', KEYS[2]) end
redis.call('SET', KEYS[3], ARGV[1], 'PX', ARGV[2])
return 'ok'
