-- Release `holder` while the lease belongs to `run_id` ("" = whichever run: the operator's
-- release), from the caller's set and from the set of the user recorded as its owner, so a
-- lease left under a previous owner is released too. A late release from an old run never
-- frees the next run's lease. Idempotent; no count can go negative. Prunes the caller's set.
-- KEYS: user zset, global zset, since hash, owner hash, run hash
-- ARGV: holder, run_id, now ("" = Redis TIME), user key prefix
-- Returns 1 when a live lease was released, else 0.
local user_key, global_key, since_key, owner_key, run_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local holder, run_id = ARGV[1], ARGV[2]
local now = clock(ARGV[3])

local _, recorded = recorded_run(run_key, holder)
if run_id ~= '' and recorded and recorded ~= run_id then
  prune(user_key, since_key, owner_key, run_key, now)
  return 0
end

local score = tonumber(redis.call('ZSCORE', global_key, holder))
local owner = redis.call('HGET', owner_key, holder)
redis.call('ZREM', user_key, holder)
if owner then
  redis.call('ZREM', ARGV[4] .. owner, holder)
end
redis.call('ZREM', global_key, holder)
forget(holder, since_key, owner_key, run_key)
prune(user_key, since_key, owner_key, run_key, now)

if score and score > now then
  return 1
end
return 0
