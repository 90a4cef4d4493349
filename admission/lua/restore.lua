-- Put back the lease of a run that Temporal shows open (the reconciler, after Redis lost it),
-- with the expiry and admission time the run had. No limit applies: the run was admitted once.
-- A holder that already has a lease keeps it untouched (idempotent; never a newer run's).
-- KEYS: user zset, global zset, since hash, owner hash, run hash
-- ARGV: user_id, holder, run_id, run_started, expires_at, since
-- Returns 1 when the lease was restored, 0 when the holder already had one.
local user_key, global_key, since_key, owner_key, run_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local user_id, holder, run_id = ARGV[1], ARGV[2], ARGV[3]

if redis.call('ZSCORE', global_key, holder) then
  return 0
end
redis.call('ZADD', user_key, tonumber(ARGV[5]), holder)
redis.call('ZADD', global_key, tonumber(ARGV[5]), holder)
redis.call('HSET', since_key, holder, ARGV[6])
redis.call('HSET', owner_key, holder, user_id)
redis.call('HSET', run_key, holder, string.format('%.6f:%s', tonumber(ARGV[4]), run_id))
return 1
