'use strict';
// The uWebSockets.js peer (server kind `uwsjs`): the subset of Troupe's protocol that
// ws-server.js speaks (connect, sub, unsub, pub, ping; MessagePack maps in binary frames),
// on uWS.js's own pub/sub: a subscriber is ws.subscribe(room), a push is encoded once per
// publish and handed to app.publish(room, frame, true), which uWS's TopicTree delivers to
// every subscriber (corking each socket's sends of one event-loop iteration together).
// uWS.js itself comes from the npm package `uwebsockets`, which republishes its binaries.
//
//   node uws-server.js [--port N] [--host H]     (port 0 picks a free port)
const uWS = require('uwebsockets');
const { Encoder, decodeMulti } = require('@msgpack/msgpack');

function arg(name, dflt) {
  const i = process.argv.indexOf(name);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : dflt;
}
const port = Number(arg('--port', '8080'));
const host = arg('--host', '127.0.0.1') || '127.0.0.1';

const encoder = new Encoder();
const pack = (obj) => encoder.encode(obj);

const seqs = new Map(); // room -> last seq
let nextClient = 1;
const validRoom = /^[A-Za-z0-9_\-:.@]{1,128}$/;

function error(ws, id, code, reason) {
  ws.send(pack({ t: 'error', id, code, reason }), true);
}

// Returns false when the socket was closed.
function handle(ws, s, m) {
  if (m === null || typeof m !== 'object' || typeof m.t !== 'string') {
    error(ws, undefined, 'bad_request', 'not a map with t');
    return true;
  }
  const id = m.id;
  if (!s.user) {
    if (m.t !== 'connect') {
      ws.end(4401, 'connect first');
      return false;
    }
    s.user = typeof m.user === 'string' ? m.user : 'anon-' + nextClient;
    s.client = 'c' + nextClient++;
    ws.send(pack({ t: 'connected', id, client: s.client, user: s.user, ping: 25 }), true);
    return true;
  }
  switch (m.t) {
    case 'sub': {
      if (typeof m.room !== 'string' || !validRoom.test(m.room)) {
        error(ws, id, 'bad_request', 'room');
        break;
      }
      if (!seqs.has(m.room)) seqs.set(m.room, 0);
      ws.subscribe(m.room);
      ws.send(pack({
        t: 'subscribed', id, room: m.room, seq: seqs.get(m.room), epoch: 'mem', recovered: false,
        msgs: [], pseq: 0, members: [],
      }), true);
      break;
    }
    case 'unsub':
      if (typeof m.room === 'string') ws.unsubscribe(m.room);
      ws.send(pack({ t: 'unsubscribed', id, room: m.room }), true);
      break;
    case 'pub': {
      if (typeof m.room !== 'string' || !validRoom.test(m.room) || m.data === undefined) {
        error(ws, id, 'bad_request', 'room/data');
        break;
      }
      const seq = (seqs.get(m.room) || 0) + 1;
      seqs.set(m.room, seq);
      ws.send(pack({ t: 'ack', id, room: m.room, seq }), true);
      app.publish(m.room, pack({ t: 'msg', room: m.room, seq, user: s.user, data: m.data, ts: Date.now() }), true);
      break;
    }
    case 'ping':
      ws.send(pack({ t: 'pong', id }), true);
      break;
    default:
      error(ws, id, 'bad_request', 'unknown t');
  }
  return true;
}

const app = uWS.App().ws('/*', {
  compression: uWS.DISABLED,
  maxPayloadLength: 1 << 20,
  idleTimeout: 0, // the other peers time nothing out either
  // Never drop a push for backpressure: the benchmark counts every delivery.
  maxBackpressure: 1 << 30,
  closeOnBackpressureLimit: false,
  sendPingsAutomatically: false,
  open: (ws) => {
    const s = ws.getUserData();
    s.user = null;
    s.client = null;
  },
  message: (ws, message, isBinary) => {
    if (!isBinary) return ws.end(1003, 'binary frames only');
    const s = ws.getUserData();
    // `message` is only valid during this call: everything sent is encoded before it returns.
    try {
      for (const m of decodeMulti(new Uint8Array(message))) {
        if (!handle(ws, s, m)) return;
      }
    } catch (e) {
      error(ws, undefined, 'bad_request', 'undecodable');
    }
  },
});

let listenSocket = null;
app.listen(host, port, (token) => {
  if (!token) {
    console.error(`cannot listen on ${host}:${port}`);
    process.exit(1);
  }
  listenSocket = token;
  console.log(`listening on ${host}:${uWS.us_socket_local_port(token)}`);
});

for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    if (listenSocket) uWS.us_listen_socket_close(listenSocket);
    process.exit(0);
  });
}
