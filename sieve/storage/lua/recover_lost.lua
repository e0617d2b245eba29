-- Asks again for a refresh whose job was lost after it was dequeued: the pool's pending mark names a job
-- that, by the caller's look at RQ, is neither waiting in a queue nor running (its worker died between
-- the dequeue and `claim`, or the job failed before it claimed, or it never reached the queue). A live
-- worker claims a job milliseconds after dequeuing it, so the job is declared lost only when two looks
-- at least ARGV[4] ms apart saw it so; the first look leaves the `lost` mark.
-- A look that finds the job waiting in its queue ends any earlier look's mark, so that a job enqueued during
-- one sweep and dequeued during the next is not taken for a lost one.
-- KEYS: pending, running, lost. ARGV: the job id, the new job id, pending ttl ms, grace ms, '1' when the
-- caller saw the job waiting in a queue. Returns 1 when the caller must enqueue the new job.
if redis.call('GET', KEYS[1]) ~= ARGV[1] or redis.call('EXISTS', KEYS[2]) == 1 or ARGV[5] == '1' then
  redis.call('DEL', KEYS[3])
  return 0
end
-- The mark lives as long as the pending job could, so that however long a sweep takes, the next look
-- still finds it and measures the time between the two.
local mark_ms = tonumber(ARGV[3])
if redis.call('GET', KEYS[3]) ~= ARGV[1] then
  redis.call('SET', KEYS[3], ARGV[1], 'PX', mark_ms)
  return 0
end
if mark_ms - redis.call('PTTL', KEYS[3]) < tonumber(ARGV[4]) then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
redis.call('DEL', KEYS[3])
return 1
