-- Release `holder` everywhere; idempotent (ZREM/HDEL of a missing member is a no-op), so no
-- count can go negative. Also prunes the user's expired members.
-- KEYS: user zset, global zset, since hash, owner hash
-- ARGV: user_id, holder, now ("" = Redis TIME)
-- Returns 1 when a live lease was released, else 0.
local user_key, global_key, since_key, owner_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local user_id = ARGV[1]
local holder = ARGV[2]
local now = tonumber(ARGV[3])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end

local score = tonumber(redis.call('ZSCORE', user_key, holder))
local owned = redis.call('ZREM', user_key, holder) == 1 or redis.call('HGET', owner_key, holder) == user_id
if owned then
  redis.call('ZREM', global_key, holder)
  redis.call('HDEL', since_key, holder)
  redis.call('HDEL', owner_key, holder)
end

local expired = redis.call('ZRANGEBYSCORE', user_key, '-inf', now)
for _, member in ipairs(expired) do
  redis.call('HDEL', since_key, member)
  redis.call('HDEL', owner_key, member)
end
if #expired > 0 then
  redis.call('ZREMRANGEBYSCORE', user_key, '-inf', now)
end

if score and score > now then
  return 1
end
return 0
