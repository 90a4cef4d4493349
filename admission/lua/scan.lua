-- Read-only: one page of the global lease set by ZSCAN, so a caller walks any number of leases
-- in bounded pieces (a lease present throughout the walk is returned at least once).
-- KEYS: global zset, since hash, owner hash, run hash
-- ARGV: cursor ("0" to begin), count (a hint), now ("" = Redis TIME)
-- Returns {next_cursor, user1, holder1, since1, expires1, run_id1, ...}; cursor "0" = done.
local global_key = KEYS[1]
local now = clock(ARGV[3])

local page = redis.call('ZSCAN', global_key, ARGV[1], 'COUNT', tonumber(ARGV[2]))
local live = {}
for i = 1, #page[2], 2 do
  if tonumber(page[2][i + 1]) > now then
    table.insert(live, page[2][i])
    table.insert(live, page[2][i + 1])
  end
end
return append_leases({page[1]}, live, KEYS[2], KEYS[3], KEYS[4], now)
