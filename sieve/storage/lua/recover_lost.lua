-- Asks again for a refresh whose job was lost after it was dequeued: the pool's pending mark names a job
-- that, by the caller's look at RQ, is neither waiting in a queue nor running (its worker died between
-- the dequeue and `claim`, or the job failed before it claimed, or it never reached the queue). A live
-- worker claims a job milliseconds after dequeuing it, so the job is declared lost only when two looks
-- at least ARGV[4] ms apart saw it so; the first look leaves the `lost` mark.
-- KEYS: pending, running, lost. ARGV: the lost job id, the new job id, pending ttl ms, grace ms.
-- Returns 1 when the caller must enqueue the new job.
if redis.call('GET', KEYS[1]) ~= ARGV[1] or redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('DEL', KEYS[3])
  return 0
end
local mark_ms = 10 * tonumber(ARGV[4])
if redis.call('GET', KEYS[3]) ~= ARGV[1] then
  redis.call('SET', KEYS[3], ARGV[1], 'PX', mark_ms)
  return 0
end
if mark_ms - redis.call('PTTL', KEYS[3]) < tonumber(ARGV[4]) then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
redis.call('DEL', KEYS[3])
return 1
