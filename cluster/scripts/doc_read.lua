-- One read of a room's document, atomic with the epoch and revision it belongs to: the whole
-- document (the snapshot and every kept operation: a node loading its copy) or the
-- operations from a revision on (a node filling a gap, or catching up before `open`).
-- The C++ side embeds this file's exact bytes (cluster/document_script.hpp).
--
-- KEYS[1] tr:{room}:dmeta   KEYS[2] tr:{room}:dops   KEYS[3] tr:{room}:dkeys
-- KEYS[4] tr:{room}:dsnap   (as doc_commit.lua)
-- ARGV[1] from: the first revision wanted; 0: the whole document
-- ARGV[2] an epoch to create if the document has none ('': create nothing)
-- Reply {epoch or '', rev, snapshot rev, snapshot text, entries}: entries as XRANGE gives
-- them; the snapshot only with from 0 (else 0 and '').
local meta, ops, keys, snap = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local from, candidate = tonumber(ARGV[1]), ARGV[2]

local top = redis.call('HMGET', meta, 'epoch', 'rev')
local epoch, rev = top[1] or '', tonumber(top[2] or '0')
if epoch == '' and candidate ~= '' then
  -- A new document, or Redis lost it: what is left under its keys belongs to a lost epoch.
  epoch, rev = candidate, 0
  redis.call('DEL', ops, keys, snap)
  redis.call('HSET', meta, 'epoch', epoch, 'rev', 0)
end
local snaprev, snaptext, entries = 0, '', {}
if epoch ~= '' then
  if from == 0 then
    local s = redis.call('HMGET', snap, 'rev', 'text')
    snaprev, snaptext = tonumber(s[1] or '0'), s[2] or ''
    entries = redis.call('XRANGE', ops, '-', '+')
  elseif from <= rev then
    entries = redis.call('XRANGE', ops, from, '+')
  end
end
return {epoch, rev, snaprev, snaptext, entries}
