-- A refresh ends without publishing: records its error, if any (never recreating a deleted pool),
-- and clears its running mark.
-- KEYS: meta, running. ARGV: job id, error message ('' when there was nothing to do).
if redis.call('EXISTS', KEYS[1]) == 0 then return 'gone' end
if ARGV[2] ~= '' then redis.call('HSET', KEYS[1], 'last_error', ARGV[2]) end
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
return 'ok'
