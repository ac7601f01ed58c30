-- A batch of one node's changes to a room's presence list, atomic: one pseq bump and one
-- published diff for the whole batch (the node's coalescing window), none if nothing changed.
-- The C++ side embeds this file's exact bytes (cluster/presence_script.hpp).
--
-- KEYS[1] tr:{room}:pres    hash client -> entry (the wire's {client,user,name?,info?,state?})
-- KEYS[2] tr:{room}:powner  hash client -> incarnation of the node that holds its connection
-- KEYS[3] tr:{room}:pgrace  hash client -> user, entries waiting out a grace period
-- KEYS[4] tr:{room}:pmeta   hash {pseq}
-- KEYS[5] tr:node:<incarnation>:rooms  set of the rooms where that node has entries (sweep)
-- ARGV[1] channel (tr:{room}:pch)   ARGV[2] room   ARGV[3] this node's incarnation
-- then 4 arguments per change, at most one change per client:
--   'u' client user entry  upsert; the same user's entries in grace (any node) leave with it
--   'r' client ''   ''     remove
--   'g' client user ''     the entry waits out a grace period (no diff)
-- Published: cmsgpack {pseq, {client, entry, ...joins}, {client, entry, ...leaves}}.
-- Reply: {pseq, changed}: the list's pseq after the batch, and 1 if it made a diff.
local pres, owner, grace, meta, index = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local channel, room, me = ARGV[1], ARGV[2], ARGV[3]
local joins, leaves = {}, {}

local function remove(client)
  redis.call('HDEL', grace, client)
  redis.call('HDEL', owner, client)
  local old = redis.call('HGET', pres, client)
  if not old then return end
  redis.call('HDEL', pres, client)
  leaves[#leaves + 1] = client
  leaves[#leaves + 1] = old
end

local upserted = false
for i = 4, #ARGV, 4 do
  local kind, client, user, entry = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  if kind == 'u' then
    -- A reconnect within the grace period, on whichever node: the old entry leaves in this
    -- diff, so a view grouped by user never flickers.
    local waiting = redis.call('HGETALL', grace)
    for j = 1, #waiting, 2 do
      if waiting[j + 1] == user and waiting[j] ~= client then remove(waiting[j]) end
    end
    redis.call('HDEL', grace, client)
    local old = redis.call('HGET', pres, client)
    if old ~= entry then
      redis.call('HSET', pres, client, entry)
      if old then
        leaves[#leaves + 1] = client
        leaves[#leaves + 1] = old
      end
      joins[#joins + 1] = client
      joins[#joins + 1] = entry
    end
    -- Always: a re-assertion after this node was swept as dead makes the entry its own again.
    redis.call('HSET', owner, client, me)
    upserted = true
  elseif kind == 'r' then
    remove(client)
  elseif kind == 'g' then
    if redis.call('HEXISTS', pres, client) == 1 then redis.call('HSET', grace, client, user) end
  end
end
if upserted then redis.call('SADD', index, room) end

local pseq = tonumber(redis.call('HGET', meta, 'pseq') or '0')
if #joins > 0 or #leaves > 0 then
  pseq = redis.call('HINCRBY', meta, 'pseq', 1)
  redis.call('PUBLISH', channel, cmsgpack.pack({pseq, joins, leaves}))
  return {pseq, 1}
end
return {pseq, 0}
