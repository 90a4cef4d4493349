-- Write the epoch at the end of a full rebuild, only if the rebuild's marker is still the
-- caller's: a Redis that restarted (or another rebuild that began) meanwhile lost or replaced
-- it, and that rebuild's leases cannot be trusted complete.
-- KEYS: rebuild marker, epoch
-- ARGV: the rebuild's token, now ("" = Redis TIME)
-- Returns 1 when the epoch was written, else 0.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[2], string.format('%.6f', clock(ARGV[2])))
redis.call('DEL', KEYS[1])
return 1
