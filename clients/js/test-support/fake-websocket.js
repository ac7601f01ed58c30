// An in-memory WebSocket for unit tests: records what the client sends (decoded), lets the
// test open it, deliver server frames and close it. Kept out of test/ so that the test runner
// does not count it as a test file.
import { decodeMulti, encode } from "@msgpack/msgpack";
import { Client } from "../src/client.js";

const WAIT_MS = 2000;

/** Polls `cond` until it is truthy (returned), failing after `ms`. */
export async function until(cond, ms = WAIT_MS, what = "a condition") {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = cond();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 1));
  }
}

/** Lets queued microtasks and zero-delay timers run. */
export const settle = () => new Promise((r) => setTimeout(r, 2));

/** A fresh fake WebSocket class, with its own list of sockets. */
export function fakeWebSocketClass() {
  class FakeWebSocket {
    static sockets = [];
    constructor(url) {
      this.url = url;
      this.readyState = 0;
      this.binaryType = "blob";
      this.frames = []; // each: the maps of one frame
      this.sent = []; // all maps, in order
      this.taken = new Set();
      this.closedWith = null;
      FakeWebSocket.sockets.push(this);
    }
    send(bytes) {
      if (this.readyState !== 1) throw new Error("send on a socket that is not open");
      if (!(bytes instanceof Uint8Array)) throw new Error("the client must send binary frames");
      const maps = [...decodeMulti(bytes)];
      this.frames.push(maps);
      this.sent.push(...maps);
    }
    close(code, reason) {
      if (this.readyState >= 2) return;
      this.readyState = 3;
      this.closedWith = { code, reason };
    }

    // ---- the test's side ----
    open() {
      this.readyState = 1;
      this.onopen?.({});
    }
    /** One frame holding all `maps`. */
    deliver(...maps) {
      const parts = maps.map((m) => encode(m));
      const frame = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
      let at = 0;
      for (const p of parts) {
        frame.set(p, at);
        at += p.length;
      }
      this.onmessage?.({ data: frame.buffer });
    }
    serverClose(code = 1006, reason = "") {
      this.readyState = 3;
      this.onclose?.({ code, reason });
    }
    /** The next sent map of type `t` (optionally matching `pred`) not taken before. */
    async take(t, pred = () => true) {
      return until(() => {
        const m = this.sent.find((x) => x.t === t && !this.taken.has(x) && pred(x));
        if (m) this.taken.add(m);
        return m;
      }, WAIT_MS, `a sent ${t}`);
    }
    sentOf(t) {
      return this.sent.filter((m) => m.t === t);
    }
  }
  FakeWebSocket.nth = (n) => until(() => FakeWebSocket.sockets[n], WAIT_MS, `socket #${n}`);
  return FakeWebSocket;
}

/** Completes the handshake on `ws`. */
export async function handshake(ws, { client = "n-1", user = "u1", ping = 25 } = {}) {
  ws.open();
  const c = await ws.take("connect");
  ws.deliver({ t: "connected", id: c.id, client, user, ping });
  return c;
}

/** A client connected through a fake socket. */
export async function connectedClient(options = {}, hello = {}) {
  const WS = fakeWebSocketClass();
  const client = new Client({ url: "ws://engine/ws", WebSocket: WS, requestTimeoutMs: 2000, ...options });
  const states = [];
  client.on("state", (e) => states.push(e));
  const done = client.connect();
  const ws = await WS.nth(0);
  await handshake(ws, hello);
  await done;
  return { client, WS, ws, states };
}

/** Subscribes `room` over `ws` and answers with `reply` fields. */
export async function subscribed(ws, room, reply = {}) {
  const sub = await ws.take("sub", (m) => m.room === room.name);
  ws.deliver({ t: "subscribed", id: sub.id, room: room.name, seq: 0, epoch: "e1", recovered: false, msgs: [], pseq: 0, members: [], ...reply });
  return sub;
}

export function msg(room, seq, extra = {}) {
  return { t: "msg", room, seq, user: "u2", data: { n: seq }, ts: 1000 + seq, ...extra };
}
