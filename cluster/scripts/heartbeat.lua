-- One beat of a cluster node, on Redis's clock (one clock for every node).
-- The C++ side embeds this file's exact bytes (actors/cluster_hub.cpp).
--
-- KEYS[1] tr:nodes   sorted set: incarnation -> ms of its last beat
-- ARGV[1] this node's incarnation   ARGV[2] ms after which a silent node counts as dead
-- Reply: {live nodes, {dead incarnations}}. A dead incarnation stays listed until its
-- presence entries are swept (cluster/scripts/presence_sweep.lua removes it), so a node that
-- fails while sweeping leaves the work to the next beat of any node.
local nodes, me, timeout = KEYS[1], ARGV[1], tonumber(ARGV[2])
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('ZADD', nodes, ms, me)
local live = redis.call('ZCOUNT', nodes, ms - timeout, '+inf')
local dead = redis.call('ZRANGEBYSCORE', nodes, '-inf', '(' .. (ms - timeout), 'LIMIT', 0, 16)
return {live, dead}
