-- A batch of one node's changes to a room's presence list, atomic: one pseq bump and one
-- published diff for the whole batch (the node's coalescing window), none if nothing changed.
-- The C++ side embeds this file's exact bytes (cluster/presence_script.hpp).
--
-- KEYS[1] tr:{room}:pres    hash client -> entry (the wire's {client,user,name?,info?,state?})
-- KEYS[2] tr:{room}:powner  hash client -> incarnation of the node that holds its connection
-- KEYS[3] tr:{room}:pgrace  hash client -> user, entries waiting out a grace period
-- KEYS[4] tr:{room}:pmeta   hash {pseq}
-- KEYS[5] tr:node:<incarnation>:rooms  set of the rooms where that node has entries (sweep)
-- KEYS[6] tr:{room}:pusers  hash user -> number of its entries (webhooks count users)
-- ARGV[1] channel (tr:{room}:pch)   ARGV[2] room   ARGV[3] this node's incarnation
-- then 4 arguments per change, at most one change per client:
--   'u' client user entry  upsert; the same user's entries in grace (any node) leave with it
--   'r' client ''   ''     remove
--   'g' client user ''     the entry waits out a grace period (no diff)
-- Published: cmsgpack {pseq, {client, entry, ...joins}, {client, entry, ...leaves}}.
-- Reply: {pseq, changed, events}: the list's pseq after the batch, 1 if it made a diff, and
-- the webhook events the batch caused, in order, {name, user, client, ...}: computed here,
-- atomically, so the cluster emits each once (the node that ran the batch sends them).
local pres, owner, grace, meta, index, users = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local channel, room, me = ARGV[1], ARGV[2], ARGV[3]
local joins, leaves, events = {}, {}, {}

local function event(name, user, client)
  events[#events + 1] = name
  events[#events + 1] = user
  events[#events + 1] = client
end

local function user_of(entry)
  local ok, decoded = pcall(cmsgpack.unpack, entry)
  if ok and type(decoded) == 'table' and type(decoded.user) == 'string' then return decoded.user end
  return ''
end

local function remove(client)
  redis.call('HDEL', grace, client)
  redis.call('HDEL', owner, client)
  local old = redis.call('HGET', pres, client)
  if not old then return end
  redis.call('HDEL', pres, client)
  leaves[#leaves + 1] = client
  leaves[#leaves + 1] = old
  local user = user_of(old)
  if redis.call('HINCRBY', users, user, -1) <= 0 then
    redis.call('HDEL', users, user)
    event('member_removed', user, client)
  end
  if redis.call('HLEN', pres) == 0 then event('room_vacated', '', '') end
end

local upserted = false
-- Arrivals first, then departures: a user who swaps tabs, or a room one member leaves as
-- another arrives, within one window is not removed and added again (nor vacated).
for pass = 1, 2 do
  for i = 4, #ARGV, 4 do
    local kind, client, user, entry = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
    if (kind == 'u') ~= (pass == 1) then
      -- this change's pass is the other one
    elseif kind == 'u' then
      local old = redis.call('HGET', pres, client)
      if not old then
        if redis.call('HLEN', pres) == 0 then event('room_occupied', '', '') end
        if redis.call('HINCRBY', users, user, 1) == 1 then event('member_added', user, client) end
      end
      -- Listed before the same user's entries in grace leave: neither the user nor the room
      -- is ever seen empty by a reconnect.
      redis.call('HSET', pres, client, entry)
      -- A reconnect within the grace period, on whichever node: the old entry leaves in this
      -- diff, so a view grouped by user never flickers.
      local waiting = redis.call('HGETALL', grace)
      for j = 1, #waiting, 2 do
        if waiting[j + 1] == user and waiting[j] ~= client then remove(waiting[j]) end
      end
      redis.call('HDEL', grace, client)
      if old ~= entry then
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
end
if upserted then redis.call('SADD', index, room) end

local pseq = tonumber(redis.call('HGET', meta, 'pseq') or '0')
if #joins > 0 or #leaves > 0 then
  pseq = redis.call('HINCRBY', meta, 'pseq', 1)
  redis.call('PUBLISH', channel, cmsgpack.pack({pseq, joins, leaves}))
  return {pseq, 1, events}
end
return {pseq, 0, events}
