-- A room's whole presence list with the pseq it belongs to, in one atomic read: what a node
-- mirrors when it starts serving the room, and re-reads after a hole in pseq or a Redis outage.
-- The C++ side embeds this file's exact bytes (cluster/presence_script.hpp).
--
-- KEYS[1] tr:{room}:pres   KEYS[2] tr:{room}:pmeta
-- Reply: {pseq, {client, entry, ...}}.
local pseq = tonumber(redis.call('HGET', KEYS[2], 'pseq') or '0')
return {pseq, redis.call('HGETALL', KEYS[1])}
