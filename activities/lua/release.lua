-- Release `holder` everywhere; idempotent (ZREM/HDEL of a missing member is a no-op).
-- KEYS: user zset, global zset, since hash, owner hash
-- ARGV: user_id, holder, now ("" = Redis TIME)
-- Returns 1 when a lease was removed, else 0.
local user_key, global_key, since_key, owner_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local user_id = ARGV[1]
local holder = ARGV[2]
local now = tonumber(ARGV[3])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end

for _, member in ipairs(redis.call('ZRANGEBYSCORE', user_key, '-inf', now)) do
  if member ~= holder then
    redis.call('HDEL', since_key, member)
    redis.call('HDEL', owner_key, member)
  end
end
redis.call('ZREMRANGEBYSCORE', user_key, '-inf', now)

local removed = redis.call('ZREM', user_key, holder)
local owner = redis.call('HGET', owner_key, holder)
if removed == 0 and owner ~= user_id then
  return 0
end
removed = removed + redis.call('ZREM', global_key, holder)
redis.call('HDEL', since_key, holder)
redis.call('HDEL', owner_key, holder)
if removed > 0 then
  return 1
end
return 0
