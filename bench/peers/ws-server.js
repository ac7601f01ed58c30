'use strict';
// A minimal broadcast server on node's `ws`, speaking the subset of Troupe's protocol the
// benchmark uses (connect, sub, unsub, pub, ping), so the same load generator drives it.
// Written the way a ws user would: one Set of sockets per room, the push encoded once per
// broadcast and that one buffer handed to every subscriber's send(). No history, no
// presence, no auth: it is the baseline Troupe has to beat, not a second engine.
//
//   node ws-server.js [--port N] [--host H]     (port 0 picks a free port)
const { WebSocketServer } = require('ws');
const { Encoder, decodeMulti } = require('@msgpack/msgpack');

function arg(name, dflt) {
  const i = process.argv.indexOf(name);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : dflt;
}
const port = Number(arg('--port', '8080'));
const host = arg('--host', '127.0.0.1');

const encoder = new Encoder();
// Encoder.encode copies out of its scratch buffer; wrap the copy as a Buffer without a
// second copy so ws.send takes it as is.
function pack(obj) {
  const u8 = encoder.encode(obj);
  return Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength);
}

const rooms = new Map(); // name -> { seq, subs: Set<WebSocket> }
function room(name) {
  let r = rooms.get(name);
  if (!r) {
    r = { seq: 0, subs: new Set() };
    rooms.set(name, r);
  }
  return r;
}

let nextClient = 1;
const validRoom = /^[A-Za-z0-9_\-:.@]{1,128}$/;

function error(ws, id, code, reason) {
  ws.send(pack({ t: 'error', id, code, reason }));
}

function handle(ws, m) {
  if (m === null || typeof m !== 'object' || typeof m.t !== 'string') {
    return error(ws, undefined, 'bad_request', 'not a map with t');
  }
  const id = m.id;
  if (!ws.user) {
    if (m.t !== 'connect') return ws.close(4401, 'connect first');
    ws.user = typeof m.user === 'string' ? m.user : 'anon-' + nextClient;
    ws.client = 'c' + nextClient++;
    return ws.send(pack({ t: 'connected', id, client: ws.client, user: ws.user, ping: 25 }));
  }
  switch (m.t) {
    case 'sub': {
      if (typeof m.room !== 'string' || !validRoom.test(m.room)) {
        return error(ws, id, 'bad_request', 'room');
      }
      const r = room(m.room);
      r.subs.add(ws);
      ws.rooms.add(m.room);
      return ws.send(pack({
        t: 'subscribed', id, room: m.room, seq: r.seq, epoch: 'mem', recovered: false,
        msgs: [], pseq: 0, members: [],
      }));
    }
    case 'unsub': {
      const r = rooms.get(m.room);
      if (r) r.subs.delete(ws);
      ws.rooms.delete(m.room);
      return ws.send(pack({ t: 'unsubscribed', id, room: m.room }));
    }
    case 'pub': {
      if (typeof m.room !== 'string' || !validRoom.test(m.room) || m.data === undefined) {
        return error(ws, id, 'bad_request', 'room/data');
      }
      const r = room(m.room);
      const seq = ++r.seq;
      ws.send(pack({ t: 'ack', id, room: m.room, seq }));
      const frame = pack({ t: 'msg', room: m.room, seq, user: ws.user, data: m.data, ts: Date.now() });
      for (const sub of r.subs) sub.send(frame);
      return;
    }
    case 'ping':
      return ws.send(pack({ t: 'pong', id }));
    default:
      return error(ws, id, 'bad_request', 'unknown t');
  }
}

const wss = new WebSocketServer({ host, port, path: '/ws', maxPayload: 1 << 20 });

wss.on('connection', (ws) => {
  ws.user = null;
  ws.rooms = new Set();
  ws.on('message', (data, isBinary) => {
    if (!isBinary) return ws.close(1003, 'binary frames only');
    try {
      for (const m of decodeMulti(data)) handle(ws, m);
    } catch (e) {
      error(ws, undefined, 'bad_request', 'undecodable');
    }
  });
  ws.on('close', () => {
    for (const name of ws.rooms) {
      const r = rooms.get(name);
      if (r) r.subs.delete(ws);
    }
  });
  ws.on('error', () => {});
});

wss.on('listening', () => {
  console.log(`listening on ${host}:${wss.address().port}`);
});

for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    for (const c of wss.clients) c.terminate();
    wss.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 1000).unref();
  });
}
