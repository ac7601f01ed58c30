-- One operation committed to a room's document, optimistic as in ShareDB: the node sends the
-- operation transformed up to the revision it knows (`base`); if the document has moved on,
-- the script refuses and answers the current revision, and the node reads what it missed,
-- transforms and tries again. The reply is the ack: an ack means Redis has the operation.
-- The C++ side embeds this file's exact bytes (cluster/document_script.hpp).
--
-- KEYS[1] tr:{room}:dmeta  hash {epoch, rev}: created by doc_read.lua, never here
-- KEYS[2] tr:{room}:dops   stream, one entry per kept operation, id <rev>-1,
--                          fields user key cid op
-- KEYS[3] tr:{room}:dkeys  sorted set: idempotency key -> rev, trimmed with the stream
-- KEYS[4] tr:{room}:dsnap  hash {rev, text}: the text at some revision, for `open`
-- ARGV[1] channel (tr:{room}:dch)   ARGV[2] the epoch the node's operation belongs to
-- ARGV[3] log (operations kept, >= 1)   ARGV[4] base: the revision the op was made against
-- ARGV[5] user   ARGV[6] key ('' for none)   ARGV[7] cid: the node's id of this commit, so
-- that it recognises its own operation on the channel   ARGV[8] op (MessagePack bytes)
-- ARGV[9] '1': ARGV[10] is the text after this operation, to keep as the snapshot
-- ARGV[11] the most operations a 'stale' reply carries
-- Reply {status, rev, epoch[, entries]}: 'ok' (rev: the operation's), 'dup' (the key was
-- accepted as rev; nothing changed), 'stale' (base is not the document's rev, which is
-- answered, with the operations after base as XRANGE gives them, so the node can transform
-- and retry without another round trip), 'epoch' (the document is gone or another epoch's:
-- the node must load it again).
local meta, ops, keys, snap = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local channel, epoch, log, base = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local user, key, cid, op = ARGV[5], ARGV[6], ARGV[7], ARGV[8]

local top = redis.call('HMGET', meta, 'epoch', 'rev')
local current, rev = top[1], tonumber(top[2] or '0')
if not current then
  return {'epoch', 0, ''}
end
if current ~= epoch then
  return {'epoch', rev, current}
end
-- Before the revision check: a resubmission is acknowledged whatever revision it names.
if key ~= '' then
  local seen = redis.call('ZSCORE', keys, key)
  if seen then
    return {'dup', tonumber(seen), current}
  end
end
if base ~= rev then
  local missed = {}
  if base < rev then
    missed = redis.call('XRANGE', ops, base + 1, '+', 'COUNT', tonumber(ARGV[11]))
  end
  return {'stale', rev, current, missed}
end

rev = rev + 1
redis.call('HSET', meta, 'rev', rev)
local snaprev = tonumber(redis.call('HGET', snap, 'rev') or '0')
if ARGV[9] == '1' then
  redis.call('HSET', snap, 'rev', rev, 'text', ARGV[10])
  snaprev = rev
end
-- Keep the last `log` operations, and every one after the snapshot (open replays them).
local keep = math.min(rev - log + 1, snaprev + 1)
if keep < 1 then
  keep = 1
end
redis.call('XADD', ops, 'MINID', keep, rev .. '-1', 'user', user, 'key', key, 'cid', cid,
  'op', op)
if key ~= '' then
  redis.call('ZADD', keys, rev, key)
end
if keep > 1 then
  redis.call('ZREMRANGEBYSCORE', keys, '-inf', keep - 1)
end
redis.call('PUBLISH', channel, cmsgpack.pack({rev, current, user, key, cid, op}))
return {'ok', rev, current}
