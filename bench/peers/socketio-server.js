'use strict';
// The same broadcast service on Socket.IO 4 with its MessagePack parser, written the way a
// Socket.IO user would: rooms are socket.join(), a publish is io.to(room).emit('msg', …),
// replies are acknowledgement callbacks. The adapter encodes a broadcast once and hands
// the encoded packet to every member's Engine.IO socket.
//
//   node socketio-server.js [--port N] [--host H] [--redis redis://HOST:PORT]
//   (port 0 picks a free port; --redis, or SIO_REDIS in the environment, turns on the
//   cluster mode below)
//
// Events (each acknowledged): 'sub' (room) -> {room, seq}; 'unsub' (room) -> {room};
// 'pub' ({room, data}) -> {room, seq}, and every member of the room gets
// 'msg' {room, seq, user, data, ts}. The user comes from the CONNECT packet's auth.user.
//
// Cluster mode (opt-in, for bench/cluster/run.sh): several of these processes share one
// Redis through @socket.io/redis-adapter (node-redis 4 clients, one for PUBLISH and one
// subscribed), as its documentation sets it up. io.to(room).emit() then delivers to the
// local members and PUBLISHes the encoded packet, and every other node's adapter delivers
// it to its own. The adapter has no room-wide sequence (no order across publishers, no
// history, no recovery), so in this mode `seq` is 0 in acks and pushes: the load
// generator then checks only counts, not order.
const http = require('http');
const { Server } = require('socket.io');
const parser = require('socket.io-msgpack-parser');

function arg(name, dflt) {
  const i = process.argv.indexOf(name);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : dflt;
}
const port = Number(arg('--port', '8080'));
const host = arg('--host', '127.0.0.1');
const redisUrl = arg('--redis', process.env.SIO_REDIS || '');

const httpServer = http.createServer();
const io = new Server(httpServer, { parser, serveClient: false, maxHttpBufferSize: 1 << 20 });

const seqs = new Map(); // room -> last seq
const validRoom = /^[A-Za-z0-9_\-:.@]{1,128}$/;
const noop = () => {};

io.on('connection', (socket) => {
  const auth = socket.handshake.auth || {};
  const user = typeof auth.user === 'string' ? auth.user : socket.id;

  socket.on('sub', (room, ack = noop) => {
    if (typeof room !== 'string' || !validRoom.test(room)) return ack({ error: 'bad_request' });
    socket.join(room);
    ack({ room, seq: seqs.get(room) || 0 });
  });

  socket.on('unsub', (room, ack = noop) => {
    socket.leave(room);
    ack({ room });
  });

  socket.on('pub', (m, ack = noop) => {
    if (!m || typeof m.room !== 'string' || !validRoom.test(m.room) || m.data === undefined) {
      return ack({ error: 'bad_request' });
    }
    let seq = 0;
    if (!redisUrl) {
      seq = (seqs.get(m.room) || 0) + 1;
      seqs.set(m.room, seq);
    }
    ack({ room: m.room, seq });
    io.to(m.room).emit('msg', { room: m.room, seq, user, data: m.data, ts: Date.now() });
  });
});

async function useRedis(url) {
  const { createClient } = require('redis');
  const { createAdapter } = require('@socket.io/redis-adapter');
  const pubClient = createClient({ url });
  const subClient = pubClient.duplicate();
  for (const c of [pubClient, subClient]) c.on('error', (e) => console.error('redis:', e.message));
  await Promise.all([pubClient.connect(), subClient.connect()]);
  io.adapter(createAdapter(pubClient, subClient));
}

(redisUrl ? useRedis(redisUrl) : Promise.resolve()).then(
  () => {
    httpServer.listen(port, host, () => {
      console.log(`listening on ${host}:${httpServer.address().port}` +
                  (redisUrl ? ` (redis adapter: ${redisUrl})` : ''));
    });
  },
  (e) => {
    console.error(`cannot use Redis at ${redisUrl}: ${e.message}`);
    process.exit(1);
  });

for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    io.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 1000).unref();
  });
}
