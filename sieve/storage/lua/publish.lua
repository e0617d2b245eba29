-- Stores a refresh's model, probabilities and rankings, unless newer ones are already there.
-- KEYS: meta, model, proba, running, cursor, returned, then rank and score keys of every strategy
--       (scores by row).
-- ARGV: version, labels version, model version, model classes JSON, n classes, model blob ('' keeps the
--       current one), proba blob, n ranked, job id, finished at, duration, cold start, the ranked
--       strategies (comma-separated), then one blob per rank or score key ('' for a strategy not ranked).
local meta, model, proba, running, cursor, returned = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
if redis.call('EXISTS', meta) == 0 then return 'gone' end
if redis.call('GET', running) == ARGV[9] then redis.call('DEL', running) end
local ranked = tonumber(redis.call('HGET', meta, 'ranked_version') or '-1')
if ranked >= tonumber(ARGV[1]) then return 'stale' end
if ARGV[3] == '' then
  redis.call('DEL', model, proba)
else
  if ARGV[6] ~= '' then redis.call('SET', model, ARGV[6]) end
  redis.call('SET', proba, ARGV[7])
end
local fields = {'ranked_version', ARGV[1], 'ranked_labels_version', ARGV[2], 'model_version', ARGV[3],
  'model_classes', ARGV[4], 'n_classes', ARGV[5], 'n_ranked', ARGV[8], 'last_finished_at', ARGV[10],
  'last_duration_s', ARGV[11], 'cold_start', ARGV[12], 'ranked_strategies', ARGV[13], 'last_error', ''}
for j = 7, #KEYS do
  if ARGV[7 + j] == '' then redis.call('DEL', KEYS[j]) else redis.call('SET', KEYS[j], ARGV[7 + j]) end
end
redis.call('HSET', meta, unpack(fields))
-- A new ranking holds every unlabeled item: its walk starts from the top, and finds returned items again.
redis.call('DEL', cursor, returned)
return 'ok'
