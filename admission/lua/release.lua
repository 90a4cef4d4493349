-- Release `holder` everywhere; idempotent (ZREM/HDEL of a missing member is a no-op), so no
-- count can go negative. Also prunes the user's expired members.
-- KEYS: user zset, global zset, since hash, owner hash
-- ARGV: user_id, holder, now ("" = Redis TIME)
-- Returns 1 when a live lease was released, else 0.
local user_key, global_key, since_key, owner_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local user_id, holder = ARGV[1], ARGV[2]
local now = clock(ARGV[3])

local score = tonumber(redis.call('ZSCORE', user_key, holder))
local owned = redis.call('ZREM', user_key, holder) == 1 or redis.call('HGET', owner_key, holder) == user_id
if owned then
  redis.call('ZREM', global_key, holder)
  redis.call('HDEL', since_key, holder)
  redis.call('HDEL', owner_key, holder)
end
prune(user_key, since_key, owner_key, now)

if score and score > now then
  return 1
end
return 0
