-- Prepended to every lease script when it is registered (see the package docstring).
-- Hashes beside the sets: since (holder -> first admission time), owner (holder -> user id),
-- run (holder -> "<run start time>:<run id>", the run that holds the lease).
local function clock(arg)
  local now = tonumber(arg)
  if now then return now end
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end

local function forget(holder, since_key, owner_key, run_key)
  redis.call('HDEL', since_key, holder)
  redis.call('HDEL', owner_key, holder)
  redis.call('HDEL', run_key, holder)
end

-- Drop the expired members of a lease set and everything kept about them.
local function prune(key, since_key, owner_key, run_key, now)
  local expired = redis.call('ZRANGEBYSCORE', key, '-inf', now)
  for _, member in ipairs(expired) do
    forget(member, since_key, owner_key, run_key)
  end
  if #expired > 0 then
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  end
end

-- The run recorded for a holder: its start time (a number) and id, or nil.
local function recorded_run(run_key, holder)
  local value = redis.call('HGET', run_key, holder)
  if not value then return nil, nil end
  local started, run_id = string.match(value, '^([^:]*):(.*)$')
  return tonumber(started), run_id
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

-- The error a script refuses with while the store has no epoch (see reserve.lua).
local EPOCHLESS = 'EPOCHLESS the lease store has no epoch: its leases await a rebuild'

-- Append `user, holder, since, expiry, run_id` for each member of a WITHSCORES reply.
local function append_leases(reply, members, since_key, owner_key, run_key, now)
  for i = 1, #members, 2 do
    local _, run_id = recorded_run(run_key, members[i])
    table.insert(reply, redis.call('HGET', owner_key, members[i]) or '')
    table.insert(reply, members[i])
    table.insert(reply, redis.call('HGET', since_key, members[i]) or string.format('%.6f', now))
    table.insert(reply, members[i + 1])
    table.insert(reply, run_id or '')
  end
  return reply
end
