-- Read-only: a user's live leases (expiry after `now`).
-- KEYS: user zset, since hash
-- ARGV: now ("" = Redis TIME)
-- Returns {holder1, since1, expires1, ...}.
local user_key, since_key = KEYS[1], KEYS[2]
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end

local reply = {}
local members = redis.call('ZRANGEBYSCORE', user_key, string.format('(%.6f', now), '+inf', 'WITHSCORES')
for i = 1, #members, 2 do
  local since = redis.call('HGET', since_key, members[i]) or string.format('%.6f', now)
  table.insert(reply, members[i])
  table.insert(reply, since)
  table.insert(reply, members[i + 1])
end
return reply
