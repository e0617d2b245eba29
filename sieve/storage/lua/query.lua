-- Serves the top of a precomputed ranking and leases what it returns, atomically, so no item is ever
-- handed to two callers under live leases.
--
-- Each strategy keeps a frontier (the cursor): every position before it was labeled or handed out under a
-- lease. Items whose lease ended unlabeled (expired or released) wait in the returned set; a named
-- annotator's live leases are in the held index. The answer is the best k of three small lists, merged
-- by score: the returned items, the annotator's own leased items (they get them again), and the next
-- free items from the frontier on. So a query costs O(k + returned + own leases), whatever the pool's
-- size and however many annotators hold leases at the head of the ranking.
--
-- A pool with an audit rate r also hands out audit items: of a query's k slots, floor((s + k) r) -
-- floor(s r) (s: slots served before, core/audit.py) are the next free rows of the random ranking (a
-- seeded uniform order, never a model's), walked from a cursor of their own; they are leased like any
-- other, remembered in the audit set, and flagged in the answer.
--
-- Returns status ('ok'; 'none' before the first ranking; 'unranked' for a strategy without a ranking),
-- the header (versions, classes, the stored stop recommendation, n_labeled, budget), lease expiry (ms),
-- the scores (<f8), the probabilities (<f4, k x classes), the audit flags ('1' or '0' per item), then
-- the k ids; or {'spent', n_labeled, budget} when the pool enforces a label budget that is spent.
-- KEYS: meta, labeled, ids, proba, cursor, leases, lease owners, returned, held, audit, then rank and
--       score keys of every strategy.
-- ARGV: k, strategy ('' = the pool's default), max positions to scan, lease ms (0 = no lease),
--       annotator ('' = anonymous), '1' to mix in audit items ('0': a poll), then every strategy name in
--       KEYS order.
local meta, labeled, ids_key, proba, cursor, leases, owners, returned, held, audit =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10]
local first_rank_key, first_name = 11, 7
local info = redis.call('HMGET', meta, 'strategy', 'cold_start', 'ranked_version', 'ranked_labels_version',
  'labels_version', 'version', 'model_version', 'model_classes', 'n_classes', 'n_items', 'ranked_strategies',
  'stop', 'n_labeled', 'budget', 'enforce_budget', 'audit_rate', 'audit_served')
if not info[1] then return {'gone'} end
local n_labeled, budget = info[13] or '0', info[14] or ''
-- A pool that enforces its budget hands out nothing more once the budget is spent.
if info[15] == '1' and budget ~= '' and tonumber(n_labeled) >= tonumber(budget) then
  return {'spent', n_labeled, budget}
end
local strategy = ARGV[2]
if strategy == '' then strategy = info[1] end
local served, ranked = strategy, info[11]
-- Rankings stored before each strategy had its own cold-start order: random served them all.
if not ranked and info[2] == '1' then served = 'random' end
local slot, random_slot = nil, nil
for i = first_name, #ARGV do
  if ARGV[i] == served then slot = i - first_name + 1 end
  if ARGV[i] == 'random' then random_slot = i - first_name + 1 end
end
local header = {strategy, info[2] or '1', info[3] or '', info[4] or '', info[5] or '0', info[6] or '0',
  info[7] or '', info[8] or '', info[12] or '', n_labeled, budget}
-- A pool without items has nothing to rank: its (empty) answer is ready at once.
if not info[3] and info[10] == '0' then
  header[3], header[4] = header[6], header[5]
  local empty = {'ok', unpack(header)}
  for _ = 1, 4 do empty[#empty + 1] = '' end  -- no lease, no scores, no probabilities, no flags, no ids
  return empty
end
if not info[3] or not slot then return {'none', unpack(header)} end
-- A strategy this pool has not used yet: the caller asks for it to be ranked.
if ranked and not string.find(',' .. ranked .. ',', ',' .. served .. ',', 1, true) then
  return {'unranked', unpack(header)}
end
local rank_key, score_key = KEYS[first_rank_key + 2 * (slot - 1)], KEYS[first_rank_key + 2 * slot - 1]
local k, max_scan, lease_ms, annotator = tonumber(ARGV[1]), tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
local n_classes = tonumber(info[9] or '0')

local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)

-- Leases that ended put their (still unlabeled) items back, a bounded number per query.
local expired = redis.call('ZRANGEBYSCORE', leases, '-inf', now, 'LIMIT', 0, 1000)
for _, row in ipairs(expired) do
  end_lease(leases, owners, held, row)
  if redis.call('GETBIT', labeled, row) == 0 then redis.call('SADD', returned, row) end
end
local any_leases = redis.call('ZCARD', leases) > 0

local function lease_until(row)
  if not any_leases then return nil end
  local until_ms = redis.call('ZSCORE', leases, row)
  if until_ms and tonumber(until_ms) > now then return until_ms end
  return nil
end

-- Scores are stored by row, so items from every list compare on one scale.
local function score_of(row)
  local bytes = redis.call('GETRANGE', score_key, row * 8, row * 8 + 7)
  if #bytes < 8 then return -math.huge, struct.pack('<d', -math.huge) end
  return struct.unpack('<d', bytes), bytes
end

-- Audit items first, so that the strategy's lists below pass over them.
local audits, taken = {}, {}
local audit_rate = tonumber(info[16] or '0') or 0
if ARGV[6] == '1' and audit_rate > 0 and random_slot and k > 0 then
  local audit_served = tonumber(info[17] or '0')
  local wanted = math.min(k, math.floor((audit_served + k) * audit_rate) - math.floor(audit_served * audit_rate))
  redis.call('HSET', meta, 'audit_served', audit_served + k)
  local random_key = KEYS[first_rank_key + 2 * (random_slot - 1)]
  local total = redis.call('STRLEN', random_key) / 4
  local start = tonumber(redis.call('HGET', cursor, 'audit') or '0')
  local pos, first_free = start, nil
  while #audits < wanted and pos < total and pos - start < max_scan do
    local row = struct.unpack('<I4', redis.call('GETRANGE', random_key, pos * 4, pos * 4 + 3))
    if redis.call('GETBIT', labeled, row) == 0 and not lease_until(row) then
      local value, bytes = score_of(row)
      audits[#audits + 1] = {row = row, value = value, bytes = bytes, walk = false, audit = true}
      taken[row] = true
      first_free = first_free or pos
    end
    pos = pos + 1
  end
  -- Without a lease the same rows stay first in line, as the strategy's own do.
  local frontier = pos
  if lease_ms <= 0 and first_free then frontier = first_free end
  if frontier > start then redis.call('HSET', cursor, 'audit', frontier) end
  for _, a in ipairs(audits) do redis.call('SADD', audit, a.row) end
end
local k_strategy = k - #audits

local candidates = {}
local function add(row, from_walk, pos)
  if taken[row] then return false end
  local value, bytes = score_of(row)
  candidates[#candidates + 1] = {row = row, value = value, bytes = bytes, walk = from_walk, pos = pos}
  return true
end

if redis.call('SCARD', returned) > 0 then
  for _, member in ipairs(redis.call('SMEMBERS', returned)) do
    local row = tonumber(member)
    if redis.call('GETBIT', labeled, row) == 1 or lease_until(row) then
      redis.call('SREM', returned, member)  -- labeled or leased again since: no longer returned
    else
      add(row, false)
    end
  end
end

if annotator ~= '' and any_leases then
  local prefix = annotator .. '\0'
  for _, member in ipairs(redis.call('ZRANGEBYLEX', held, '[' .. prefix, '(' .. annotator .. '\1')) do
    local row = tonumber(string.sub(member, #prefix + 1))
    if row and lease_until(row) and redis.call('HGET', owners, row) == annotator then
      add(row, false)
    else
      redis.call('ZREM', held, member)
    end
  end
end

-- The next k free items from the frontier on; the positions skipped over are labeled or leased.
local total = redis.call('STRLEN', rank_key) / 4
local start = tonumber(redis.call('HGET', cursor, served) or '0')
local pos, found, first_free = start, 0, nil
local batch = math.max(k * 2, 64)
while found < k_strategy and pos < total and pos - start < max_scan do
  local last = math.min(pos + batch, total) - 1
  local bytes = redis.call('GETRANGE', rank_key, pos * 4, last * 4 + 3)
  local offset = 1
  while pos <= last and found < k_strategy do
    local row
    row, offset = struct.unpack('<I4', bytes, offset)
    if redis.call('GETBIT', labeled, row) == 0 and not lease_until(row) and add(row, true, pos) then
      found = found + 1
      first_free = first_free or pos
    end
    pos = pos + 1
  end
end

-- Highest score first; equal scores in row order.
local function higher_first(a, b)
  if a.value ~= b.value then return a.value > b.value end
  return a.row < b.row
end
table.sort(candidates, higher_first)
local chosen = {}
for i = 1, math.min(k_strategy, #candidates) do chosen[i] = candidates[i] end
if #audits > 0 then
  for _, a in ipairs(audits) do chosen[#chosen + 1] = a end
  table.sort(chosen, higher_first)
end

-- The frontier moves over what is now labeled or leased: with a lease, up to the first free item from
-- the walk that was not chosen; without one, only up to the first free item.
local frontier = pos
if lease_ms > 0 then
  for i = k_strategy + 1, #candidates do
    if candidates[i].walk and candidates[i].pos < frontier then frontier = candidates[i].pos end
  end
elseif first_free then
  frontier = first_free
end
if frontier > start then redis.call('HSET', cursor, served, frontier) end

local expires = ''
if lease_ms > 0 and #chosen > 0 then
  expires = now + lease_ms
  local by_score, by_row, by_owner = {}, {}, {}
  for _, c in ipairs(chosen) do
    by_score[#by_score + 1] = expires
    by_score[#by_score + 1] = c.row
    by_row[#by_row + 1] = c.row
    by_row[#by_row + 1] = annotator
    if not c.walk then redis.call('SREM', returned, c.row) end  -- (audit items may be among them too)
    if annotator ~= '' then
      by_owner[#by_owner + 1] = 0
      by_owner[#by_owner + 1] = annotator .. '\0' .. c.row
    end
  end
  redis.call('ZADD', leases, unpack(by_score))
  redis.call('HSET', owners, unpack(by_row))
  if #by_owner > 0 then redis.call('ZADD', held, unpack(by_owner)) end
end

-- Scores and probabilities come back as one binary string each, decoded in one go by the caller.
local out = {'ok', unpack(header)}
out[#out + 1] = tostring(expires)
local scores, probas = {}, {}
for i, c in ipairs(chosen) do
  scores[i] = c.bytes
  if n_classes > 0 then
    probas[i] = redis.call('GETRANGE', proba, c.row * n_classes * 4, (c.row + 1) * n_classes * 4 - 1)
  end
end
out[#out + 1] = table.concat(scores)
out[#out + 1] = table.concat(probas)
local flags, rows = {}, {}
local any_audit = redis.call('SCARD', audit) > 0
for i, c in ipairs(chosen) do
  flags[i] = (c.audit or (any_audit and redis.call('SISMEMBER', audit, c.row) == 1)) and '1' or '0'
  rows[i] = c.row
end
out[#out + 1] = table.concat(flags)
if #rows > 0 then
  for _, item_id in ipairs(redis.call('HMGET', ids_key, unpack(rows))) do out[#out + 1] = item_id end
end
return out
