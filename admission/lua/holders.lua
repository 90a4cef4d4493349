-- Read-only: every live lease (expiry after `now`) with its user and run.
-- KEYS: global zset, since hash, owner hash, run hash
-- ARGV: now ("" = Redis TIME)
-- Returns {user1, holder1, since1, expires1, run_id1, ...}.
local global_key = KEYS[1]
local now = clock(ARGV[1])

local members = redis.call('ZRANGEBYSCORE', global_key, string.format('(%.6f', now), '+inf', 'WITHSCORES')
return append_leases({}, members, KEYS[2], KEYS[3], KEYS[4], now)
