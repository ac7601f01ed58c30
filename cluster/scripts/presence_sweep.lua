-- Removes every presence entry of a dead node (an incarnation that stopped beating), in
-- every room it had entries in: one pseq bump and one published diff per room. Then the
-- node leaves tr:nodes and its index goes, so the sweep is done once; running it again (several
-- nodes saw the death) removes nothing. The C++ side embeds this file's exact bytes
-- (cluster/presence_script.hpp).
--
-- KEYS[1] tr:node:<incarnation>:rooms   KEYS[2] tr:nodes   ARGV[1] the dead incarnation
-- A room's keys are built here from its name, as cluster/presence_script.cpp names them
-- (tr:{room}:pres, :powner, :pgrace, :pmeta, channel :pch): fine on one Redis, not on a
-- Redis Cluster of several shards.
-- Reply: {removed, events}: the number of entries removed, and the webhook events that
-- caused, in order, {room, name, user, client, ...} (presence.lua's, per room), which the
-- node that ran the sweep emits: once for the cluster, as a second sweep removes nothing.
local index, nodes, dead = KEYS[1], KEYS[2], ARGV[1]
local removed = 0
local events = {}

local function event(room, name, user, client)
  events[#events + 1] = room
  events[#events + 1] = name
  events[#events + 1] = user
  events[#events + 1] = client
end

local function user_of(entry)
  local ok, decoded = pcall(cmsgpack.unpack, entry)
  if ok and type(decoded) == 'table' and type(decoded.user) == 'string' then return decoded.user end
  return ''
end

for _, room in ipairs(redis.call('SMEMBERS', index)) do
  local tag = 'tr:{' .. room .. '}:'
  local pres, owner, grace, meta = tag .. 'pres', tag .. 'powner', tag .. 'pgrace', tag .. 'pmeta'
  local users = tag .. 'pusers'
  local owners = redis.call('HGETALL', owner)
  local leaves = {}
  for i = 1, #owners, 2 do
    if owners[i + 1] == dead then
      local client = owners[i]
      local old = redis.call('HGET', pres, client)
      redis.call('HDEL', owner, client)
      redis.call('HDEL', grace, client)
      if old then
        redis.call('HDEL', pres, client)
        leaves[#leaves + 1] = client
        leaves[#leaves + 1] = old
        local user = user_of(old)
        if redis.call('HINCRBY', users, user, -1) <= 0 then
          redis.call('HDEL', users, user)
          event(room, 'member_removed', user, client)
        end
        if redis.call('HLEN', pres) == 0 then event(room, 'room_vacated', '', '') end
      end
    end
  end
  if #leaves > 0 then
    removed = removed + #leaves / 2
    local pseq = redis.call('HINCRBY', meta, 'pseq', 1)
    redis.call('PUBLISH', tag .. 'pch', cmsgpack.pack({pseq, {}, leaves}))
  end
end
redis.call('DEL', index)
redis.call('ZREM', nodes, dead)
return {removed, events}
