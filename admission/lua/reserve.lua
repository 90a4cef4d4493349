-- Admit `holder` for a user under the user's limit and the global cap.
-- KEYS: user zset, global zset, since hash, owner hash (one hash tag, so one slot)
-- ARGV: user_id, limit, global_cap, holder, ttl_seconds, now ("" = Redis TIME)
-- Returns {decision, user_count, global_count, holder1, since1, expires1, ...}.
local user_key, global_key, since_key, owner_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local user_id, holder = ARGV[1], ARGV[4]
local limit, global_cap, ttl = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[5])
local now = clock(ARGV[6])

prune(user_key, since_key, owner_key, now)
prune(global_key, since_key, owner_key, now)

local decision = 'admitted'
local user_count = redis.call('ZCARD', user_key)
local global_count = redis.call('ZCARD', global_key)
if not redis.call('ZSCORE', user_key, holder) then
  if user_count >= limit then
    decision = 'user_limit'
  elseif global_count >= global_cap then
    decision = 'global_limit'
  else
    user_count, global_count = user_count + 1, global_count + 1
    redis.call('HSET', since_key, holder, now)
    redis.call('HSET', owner_key, holder, user_id)
  end
end

if decision == 'admitted' then
  redis.call('ZADD', user_key, now + ttl, holder)
  redis.call('ZADD', global_key, now + ttl, holder)
end

local members = redis.call('ZRANGE', user_key, 0, -1, 'WITHSCORES')
return append_holders({decision, user_count, global_count}, members, since_key, now)
