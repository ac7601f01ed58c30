'use strict';
// The same broadcast service on Socket.IO 4 with its MessagePack parser, written the way a
// Socket.IO user would: rooms are socket.join(), a publish is io.to(room).emit('msg', …),
// replies are acknowledgement callbacks. The adapter encodes a broadcast once and hands
// the encoded packet to every member's Engine.IO socket.
//
//   node socketio-server.js [--port N] [--host H]     (port 0 picks a free port)
//
// Events (each acknowledged): 'sub' (room) -> {room, seq}; 'unsub' (room) -> {room};
// 'pub' ({room, data}) -> {room, seq}, and every member of the room gets
// 'msg' {room, seq, user, data, ts}. The user comes from the CONNECT packet's auth.user.
const http = require('http');
const { Server } = require('socket.io');
const parser = require('socket.io-msgpack-parser');

function arg(name, dflt) {
  const i = process.argv.indexOf(name);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : dflt;
}
const port = Number(arg('--port', '8080'));
const host = arg('--host', '127.0.0.1');

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
    const seq = (seqs.get(m.room) || 0) + 1;
    seqs.set(m.room, seq);
    ack({ room: m.room, seq });
    io.to(m.room).emit('msg', { room: m.room, seq, user, data: m.data, ts: Date.now() });
  });
});

httpServer.listen(port, host, () => {
  console.log(`listening on ${host}:${httpServer.address().port}`);
});

for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    io.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 1000).unref();
  });
}
