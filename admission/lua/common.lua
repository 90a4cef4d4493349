-- Prepended to every lease script when it is registered (see the package docstring).
local function clock(arg)
  local now = tonumber(arg)
  if now then return now end
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end

-- Drop the expired members of a lease set and their `since`/`owner` entries.
local function prune(key, since_key, owner_key, now)
  local expired = redis.call('ZRANGEBYSCORE', key, '-inf', now)
  for _, member in ipairs(expired) do
    redis.call('HDEL', since_key, member)
    redis.call('HDEL', owner_key, member)
  end
  if #expired > 0 then
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  end
end

-- Append `holder, since, expiry` for each member of a ZRANGE ... WITHSCORES reply.
local function append_holders(reply, members, since_key, now)
  for i = 1, #members, 2 do
    table.insert(reply, members[i])
    table.insert(reply, redis.call('HGET', since_key, members[i]) or string.format('%.6f', now))
    table.insert(reply, members[i + 1])
  end
  return reply
end
