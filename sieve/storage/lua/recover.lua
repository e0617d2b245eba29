-- Asks again for a refresh that was lost: the rankings are behind, yet no refresh is queued or running
-- (its worker died, or the API died between its change and its enqueue). A refresh that failed with an
-- error is left alone: the next change retries it, and a sweep does not loop on a failing model.
-- KEYS: meta, pending, running. ARGV: job id, pending ttl ms. Returns 1 when the caller must enqueue.
local info = redis.call('HMGET', KEYS[1], 'version', 'ranked_version', 'last_error')
if not info[1] then return 0 end
if tonumber(info[2] or '-1') >= tonumber(info[1]) then return 0 end
if info[3] and info[3] ~= '' then return 0 end
if redis.call('EXISTS', KEYS[2], KEYS[3]) > 0 then return 0 end
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
return 1
