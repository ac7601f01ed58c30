// The document client, driven through a fake client (the internal hooks TextDocument uses) and
// a tiny simulated engine: a sequencer that transforms late operations over accepted ones with
// the contract's tie rule, dedups by key, keeps a short log, answers open with since, and keeps
// presence. The network is a pair of FIFO queues per connection that the test steps through,
// drops and reconnects.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as ot from "../src/ot.js";
import { TextDocument } from "../src/document.js";
import { TroupeError } from "../src/errors.js";
import { prng } from "../test-support/prng.js";

const ROOM = "doc";
const tick = () => new Promise((resolve) => setImmediate(resolve));
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
// Waits until `done()` holds, polling, for at most `ms`: the throttles run on real timers.
async function until(done, ms = 2000) {
  const deadline = Date.now() + ms;
  while (!done()) {
    if (Date.now() > deadline) throw new Error("timed out waiting");
    await sleep(5);
  }
}


// ---- the simulated engine ----------------------------------------------------------------------

class Server {
  constructor({ logLimit = 1000, epoch = "e1" } = {}) {
    this.logLimit = logLimit;
    this.epoch = epoch;
    this.text = "";
    this.rev = 0;
    this.log = []; // {rev, op, user, key}, the last logLimit
    this.keys = new Map(); // key -> rev
    this.applied = 0;
    this.conflicts = 0;
    this.holders = new Set();
    this.members = new Map(); // conn id -> entry
    this.pseq = 0;
    this.refuse = null; // (conn, msg) -> error code or null: injected failures
  }

  handle(conn, msg) {
    const reply = (m) => conn.toClient.push({ ...m, id: msg.id, room: msg.room });
    const error = (code, reason = "") => conn.toClient.push({ t: "error", id: msg.id, code, reason });
    const injected = this.refuse?.(conn, msg);
    if (injected) return error(injected, "injected");
    switch (msg.t) {
      case "open": {
        this.holders.add(conn);
        if (!this.members.has(conn.id)) {
          this.members.set(conn.id, { client: conn.id, user: conn.user });
          this.pseq++;
          this.presenceToAll(conn);
        }
        const base = { t: "opened", rev: this.rev, epoch: this.epoch, pseq: this.pseq, members: this.memberList() };
        const s = msg.since;
        if (s && s.epoch === this.epoch && s.rev <= this.rev && s.rev >= this.rev - this.log.length) {
          return reply({ ...base, recovered: true, ops: this.log.filter((o) => o.rev > s.rev) });
        }
        return reply({ ...base, text: this.text });
      }
      case "op": {
        if (this.keys.has(msg.key)) return reply({ t: "ack", rev: this.keys.get(msg.key) });
        if (msg.rev > this.rev) return error("bad_request", "a revision not reached");
        if (msg.rev < this.rev - this.log.length) {
          this.conflicts++;
          return error("conflict", "older than the log");
        }
        let op = msg.op;
        for (const o of this.log) if (o.rev > msg.rev) op = ot.transform(op, o.op, "left");
        if (ot.baseLength(op) > ot.length(this.text)) return error("bad_request", "does not fit");
        op = ot.normalize(op);
        this.text = ot.apply(this.text, op);
        this.rev++;
        this.applied++;
        const entry = { rev: this.rev, op, user: conn.user, key: msg.key };
        this.log.push(entry);
        if (this.log.length > this.logLimit) this.log.shift();
        this.keys.set(msg.key, this.rev);
        for (const h of this.holders) if (h !== conn) h.toClient.push({ t: "op", room: ROOM, ...entry });
        return reply({ t: "ack", rev: this.rev });
      }
      case "pset": {
        const m = this.members.get(conn.id);
        if (!m) return error("not_subscribed");
        m.state = msg.state;
        this.pseq++;
        reply({ t: "ok" });
        return this.presenceToAll(null);
      }
      case "close":
        this.leave(conn);
        return reply({ t: "closed" });
      default:
        return error("bad_request", "unknown t");
    }
  }

  memberList() {
    return [...this.members.values()].map((m) => ({ ...m }));
  }

  // The fake's presence push: a whole list (the real client's tracker applies pdiffs; the
  // document only reads `members` and the "presence" event).
  presenceToAll(except) {
    for (const h of this.holders)
      if (h !== except) h.toClient.push({ t: "_presence", room: ROOM, pseq: this.pseq, members: this.memberList() });
  }

  leave(conn) {
    this.holders.delete(conn);
    if (this.members.delete(conn.id)) {
      this.pseq++;
      this.presenceToAll(conn);
    }
  }
}

// ---- the fake client: the hooks document.js uses ---------------------------------------------------

let connections = 0;

class FakeClient {
  constructor(server, user) {
    this.server = server;
    this.user = user;
    this.conn = null;
    this.nextId = 0;
    this.pending = new Map(); // id -> {resolve, reject}
    this.waiting = []; // requests made while disconnected
    this.routes = new Map();
    this.reconnectHooks = new Set();
    this.rooms = new Map();
    this.sent = []; // every request map, for assertions
    this.connect();
  }

  get clientId() {
    return this.conn?.id;
  }

  connect() {
    this.conn = { id: `conn${++connections}`, user: this.user, toServer: [], toClient: [], alive: true };
  }

  // The connection drops: both queues are lost, requests on the wire fail with "disconnected".
  drop() {
    if (!this.conn?.alive) return;
    this.conn.alive = false;
    this.server.leave(this.conn);
    for (const p of this.pending.values()) p.reject(new TroupeError("disconnected", "dropped"));
    this.pending.clear();
    this.conn = null;
  }

  reconnect() {
    if (this.conn) return;
    this.connect();
    for (const fn of [...this.reconnectHooks]) fn();
    for (const w of this.waiting.splice(0)) this.transmit(w);
  }

  _request(map, { resend = false } = {}) {
    return new Promise((resolve, reject) => {
      const w = { map, resolve, reject, resend };
      if (this.conn) this.transmit(w);
      else this.waiting.push(w);
    });
  }

  transmit(w) {
    const msg = { ...structuredClone(w.map), id: ++this.nextId };
    this.sent.push(msg);
    this.pending.set(msg.id, w);
    this.conn.toServer.push(msg);
  }

  _send() {}

  _route(room, kind, fn) {
    const key = `${kind} ${room}`;
    if (!this.routes.has(key)) this.routes.set(key, new Set());
    const entry = (m) => fn(m);
    this.routes.get(key).add(entry);
    return () => this.routes.get(key).delete(entry);
  }

  _onReconnected(fn) {
    const entry = () => fn();
    this.reconnectHooks.add(entry);
    return () => this.reconnectHooks.delete(entry);
  }

  room(name) {
    let r = this.rooms.get(name);
    if (!r) {
      const listeners = new Set();
      const client = this;
      r = {
        presence: {
          pseq: 0,
          members: [],
          _reset(pseq, members) {
            this.pseq = pseq;
            this.members = members ?? [];
          },
        },
        states: [],
        on(event, fn) {
          assert.equal(event, "presence");
          listeners.add(fn);
          return () => listeners.delete(fn);
        },
        emit() {
          for (const fn of listeners) fn(this.presence);
        },
        setState(state) {
          this.states.push(structuredClone(state));
          return client._request({ t: "pset", room: name, state }).then(() => undefined);
        },
      };
      this.rooms.set(name, r);
    }
    return r;
  }

  // Delivers what the server sent (a reply, an op push or a presence list).
  deliver(m) {
    if (m.id !== undefined) {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (m.t === "error") p.reject(new TroupeError(m.code, m.reason));
      else p.resolve(m);
    } else if (m.t === "_presence") {
      const r = this.room(m.room);
      r.presence._reset(m.pseq, m.members);
      r.emit();
    } else {
      for (const fn of this.routes.get(`${m.t} ${m.room}`) ?? []) fn(m);
    }
  }

  // One step of the network, each way.
  toServer() {
    const m = this.conn?.toServer.shift();
    if (m) this.server.handle(this.conn, m);
    return !!m;
  }
  toClient() {
    const m = this.conn?.toClient.shift();
    if (m) this.deliver(m);
    return !!m;
  }
  busy() {
    return !!this.conn && (this.conn.toServer.length > 0 || this.conn.toClient.length > 0);
  }
}

// A client with its document, opened.
async function editor(server, user, timing = {}) {
  const client = new FakeClient(server, user);
  const doc = new TextDocument(client, ROOM);
  Object.assign(doc._timing, { cursorThrottleMs: 0, cursorRefreshMs: 0, retryMs: 1 }, timing);
  const events = { state: [], change: [], cursors: [], error: [] };
  for (const e of Object.keys(events)) doc.on(e, (x) => events[e].push(x));
  const opened = doc.open();
  await settle([client]);
  await opened;
  return { client, doc, events };
}

// Runs the network until nothing moves (timers included).
async function settle(clients) {
  for (let idle = 0; idle < 3; ) {
    let moved = false;
    for (const c of clients) {
      while (c.toServer()) moved = true;
      while (c.toClient()) moved = true;
    }
    await tick();
    if (moved || clients.some((c) => c.busy())) idle = 0;
    else {
      idle++;
      await sleep(3); // retry timers
    }
  }
}

function assertConverged(server, eds) {
  for (const { doc } of eds) {
    assert.equal(doc.pending, false, "nothing pending");
    assert.equal(doc.text, server.text, "the local text is the engine's");
    assert.equal(doc.rev, server.rev);
  }
}

// ---- basics ------------------------------------------------------------------------------------

test("open, edit in UTF-16 positions, ack, push to another client", async () => {
  const server = new Server();
  const a = await editor(server, "ann");
  const b = await editor(server, "bob");
  assert.deepEqual(a.events.state, [{ kind: "opened", rev: 0, dropped: false }]);
  assert.equal(a.doc.isOpen, true);

  a.doc.insert(0, "a😀b");
  assert.equal(a.doc.text, "a😀b");
  assert.equal(a.doc.pending, true);
  a.doc.insert(3, "𝄞"); // after 😀 (UTF-16 index 3), buffered behind the op in flight
  a.doc.remove(0, 1);
  assert.equal(a.doc.text, "😀𝄞b");
  assert.deepEqual(a.events.change.at(-1).splices, [{ index: 0, remove: 1, insert: "" }]);
  assert.equal(a.events.change.at(-1).remote, false);
  const synced = a.doc.whenSynced();
  await settle([a.client, b.client]);
  await synced;
  assertConverged(server, [a, b]);
  assert.equal(server.text, "😀𝄞b");
  // One op in flight at a time: the first, then the composed buffer.
  const ops = a.client.sent.filter((m) => m.t === "op");
  assert.deepEqual(
    ops.map((m) => [m.rev, m.op]),
    [
      [0, ["a😀b"]],
      [1, [-1, 1, "𝄞"]],
    ],
  );
  assert.notEqual(ops[0].key, ops[1].key);
  // Bob's change events are in UTF-16 of his text.
  assert.deepEqual(
    b.events.change.map((e) => e.splices),
    [[{ index: 0, remove: 0, insert: "a😀b" }], [{ index: 0, remove: 1, insert: "" }, { index: 2, remove: 0, insert: "𝄞" }]],
  );
  assert.equal(b.events.change.at(-1).remote, true);
});

test("replace and setText never split a surrogate pair", async () => {
  const server = new Server();
  const a = await editor(server, "ann");
  a.doc.setText("x😀y");
  a.doc.remove(2, 1); // the low half of 😀: the whole character goes
  assert.equal(a.doc.text, "xy");
  a.doc.setText("x😀y");
  a.doc.setText("x😁y"); // 😀 and 😁 share their high surrogate
  assert.equal(a.doc.text, "x😁y");
  assert.deepEqual(a.events.change.at(-1).splices, [{ index: 1, remove: 2, insert: "😁" }]);
  a.doc.replace(1, 2, "e\u0301");
  assert.equal(a.doc.text, "xe\u0301y");
  assert.throws(() => a.doc.insert(9, "z"), RangeError);
  assert.throws(() => a.doc.insert(0, "\uD83D"), TypeError);
  await settle([a.client]);
  assertConverged(server, [a]);
});

test("transformIndex moves a caret through splices", () => {
  const splices = [{ index: 2, remove: 3, insert: "xy" }];
  assert.equal(TextDocument.transformIndex(1, splices), 1);
  assert.equal(TextDocument.transformIndex(2, splices), 2);
  assert.equal(TextDocument.transformIndex(2, splices, "after"), 4);
  assert.equal(TextDocument.transformIndex(3, splices), 4); // inside the removed text
  assert.equal(TextDocument.transformIndex(5, splices), 4);
  assert.equal(TextDocument.transformIndex(7, splices), 6);
  const ins = [{ index: 0, remove: 0, insert: "😀" }, { index: 4, remove: 0, insert: "!" }];
  assert.equal(TextDocument.transformIndex(2, ins), 4);
  assert.equal(TextDocument.transformIndex(2, ins, "after"), 5);
});

test("concurrent inserts at one place: the later accepted goes first, everywhere", async () => {
  const server = new Server();
  const a = await editor(server, "ann");
  const b = await editor(server, "bob");
  a.doc.insert(0, "A");
  b.doc.insert(0, "B");
  // Ann's reaches the engine first; Bob's is accepted later and goes before it.
  a.client.toServer();
  b.client.toServer();
  await settle([a.client, b.client]);
  assert.equal(server.text, "BA");
  assertConverged(server, [a, b]);
});

test("edits while disconnected are sent after the reopen; close", async () => {
  const server = new Server();
  const a = await editor(server, "ann");
  a.doc.insert(0, "hello");
  await settle([a.client]);
  a.client.drop();
  await tick();
  a.doc.insert(5, " world");
  a.doc.insert(0, "¡");
  assert.equal(a.client.sent.filter((m) => m.t === "op").length, 1, "nothing sent while disconnected");
  a.client.reconnect();
  await settle([a.client]);
  assert.equal(a.events.state.at(-1).kind, "recovered");
  assert.deepEqual(a.client.sent.filter((m) => m.t === "open").at(-1).since, { rev: 1, epoch: "e1" });
  assertConverged(server, [a]);
  assert.equal(server.text, "¡hello world");
  const closed = a.doc.close();
  await settle([a.client]);
  await closed;
  assert.equal(a.doc.isOpen, false);
  assert.throws(() => a.doc.insert(0, "x"), (e) => e.code === "closed");
});

// ---- recovery ------------------------------------------------------------------------------------

test("an op whose ack was lost: the recovered open carries its key and counts as its ack", async () => {
  const server = new Server();
  const a = await editor(server, "ann");
  const b = await editor(server, "bob");
  a.doc.insert(0, "one");
  a.client.toServer(); // accepted
  a.client.drop(); // before the ack arrives
  await tick();
  a.doc.insert(3, " two"); // buffered
  b.doc.insert(0, ">");
  await settle([b.client]);
  a.client.reconnect();
  await settle([a.client, b.client]);
  assertConverged(server, [a, b]);
  assert.equal(server.text, ">one two");
  assert.equal(server.applied, 3, "each op applied once");
  assert.equal(a.events.state.at(-1).kind, "recovered");
});

test("an op in flight is resent with the same key after a reconnect", async () => {
  const server = new Server();
  const a = await editor(server, "ann");
  a.doc.insert(0, "x");
  a.client.drop(); // the op never reached the engine
  await tick();
  a.client.reconnect();
  await settle([a.client]);
  const ops = a.client.sent.filter((m) => m.t === "op");
  assert.equal(ops.length, 2);
  assert.equal(ops[0].key, ops[1].key);
  assertConverged(server, [a]);
});

test("a rev hole makes the document reopen with since", async () => {
  const server = new Server();
  const a = await editor(server, "ann");
  const b = await editor(server, "bob");
  b.doc.insert(0, "1");
  await settle([b.client]);
  b.doc.insert(1, "2");
  await settle([b.client]);
  const lost = a.client.conn.toClient.findIndex((m) => m.t === "op");
  assert.equal(a.client.conn.toClient.splice(lost, 1)[0].rev, 1); // the push of rev 1 is lost
  await settle([a.client, b.client]);
  const opens = a.client.sent.filter((m) => m.t === "open");
  assert.equal(opens.length, 2);
  assert.deepEqual(opens[1].since, { rev: 0, epoch: "e1" });
  assertConverged(server, [a, b]);
  assert.equal(a.doc.text, "12");
});

test("a push that overtakes the reply of a reopen is applied after it", async () => {
  const server = new Server();
  const a = await editor(server, "ann");
  const b = await editor(server, "bob");
  a.client.drop();
  await tick();
  a.client.reconnect();
  a.client.toServer(); // the reopen, answered
  b.doc.insert(0, "fresh");
  await settle([b.client]); // pushed to Ann after the reply…
  const q = a.client.conn.toClient;
  q.unshift(q.splice(q.findIndex((m) => m.t === "op"), 1)[0]); // …but handled before it
  await settle([a.client, b.client]);
  assert.equal(a.client.sent.filter((m) => m.t === "open").length, 2, "no extra reopen");
  assertConverged(server, [a, b]);
});

test("conflict: reopen with since and resend the same key", async () => {
  const server = new Server({ logLimit: 3 });
  const a = await editor(server, "ann");
  const b = await editor(server, "bob");
  a.doc.insert(0, "A"); // held on the way to the engine
  for (let i = 0; i < 5; i++) {
    b.doc.insert(0, String(i));
    await settle([b.client]);
  }
  a.client.toServer(); // conflict: its base rev 0 is older than the log (revs 3..5)
  await settle([a.client, b.client]);
  const ops = a.client.sent.filter((m) => m.t === "op");
  assert.equal(ops.length, 2);
  assert.equal(ops[0].key, ops[1].key);
  assert.equal(ops[1].rev, 5);
  assertConverged(server, [a, b]);
  assert.equal(server.text, "A43210"); // accepted last, so first at the tie
  assert.equal(a.events.state.at(-1).dropped, false);
});

test("a second conflict for one key: rebuild, telling the user local edits were dropped", async () => {
  const server = new Server({ logLimit: 2 });
  const a = await editor(server, "ann");
  const b = await editor(server, "bob");
  const burst = async () => {
    for (let i = 0; i < 3; i++) {
      b.doc.insert(0, "b");
      await settle([b.client]);
    }
  };
  a.doc.insert(0, "A");
  await burst();
  a.client.toServer(); // conflict
  while (a.client.toClient()) await tick(); // pushes, the conflict: a reopen goes out
  await tick();
  a.client.toServer(); // the reopen: recovered
  a.client.toClient();
  await tick(); // the resend is on its way…
  await burst(); // …and the log moves past it again
  await settle([a.client, b.client]);
  const rebuilt = a.events.state.at(-1);
  assert.equal(rebuilt.kind, "rebuilt");
  assert.equal(rebuilt.dropped, true);
  assert.ok(a.events.error.some((e) => e.code === "conflict"));
  assertConverged(server, [a, b]);
  assert.equal(server.text, "bbbbbb");
});

test("bad_request drops what is pending and rebuilds", async () => {
  const server = new Server();
  const a = await editor(server, "ann");
  server.refuse = (conn, msg) => (msg.t === "op" ? "bad_request" : null);
  a.doc.insert(0, "nope");
  await settle([a.client]);
  server.refuse = null;
  assert.deepEqual(a.events.state.at(-1), { kind: "rebuilt", rev: 0, dropped: true });
  assert.equal(a.doc.text, "");
  assert.equal(a.events.change.at(-1).remote, true);
  assertConverged(server, [a]);
});

test("unavailable and rate_limited: retried later with the same key", async () => {
  const server = new Server();
  const a = await editor(server, "ann");
  let refusals = 0;
  server.refuse = (conn, msg) => (msg.t === "op" && refusals++ < 2 ? (refusals === 1 ? "unavailable" : "rate_limited") : null);
  a.doc.insert(0, "later");
  await settle([a.client]);
  const ops = a.client.sent.filter((m) => m.t === "op");
  assert.equal(ops.length, 3);
  assert.equal(new Set(ops.map((m) => m.key)).size, 1);
  assertConverged(server, [a]);
});

test("a new epoch: the document is rebuilt from the engine's text", async () => {
  const server = new Server();
  const a = await editor(server, "ann");
  a.doc.insert(0, "old");
  await settle([a.client]);
  a.client.drop();
  server.epoch = "e2"; // the engine lost its history
  server.text = "new";
  server.rev = 1;
  server.log = [];
  await tick();
  a.client.reconnect();
  await settle([a.client]);
  assert.deepEqual(a.events.state.at(-1), { kind: "rebuilt", rev: 1, dropped: false });
  assert.equal(a.doc.text, "new");
  assert.equal(a.doc.epoch, "e2");
});

// ---- random interleavings ---------------------------------------------------------------------

const PIECES = ["a", "bc", "😀", "𝄞", "é", "e\u0301", "\n", "中文"];

async function randomRun(seed, { steps, clients: n, mode, logLimit = 1000 }) {
  const rnd = prng(seed);
  const server = new Server({ logLimit });
  const eds = [];
  for (let i = 0; i < n; i++) eds.push(await editor(server, `u${i}`));
  const made = []; // markers inserted (insert-only mode)
  let refusals = 0;
  server.refuse = (conn, msg) => (msg.t === "op" && rnd() < 0.03 ? (refusals++, rnd() < 0.5 ? "unavailable" : "rate_limited") : null);

  for (let step = 0; step < steps; step++) {
    const e = rnd.pick(eds);
    const { client, doc } = e;
    const r = rnd();
    if (r < 0.3) {
      const t = doc.text;
      if (mode === "insert") {
        // Unique markers, only at marker boundaries, so each must appear exactly once.
        const marker = `[${client.user}.${made.length}${rnd.pick(PIECES)}]`;
        const bounds = [0, ...[...t.matchAll(/\]/g)].map((m) => m.index + 1)];
        doc.insert(rnd.pick(bounds), marker);
        made.push(marker);
      } else {
        const i = rnd.int(t.length + 1);
        const len = rnd.int(Math.min(4, t.length - i) + 1);
        const k = rnd();
        if (k < 0.4) doc.insert(i, rnd.pick(PIECES));
        else if (k < 0.7) doc.remove(i, len);
        else if (k < 0.9) doc.replace(i, len, rnd.pick(PIECES));
        else {
          // Whole characters: a text with half a surrogate pair is refused.
          const at = (u) => ot.toUtf16(t, ot.toCodePoints(t, u));
          doc.setText(t.slice(0, at(i)) + rnd.pick(PIECES) + t.slice(at(i + len)));
        }
      }
    } else if (r < 0.55) client.toServer();
    else if (r < 0.85) client.toClient();
    else if (r < 0.88) client.drop();
    else if (r < 0.95) client.reconnect();
    await tick();
  }
  server.refuse = null;
  for (const e of eds) e.client.reconnect();
  await settle(eds.map((e) => e.client));
  assertConverged(server, eds);
  // Everyone shows everyone else's cursor where its owner put it.
  const carets = new Map();
  for (const { client, doc } of eds) {
    const t = doc.text;
    const at = ot.toUtf16(t, ot.toCodePoints(t, rnd.int(t.length + 1)));
    doc.setCursor(at);
    carets.set(client.clientId, at);
  }
  await settle(eds.map((e) => e.client));
  for (const { client, doc } of eds) {
    const shown = new Map(doc.cursors.map((c) => [c.client, c.position]));
    assert.deepEqual(shown, new Map([...carets].filter(([id]) => id !== client.clientId)));
  }

  const dropped = eds.some((e) => e.events.state.some((s) => s.dropped));
  if (logLimit >= steps) assert.ok(!dropped, "nothing dropped");
  if (mode === "insert") {
    for (const m of made) {
      const times = server.text.split(m).length - 1;
      if (dropped) assert.ok(times <= 1, `${m} applied at most once`);
      else assert.equal(times, 1, `${m} applied exactly once`);
    }
    if (!dropped) assert.equal(server.text.length, made.join("").length);
  }
  const sent = eds.flatMap((e) => e.client.sent);
  const stats = {
    refusals,
    reopens: sent.filter((m) => m.t === "open" && m.since).length,
    resent: sent.filter((m) => m.t === "op").length - new Set(sent.filter((m) => m.t === "op").map((m) => m.key)).size,
    conflicts: server.conflicts,
    kinds: eds.flatMap((e) => e.events.state.map((s) => s.kind + (s.dropped ? "!" : ""))).join(" "),
    applied: server.applied,
  };
  if (process.env.DOC_STATS) console.log(seed, stats);
  return stats;
}

for (const seed of [1, 2, 3]) {
  test(`random interleavings, drops and resends (seed ${seed}): all converge, each op applied once`, async () => {
    await randomRun(seed, { steps: 1500, clients: 3, mode: "insert" });
  });
  test(`random edits of every kind (seed ${seed}): all converge`, async () => {
    await randomRun(100 + seed, { steps: 1500, clients: 3, mode: "mixed" });
  });
  test(`random interleavings with a short kept log (seed ${seed}): conflicts, rebuilds, still one text`, async () => {
    const stats = await randomRun(200 + seed, { steps: 1500, clients: 3, mode: "insert", logLimit: 3 });
    assert.ok(stats.reopens > 0);
  });
}

// ---- cursors --------------------------------------------------------------------------------------

test("remote cursors: placed in UTF-16, moved by remote and local edits, parked until their rev", async () => {
  const server = new Server();
  const a = await editor(server, "ann");
  const b = await editor(server, "bob");
  const c = await editor(server, "cy");
  const all = () => [a.client, b.client, c.client];
  a.doc.insert(0, "a😀b𝄞c");
  await settle(all());
  a.doc.setCursor(6); // before "c": code point 4
  await settle(all());
  assert.deepEqual(a.client.room(ROOM).states.at(-1), { cursor: { rev: 1, pos: 4 } });
  assert.deepEqual(b.doc.cursors, [{ client: a.client.clientId, user: "ann", position: 6 }]);
  assert.deepEqual(b.events.cursors.at(-1), b.doc.cursors);

  // Bob's own pending edit before it moves it (local text).
  b.doc.insert(0, "😀");
  assert.equal(b.doc.cursors[0].position, 8);
  // Cy's edit before it, through Bob's pending one.
  c.doc.insert(1, "𝄞𝄞");
  await settle([c.client]);
  c.client.toServer();
  while (b.client.toClient()) await tick();
  assert.equal(b.doc.text, "😀a𝄞𝄞😀b𝄞c");
  assert.equal(b.doc.cursors[0].position, 12);
  // An edit after it does not move it.
  c.doc.insert(c.doc.text.length, "!");
  await settle(all());
  assert.equal(b.doc.cursors[0].position, 12);

  // A cursor for a rev Bob has not reached yet is parked: the old one stays on show.
  const bRev = b.doc.rev;
  c.doc.insert(0, "zz");
  c.client.toServer(); // accepted at bRev + 1, pushed to Bob (not delivered yet)
  const held = b.client.conn.toClient.splice(0); // that push
  // Cy's cursor at that rev reaches Bob first (as if published through another path).
  server.members.get(c.client.clientId).state = { cursor: { rev: bRev + 1, pos: 1, anchor: 2 } };
  b.client.deliver({ t: "_presence", room: ROOM, pseq: 99, members: server.memberList() });
  assert.equal(b.doc.cursors.length, 1, "Cy's cursor waits for its rev");
  for (const m of held) b.client.deliver(m);
  await tick();
  const cy = b.doc.cursors.find((x) => x.user === "cy");
  assert.deepEqual({ position: cy.position, anchor: cy.anchor }, { position: 1, anchor: 2 });
  assert.equal(b.doc.cursors.find((x) => x.user === "ann").position, 14);

  // A member that leaves takes its cursor along.
  a.client.drop();
  await settle([b.client, c.client]);
  assert.deepEqual(b.doc.cursors.map((x) => x.user), ["cy"]);
});

test("a cursor published at an older rev is moved through the kept ops", async () => {
  const server = new Server();
  const a = await editor(server, "ann");
  const b = await editor(server, "bob");
  a.doc.insert(0, "𝄞xyz");
  await settle([a.client, b.client]);
  a.doc.setCursor(3); // after "x": code point 2, at rev 1
  a.client.toServer(); // the pset reaches the engine…
  b.doc.insert(0, "😀😀"); // …while Bob edits before it
  await settle([b.client]);
  await settle([a.client, b.client]);
  assert.equal(b.doc.rev, 2);
  assert.equal(b.doc.cursors[0].position, 7); // 😀😀𝄞x|
});

test("own cursor: not published while edits are pending, throttled, refreshed as the rev moves", async () => {
  const server = new Server();
  const a = await editor(server, "ann", { cursorThrottleMs: 60, cursorRefreshMs: 150 });
  const b = await editor(server, "bob");
  const states = a.client.room(ROOM).states;
  a.doc.insert(0, "hello");
  a.doc.setCursor(5);
  assert.equal(states.length, 0, "pending: not yet");
  await settle([a.client, b.client]);
  assert.deepEqual(states.map((s) => s.cursor), [{ rev: 1, pos: 5 }]);
  for (let i = 0; i < 5; i++) a.doc.setCursor(i, 5);
  assert.equal(states.length, 1, "throttled");
  await until(() => states.length === 2); // once the 60 ms throttle has passed
  assert.deepEqual(states.at(-1).cursor, { rev: 1, pos: 4, anchor: 5 });
  assert.equal(states.length, 2);
  // Others' edits move the rev (and our cursor with them): republished, at most every 150 ms.
  const n = states.length;
  b.doc.insert(0, "»");
  await settle([a.client, b.client]);
  assert.equal(states.length, n);
  await until(() => states.at(-1).cursor.rev === 2); // the refresh, within 150 ms
  await settle([a.client, b.client]);
  assert.deepEqual(states.at(-1).cursor, { rev: 2, pos: 5, anchor: 6 });
  const closed = a.doc.close();
  await settle([a.client, b.client]);
  await closed;
});
