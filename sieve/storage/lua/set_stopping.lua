-- Replaces a pool's stopping policy, with the model rules' recommendation recomputed under it, as one
-- change: the version goes up and a refresh is requested. A refresh already running reviews its model
-- under the old policy and may publish after this; the one requested here runs after it and publishes
-- under the new one. Setting the policy the pool already has changes nothing and costs no refresh.
-- KEYS: meta, pending. ARGV: policy JSON, budget ('' = none), enforce budget ('1' or '0'), model rules'
-- recommendation JSON, job prefix, pending ttl ms, audit rate.
-- Returns {'ok', job id to enqueue ('' = none)} or {'gone'}.
local meta, pending = KEYS[1], KEYS[2]
if redis.call('EXISTS', meta) == 0 then return {'gone'} end
if redis.call('HGET', meta, 'stopping') == ARGV[1] then return {'ok', ''} end
redis.call('HSET', meta, 'stopping', ARGV[1], 'budget', ARGV[2], 'enforce_budget', ARGV[3], 'stop', ARGV[4],
  'audit_rate', ARGV[7])
local version = redis.call('HINCRBY', meta, 'version', 1)
return {'ok', request_refresh(pending, ARGV[5], version, ARGV[6])}
