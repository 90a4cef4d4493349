-- Read-only: a user's live leases (expiry after `now`).
-- Refused with the error `EPOCHLESS` while the epoch key is missing: lost state is not shown.
-- KEYS: user zset, since hash, epoch
-- ARGV: now ("" = Redis TIME)
-- Returns {holder1, since1, expires1, ...}.
local user_key, since_key = KEYS[1], KEYS[2]
local now = clock(ARGV[1])
if redis.call('EXISTS', KEYS[3]) == 0 then return redis.error_reply(EPOCHLESS) end

local members = redis.call('ZRANGEBYSCORE', user_key, string.format('(%.6f', now), '+inf', 'WITHSCORES')
return append_holders({}, members, since_key, now)
