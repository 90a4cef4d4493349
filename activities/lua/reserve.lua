-- Admit `holder` for a user under the user's limit and the global cap (DESIGN §4).
-- KEYS: user zset, global zset, since hash, owner hash (one hash tag, so one slot)
-- ARGV: user_id, limit, global_cap, holder, ttl_seconds, now ("" = Redis TIME)
-- Returns {decision, user_count, global_count, holder1, since1, expires1, ...}.
local user_key, global_key, since_key, owner_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local user_id = ARGV[1]
local limit = tonumber(ARGV[2])
local global_cap = tonumber(ARGV[3])
local holder = ARGV[4]
local ttl = tonumber(ARGV[5])
local now = tonumber(ARGV[6])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end

local function prune(key)
  local expired = redis.call('ZRANGEBYSCORE', key, '-inf', now)
  if #expired == 0 then
    return
  end
  for _, member in ipairs(expired) do
    redis.call('HDEL', since_key, member)
    redis.call('HDEL', owner_key, member)
  end
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
end

prune(user_key)
prune(global_key)

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

local reply = {decision, user_count, global_count}
local members = redis.call('ZRANGE', user_key, 0, -1, 'WITHSCORES')
if #members == 0 then
  return reply
end
local holders = {}
for i = 1, #members, 2 do
  table.insert(holders, members[i])
end
local since = redis.call('HMGET', since_key, unpack(holders))
for i, member in ipairs(holders) do
  table.insert(reply, member)
  table.insert(reply, since[i] or string.format('%.6f', now))
  table.insert(reply, members[2 * i])
end
return reply
