-- One publish to a room, atomic because Redis runs a script alone: the reply is the ack, so
-- an ack means Redis has the message (after Centrifugo's broker_history_add_stream.lua).
-- The C++ side embeds this file's exact bytes (cluster/publish_script.hpp).
--
-- KEYS[1] tr:{room}:meta    hash {epoch, seq}: the room's log; seq outlives the messages
-- KEYS[2] tr:{room}:stream  stream, one entry per kept message, id <seq>-1, fields ts user key data
-- KEYS[3] tr:{room}:keys    sorted set: idempotency key -> seq, trimmed with the stream
-- ARGV[1] channel (tr:{room}:ch)   ARGV[2] epoch to create if the room has none
-- ARGV[3] history (messages kept, >= 1)   ARGV[4] user   ARGV[5] key ('' for none)
-- ARGV[6] data: the message's MessagePack bytes (binary safe)
-- Reply: {seq, epoch, ts, duplicate}: duplicate is 1 when the key was known, and then
-- seq and ts are the first publish's and nothing was published.
local meta, stream, keys = KEYS[1], KEYS[2], KEYS[3]
local channel, candidate, history = ARGV[1], ARGV[2], tonumber(ARGV[3])
local user, key, data = ARGV[4], ARGV[5], ARGV[6]

local epoch = redis.call('HGET', meta, 'epoch')
if epoch and key ~= '' then
  local seen = redis.call('ZSCORE', keys, key)
  if seen then
    -- The key is trimmed with the stream, so its entry is still there: its ts is the ack's.
    local ts = 0
    local entries = redis.call('XRANGE', stream, seen .. '-1', seen .. '-1')
    if entries[1] then
      local fields = entries[1][2]
      for i = 1, #fields, 2 do
        if fields[i] == 'ts' then ts = tonumber(fields[i + 1]) end
      end
    end
    return {tonumber(seen), epoch, ts, 1}
  end
end

if not epoch then
  -- A new room, or Redis lost the meta: what is left under the room's keys belongs to a
  -- lost epoch (and would make the XADD below refuse id 1-1).
  epoch = candidate
  redis.call('DEL', stream, keys)
  redis.call('HSET', meta, 'epoch', epoch)
end

local seq = redis.call('HINCRBY', meta, 'seq', 1)
local now = redis.call('TIME') -- Redis's clock, not the nodes': one clock for every node
local ts = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)

-- Exact MAXLEN: the kept history is exactly `history` messages, as with one node. Every
-- entry has the same fields (key '' when none) so the stream stores their names once.
redis.call('XADD', stream, 'MAXLEN', history, seq .. '-1',
  'ts', ts, 'user', user, 'key', key, 'data', data)
if key ~= '' then
  redis.call('ZADD', keys, seq, key)
  -- Trimmed with the stream, on keyed publishes only: a key is remembered at least while its
  -- message is kept (the contract), and the set never holds more than `history` keys, while a
  -- room published to without keys pays nothing for it.
  if seq > history then
    redis.call('ZREMRANGEBYSCORE', keys, '-inf', seq - history)
  end
end

-- An array the node decodes with msgpack-cxx; data stays one contiguous byte string in it.
redis.call('PUBLISH', channel, cmsgpack.pack({seq, epoch, ts, user, key, data}))
return {seq, epoch, ts, 0}
