-- Shared by the scripts that change a pool: asks for one refresh job unless one is already queued.
-- The pending key holds the id of the queued job; the job deletes it when it starts, so changes made
-- while it runs queue exactly one more job (coalescing without ever losing a change).
local function request_refresh(pending_key, job_prefix, version, ttl_ms)
  local job_id = job_prefix .. version
  if redis.call('SET', pending_key, job_id, 'NX', 'PX', ttl_ms) then
    return job_id
  end
  return ''
end

-- HSET with many fields, in slices that stay below Lua's unpack limit.
local function hset_many(key, flat)
  local step = 2000
  for i = 1, #flat, step do
    redis.call('HSET', key, unpack(flat, i, math.min(i + step - 1, #flat)))
  end
end
