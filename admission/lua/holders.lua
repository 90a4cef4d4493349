-- Read-only: every live lease (expiry after `now`) with its user and run.
-- KEYS: global zset, since hash, owner hash, run hash
-- ARGV: now ("" = Redis TIME)
-- Returns {user1, holder1, since1, expires1, run_id1, ...}.
local global_key, since_key, owner_key, run_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local now = clock(ARGV[1])

local reply = {}
local members = redis.call('ZRANGEBYSCORE', global_key, string.format('(%.6f', now), '+inf', 'WITHSCORES')
for i = 1, #members, 2 do
  local _, run_id = recorded_run(run_key, members[i])
  table.insert(reply, redis.call('HGET', owner_key, members[i]) or '')
  table.insert(reply, members[i])
  table.insert(reply, redis.call('HGET', since_key, members[i]) or string.format('%.6f', now))
  table.insert(reply, members[i + 1])
  table.insert(reply, run_id or '')
end
return reply
