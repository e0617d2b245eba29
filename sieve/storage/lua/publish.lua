-- Stores a refresh's model, probabilities, rankings and history entry, unless newer ones are there.
-- KEYS: meta, model, proba, running, cursor, returned, history, stop set, stop labels, then rank and score
--       keys of every strategy (scores by row).
-- ARGV: version, labels version, model version, model classes JSON, n classes, model blob ('' keeps the
--       current one), proba blob, n ranked, job id, finished at, duration, cold start, the ranked
--       strategies (comma-separated), history entry JSON, model-rules stop recommendation JSON, stop set
--       rows (kept once chosen), stop-set predictions JSON, the model's accuracy estimate JSON ('null'
--       without one; the last five '' in cold start), then one blob per rank or score key ('' for a
--       strategy not ranked).
local meta, model, proba, running, cursor, returned, history, stop_set, stop_labels =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9]
local first_ranking_key, first_blob = 10, 19
if redis.call('EXISTS', meta) == 0 then return 'gone' end
if redis.call('GET', running) == ARGV[9] then redis.call('DEL', running) end
local ranked = tonumber(redis.call('HGET', meta, 'ranked_version') or '-1')
if ranked >= tonumber(ARGV[1]) then return 'stale' end
if ARGV[3] == '' then
  redis.call('DEL', model, proba)
  redis.call('HDEL', meta, 'estimate')
else
  if ARGV[6] ~= '' then redis.call('SET', model, ARGV[6]) end
  redis.call('SET', proba, ARGV[7])
end
local fields = {'ranked_version', ARGV[1], 'ranked_labels_version', ARGV[2], 'model_version', ARGV[3],
  'model_classes', ARGV[4], 'n_classes', ARGV[5], 'n_ranked', ARGV[8], 'last_finished_at', ARGV[10],
  'last_duration_s', ARGV[11], 'cold_start', ARGV[12], 'ranked_strategies', ARGV[13], 'last_error', ''}
if ARGV[14] ~= '' then
  -- One entry per model version: a refresh that reused the model (new items only) rewrites its entry.
  redis.call('HSET', history, ARGV[3], ARGV[14])
  fields[#fields + 1] = 'stop'
  fields[#fields + 1] = ARGV[15]
  -- The latest model's estimate beside its stop, so that a pool's status reads the meta alone.
  fields[#fields + 1] = 'estimate'
  fields[#fields + 1] = ARGV[18]
  -- The stop set is chosen once and kept, so that every model is compared on the same rows.
  redis.call('SET', stop_set, ARGV[16], 'NX')
  redis.call('SET', stop_labels, ARGV[17])
end
for j = first_ranking_key, #KEYS do
  local blob = ARGV[first_blob + j - first_ranking_key]
  if blob == '' then redis.call('DEL', KEYS[j]) else redis.call('SET', KEYS[j], blob) end
end
redis.call('HSET', meta, unpack(fields))
-- A new ranking holds every unlabeled item: its walk starts from the top, and finds returned items again.
redis.call('DEL', cursor, returned)
return 'ok'
