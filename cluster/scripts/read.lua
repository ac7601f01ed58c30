-- One read of a room's log, atomic with the epoch and top seq it belongs to (an epoch change
-- between two separate reads would pass a new log's seqs for the old one's). Serves the
-- subscribe-time read, a hole's repair, `history` and the periodic top check.
-- The C++ side embeds this file's exact bytes (cluster/publish_script.hpp).
--
-- KEYS[1] tr:{room}:meta   KEYS[2] tr:{room}:stream   KEYS[3] tr:{room}:keys
-- ARGV[1] from: the first seq wanted (0 with ARGV[3] > 0: the newest)
-- ARGV[2] to: the last seq wanted ('+': the top)
-- ARGV[3] count: at most this many entries (0: no limit; with from 0: the newest count;
--         -1: none, only the epoch and top)
-- ARGV[4] an epoch to create if the room has none ('': create nothing); a room's epoch is
--         made by its first reader or publisher, so a subscriber never sees an empty one
-- Reply: {epoch or '', top seq, entries}: entries as XRANGE gives them, oldest first.
local meta, stream = KEYS[1], KEYS[2]
local from, to, count, candidate = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3]), ARGV[4]

local top = redis.call('HMGET', meta, 'epoch', 'seq')
local epoch, seq = top[1] or '', tonumber(top[2] or '0')
if epoch == '' and candidate ~= '' then
  -- As publish.lua: what is left under the room's keys belongs to a lost epoch.
  epoch = candidate
  redis.call('DEL', stream, KEYS[3])
  redis.call('HSET', meta, 'epoch', epoch)
end
local entries = {}
if epoch ~= '' and count >= 0 then
  if from == 0 and count > 0 then
    entries = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', count)
    -- oldest first, as XRANGE
    local n = #entries
    for i = 1, math.floor(n / 2) do
      entries[i], entries[n - i + 1] = entries[n - i + 1], entries[i]
    end
  elseif from > 0 then
    if count > 0 then
      entries = redis.call('XRANGE', stream, from, to, 'COUNT', count)
    else
      entries = redis.call('XRANGE', stream, from, to)
    end
  end
end
return {epoch, seq, entries}
