-- A running refresh proves it is alive: its running mark lives on only while it keeps beating, so a
-- killed worker's mark expires within one ttl and the pool's next refresh can start.
-- KEYS: running. ARGV: job id, ttl ms.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
