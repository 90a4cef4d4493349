-- Read-only: every live lease (expiry after `now`) with its user.
-- KEYS: global zset, since hash, owner hash
-- ARGV: now ("" = Redis TIME)
-- Returns {user1, holder1, since1, expires1, ...}.
local global_key, since_key, owner_key = KEYS[1], KEYS[2], KEYS[3]
local now = clock(ARGV[1])

local reply = {}
local members = redis.call('ZRANGEBYSCORE', global_key, string.format('(%.6f', now), '+inf', 'WITHSCORES')
for i = 1, #members, 2 do
  table.insert(reply, redis.call('HGET', owner_key, members[i]) or '')
  table.insert(reply, members[i])
  table.insert(reply, redis.call('HGET', since_key, members[i]) or string.format('%.6f', now))
  table.insert(reply, members[i + 1])
end
return reply
