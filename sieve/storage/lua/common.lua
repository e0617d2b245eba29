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

-- Idempotency records: a request replayed with the same Idempotency-Key gets the answer its first run
-- stored, and the record is written in the same atomic step as the change it describes.
local function idem_lookup(idem, key)
  if key == '' then return false end
  return redis.call('HGET', idem, key)
end

local function idem_store(idem, idem_at, key, record, ttl_s)
  if key == '' then return end
  local now = tonumber(redis.call('TIME')[1])
  redis.call('HSET', idem, key, record)
  redis.call('ZADD', idem_at, now, key)
  -- Records past their time are dropped a hundred at a time, so the hash stays bounded.
  local old = redis.call('ZRANGEBYSCORE', idem_at, '-inf', now - tonumber(ttl_s), 'LIMIT', 0, 100)
  if #old > 0 then
    redis.call('ZREM', idem_at, unpack(old))
    redis.call('HDEL', idem, unpack(old))
  end
end

-- HSET with many fields, in slices that stay below Lua's unpack limit.
local function hset_many(key, flat)
  local step = 2000
  for i = 1, #flat, step do
    redis.call('HSET', key, unpack(flat, i, math.min(i + step - 1, #flat)))
  end
end

-- Ends the lease on a row, if any, and forgets its owner. Returns whether a lease was there.
local function end_lease(leases, owners, held, row)
  local owner = redis.call('HGET', owners, row)
  if owner then
    redis.call('HDEL', owners, row)
    if owner ~= '' then redis.call('ZREM', held, owner .. '\0' .. row) end
  end
  return redis.call('ZREM', leases, row) == 1
end

-- The rows of ARGV[first .. first + m - 1], item ids; when some are not in the pool, nil and (up to 20 of)
-- those ids, so that a script can refuse the whole call before changing anything.
local function rows_of(rows_key, first, m)
  local rows, missing = {}, {}
  for i = 1, m do
    local row = redis.call('HGET', rows_key, ARGV[first + i - 1])
    if not row then
      missing[#missing + 1] = ARGV[first + i - 1]
      if #missing >= 20 then break end
    end
    rows[i] = row
  end
  if #missing > 0 then return nil, missing end
  return rows
end
