-- Serves the top of a precomputed ranking: walks it from the first position that may still be
-- unlabeled, skips items labeled since the ranking was built and items leased to someone else, leases
-- what it returns, and returns k items with their scores and probabilities. Cost O(k + skipped),
-- independent of the pool's size. Atomic, so no item is ever handed to two callers under live leases.
-- Returns status, the header, lease expiry (ms), the scores (<f8), the probabilities (<f4, k x classes),
-- then the k ids.
-- KEYS: meta, labeled, ids, proba, cursor, leases, lease owners, then rank and score keys of every strategy.
-- ARGV: k, strategy ('' = the pool's default), max positions to scan, lease ms (0 = no lease),
--       annotator ('' = anonymous), then every strategy name in KEYS order.
local meta, labeled, ids_key, proba, cursor, leases, owners =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local first_name = 6
local info = redis.call('HMGET', meta, 'strategy', 'cold_start', 'ranked_version', 'ranked_labels_version',
  'labels_version', 'version', 'model_version', 'model_classes', 'n_classes', 'n_items')
if not info[1] then return {'gone'} end
local strategy = ARGV[2]
if strategy == '' then strategy = info[1] end
local served = strategy
if info[2] == '1' then served = 'random' end
local slot = nil
for i = first_name, #ARGV do
  if ARGV[i] == served then slot = i - first_name + 1 end
end
local header = {strategy, info[2] or '1', info[3] or '', info[4] or '', info[5] or '0', info[6] or '0',
  info[7] or '', info[8] or ''}
-- A pool without items has nothing to rank: its (empty) answer is ready at once.
if not info[3] and info[10] == '0' then
  header[3], header[4] = header[6], header[5]
  local empty = {'ok', unpack(header)}
  for _ = 1, 3 do empty[#empty + 1] = '' end  -- no lease, no scores, no probabilities, no ids
  return empty
end
if not info[3] or not slot then return {'none', unpack(header)} end
local rank_key, score_key = KEYS[6 + 2 * slot], KEYS[7 + 2 * slot]
local k, max_scan, lease_ms, annotator = tonumber(ARGV[1]), tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
local n_classes = tonumber(info[9] or '0')

local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
-- Expired leases are dropped a few at a time, so the lease set stays as small as the live leases.
local expired = redis.call('ZRANGEBYSCORE', leases, '-inf', now, 'LIMIT', 0, 100)
if #expired > 0 then
  redis.call('ZREM', leases, unpack(expired))
  redis.call('HDEL', owners, unpack(expired))
end
local any_leases = redis.call('ZCARD', leases) > 0

local total = redis.call('STRLEN', rank_key) / 4
local start = tonumber(redis.call('HGET', cursor, served) or '0')
local pos, leading, skip_to = start, true, start
local rows, ids, scores, probas = {}, {}, {}, {}
local found = 0
local batch = math.max(k * 2, 64)
while found < k and pos < total and pos - start < max_scan do
  local last = math.min(pos + batch, total) - 1
  local bytes = redis.call('GETRANGE', rank_key, pos * 4, last * 4 + 3)
  local offset = 1
  while pos <= last and found < k do
    local row
    row, offset = struct.unpack('<I4', bytes, offset)
    if redis.call('GETBIT', labeled, row) == 1 then
      if leading then skip_to = pos + 1 end
    else
      leading = false
      local free = true
      if any_leases then
        local until_ms = redis.call('ZSCORE', leases, row)
        -- A live lease blocks everyone but its own named annotator, who gets the item again.
        if until_ms and tonumber(until_ms) > now then
          free = annotator ~= '' and redis.call('HGET', owners, row) == annotator
        end
      end
      if free then
        found = found + 1
        rows[found] = row
        ids[found] = redis.call('HGET', ids_key, row)
        scores[found] = redis.call('GETRANGE', score_key, pos * 8, pos * 8 + 7)
        if n_classes > 0 then
          probas[found] = redis.call('GETRANGE', proba, row * n_classes * 4, (row + 1) * n_classes * 4 - 1)
        end
      end
    end
    pos = pos + 1
  end
end
-- Items labeled at the head of the ranking stay labeled: later queries start after them.
if skip_to > start then redis.call('HSET', cursor, served, skip_to) end
local expires = ''
if lease_ms > 0 and found > 0 then
  expires = now + lease_ms
  local by_score, by_row = {}, {}
  for i = 1, found do
    by_score[#by_score + 1] = expires
    by_score[#by_score + 1] = rows[i]
    by_row[#by_row + 1] = rows[i]
    by_row[#by_row + 1] = annotator
  end
  redis.call('ZADD', leases, unpack(by_score))
  redis.call('HSET', owners, unpack(by_row))
end
-- Scores and probabilities come back as one binary string each, decoded in one go by the caller.
local out = {'ok', unpack(header)}
out[#out + 1] = tostring(expires)
out[#out + 1] = table.concat(scores)
out[#out + 1] = table.concat(probas)
for i = 1, found do out[#out + 1] = ids[i] end
return out
