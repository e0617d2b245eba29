-- Asks that a pool rank one more strategy from now on: records it among the pool's wanted strategies,
-- counts that as a change (the version goes up) and requests a refresh. Asking again changes nothing.
-- KEYS: meta, pending. ARGV: strategy, job prefix, pending ttl ms.
-- Returns {'ok', job id to enqueue ('' = none)} or {'gone'}.
local meta, pending = KEYS[1], KEYS[2]
if redis.call('EXISTS', meta) == 0 then return {'gone'} end
local wanted = redis.call('HGET', meta, 'wanted') or ''
local job_id = ''
if redis.call('HGET', meta, 'strategy') ~= ARGV[1]
    and not string.find(',' .. wanted .. ',', ',' .. ARGV[1] .. ',', 1, true) then
  if wanted == '' then wanted = ARGV[1] else wanted = wanted .. ',' .. ARGV[1] end
  redis.call('HSET', meta, 'wanted', wanted)
  local version = redis.call('HINCRBY', meta, 'version', 1)
  job_id = request_refresh(pending, ARGV[2], version, ARGV[3])
end
return {'ok', job_id}
