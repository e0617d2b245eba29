-- A refresh waiting for another refresh of its pool hands its turn to a new job at the back of the queue,
-- so that its worker can take other work meanwhile: the pending mark passes to the new job (changes keep
-- coalescing into it). Nothing happens unless the job still holds the mark and the pool is still busy.
-- KEYS: pending, running. ARGV: job id, new job id, pending ttl ms. Returns 1 when the caller must enqueue.
if redis.call('GET', KEYS[1]) ~= ARGV[1] or redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
