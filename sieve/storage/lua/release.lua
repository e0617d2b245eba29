-- Gives leased items back early, so that the next query may hand them out again.
-- KEYS: meta, rows, labeled, leases, lease owners, returned, held. ARGV: annotator ('' = any lease), then ids.
-- Returns {'ok', released count} or {'missing', ids...} when an id is not in the pool (nothing released).
local meta, rows_key, labeled, leases, owners, returned, held =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
if redis.call('EXISTS', meta) == 0 then return {'gone'} end
local rows, missing = rows_of(rows_key, 2, #ARGV - 1)
if not rows then return {'missing', unpack(missing)} end
local released = 0
for _, row in ipairs(rows) do
  -- A named annotator releases only its own leases.
  if ARGV[1] == '' or redis.call('HGET', owners, row) == ARGV[1] then
    if end_lease(leases, owners, held, row) then
      released = released + 1
      -- Behind the rankings' frontier now: the next query finds it among the returned items.
      if redis.call('GETBIT', labeled, row) == 0 then redis.call('SADD', returned, row) end
    end
  end
end
return {'ok', tostring(released)}
