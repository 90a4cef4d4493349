-- Admit `holder` for a user under the user's limit and the global cap, for the run `run_id`
-- that started at `run_started`. A holder already admitted is admitted again (expiry refreshed,
-- run replaced) unless the recorded run started later: then an old run's late reserve is
-- refused as `stale`. A holder left in another user's set (the course changed owner) moves.
-- Refused with the error `EPOCHLESS` while the epoch key is missing (state lost or never built).
-- KEYS: user zset, global zset, since hash, owner hash, run hash, epoch (one hash tag: one slot)
-- ARGV: user_id, limit, global_cap, holder, run_id, run_started, ttl_seconds, now ("" = TIME),
--       user key prefix
-- Returns {decision, user_count, global_count, holder1, since1, expires1, ...}.
local user_key, global_key, since_key, owner_key, run_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local user_id, holder, run_id = ARGV[1], ARGV[4], ARGV[5]
local limit, global_cap = tonumber(ARGV[2]), tonumber(ARGV[3])
local run_started, ttl = tonumber(ARGV[6]), tonumber(ARGV[7])
local now = clock(ARGV[8])
if redis.call('EXISTS', KEYS[6]) == 0 then return redis.error_reply(EPOCHLESS) end

prune(user_key, since_key, owner_key, run_key, now)
prune(global_key, since_key, owner_key, run_key, now)

local owner = redis.call('HGET', owner_key, holder)
if owner and owner ~= user_id then
  redis.call('ZREM', ARGV[9] .. owner, holder)
  redis.call('ZREM', global_key, holder)
  forget(holder, since_key, owner_key, run_key)
end

local decision = 'admitted'
local user_count = redis.call('ZCARD', user_key)
local global_count = redis.call('ZCARD', global_key)
if redis.call('ZSCORE', user_key, holder) then
  local started = recorded_run(run_key, holder)
  if started and started > run_started then
    decision = 'stale'
  end
elseif user_count >= limit then
  decision = 'user_limit'
elseif global_count >= global_cap then
  decision = 'global_limit'
else
  user_count, global_count = user_count + 1, global_count + 1
  redis.call('HSET', since_key, holder, now)
  redis.call('HSET', owner_key, holder, user_id)
end

if decision == 'admitted' then
  redis.call('ZADD', user_key, now + ttl, holder)
  redis.call('ZADD', global_key, now + ttl, holder)
  redis.call('HSET', run_key, holder, string.format('%.6f:%s', run_started, run_id))
end

local members = redis.call('ZRANGE', user_key, 0, -1, 'WITHSCORES')
return append_holders({decision, user_count, global_count}, members, since_key, now)
