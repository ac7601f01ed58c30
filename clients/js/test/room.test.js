// Room: subscribe, ordered delivery, gaps filled from history, recovery after reconnects,
// publish, presence state, typing.
import assert from "node:assert/strict";
import { test } from "node:test";
import { connectedClient, handshake, msg, settle, subscribed } from "../test-support/fake-websocket.js";

async function subscribedRoom(reply = {}, options = {}) {
  const c = await connectedClient({ backoff: { initialMs: 1, maxMs: 1 }, ...options });
  const room = c.client.room("lobby");
  const got = [];
  const events = [];
  room.on("message", (m) => got.push(m.seq));
  room.on("subscribed", (e) => events.push(e));
  const p = room.subscribe();
  const sub = await subscribed(c.ws, room, reply);
  const first = await p;
  return { ...c, room, got, events, sub, first };
}

test("subscribe: sub without since, then the initial event with the newest messages", async () => {
  const { client, room, sub, first, events, ws } = await subscribedRoom({
    seq: 2,
    epoch: "E",
    msgs: [msg("lobby", 1), msg("lobby", 2, { key: "k2" })],
    pseq: 3,
    members: [{ client: "n-1", user: "u1" }],
  });
  assert.deepEqual(sub, { t: "sub", id: sub.id, room: "lobby" });
  assert.equal(first.kind, "initial");
  assert.equal(first.seq, 2);
  assert.equal(first.epoch, "E");
  assert.deepEqual(first.messages[1], { room: "lobby", seq: 2, user: "u2", data: { n: 2 }, ts: 1002, key: "k2" });
  assert.equal(events.length, 1);
  assert.equal(room.seq, 2);
  assert.equal(room.epoch, "E");
  assert.equal(room.subscribed, true);
  assert.equal(room.presence.pseq, 3);
  // A second subscribe() while subscribed answers at once, without another sub.
  assert.equal(await room.subscribe(), first);
  await settle();
  assert.equal(ws.sentOf("sub").length, 1);
  client.close();
});

test("pushes are delivered in order, duplicates dropped", async () => {
  const { client, ws, got } = await subscribedRoom({ seq: 3 });
  ws.deliver(msg("lobby", 4), msg("lobby", 5), msg("lobby", 4), msg("lobby", 3), msg("lobby", 6));
  assert.deepEqual(got, [4, 5, 6]);
  await settle();
  assert.equal(ws.sentOf("history").length, 0, "a repeat is no gap");
  client.close();
});

test("a gap is filled from history: held pushes wait, every seq is delivered once in order", async () => {
  const { client, ws, room, got } = await subscribedRoom({ seq: 3 });
  ws.deliver(msg("lobby", 6));
  const h = await ws.take("history");
  assert.deepEqual(h, { t: "history", id: h.id, room: "lobby", since: 3 });
  ws.deliver(msg("lobby", 7), msg("lobby", 6)); // more pushes (and a repeat) while waiting
  assert.deepEqual(got, []);
  ws.deliver({ t: "history", id: h.id, room: "lobby", seq: 7, epoch: "e1", msgs: [4, 5, 6, 7].map((n) => msg("lobby", n)) });
  assert.deepEqual(got, [4, 5, 6, 7]);
  ws.deliver(msg("lobby", 8), msg("lobby", 7));
  assert.deepEqual(got, [4, 5, 6, 7, 8]);
  assert.equal(room.seq, 8);
  client.close();
});

test("a history page that does not reach the held pushes is followed by the next page", async () => {
  const { client, ws, got } = await subscribedRoom({ seq: 0 });
  ws.deliver(msg("lobby", 5));
  const h1 = await ws.take("history");
  ws.deliver({ t: "history", id: h1.id, room: "lobby", seq: 5, epoch: "e1", msgs: [msg("lobby", 1), msg("lobby", 2)] });
  const h2 = await ws.take("history");
  assert.equal(h2.since, 2);
  ws.deliver({ t: "history", id: h2.id, room: "lobby", seq: 5, epoch: "e1", msgs: [msg("lobby", 3), msg("lobby", 4), msg("lobby", 5)] });
  assert.deepEqual(got, [1, 2, 3, 4, 5]);
  client.close();
});

test("history that no longer reaches back: resubscribe without since, kind rebuilt", async () => {
  const { client, ws, got, events, room } = await subscribedRoom({ seq: 3 });
  ws.deliver(msg("lobby", 900));
  const h = await ws.take("history");
  ws.deliver({ t: "history", id: h.id, room: "lobby", seq: 900, epoch: "e1", msgs: [msg("lobby", 800), msg("lobby", 801)] });
  const sub = await ws.take("sub");
  assert.equal(sub.since, undefined);
  ws.deliver(msg("lobby", 901)); // ignored until the new subscription answers
  ws.deliver({ t: "subscribed", id: sub.id, room: "lobby", seq: 901, epoch: "e1", recovered: false, msgs: [msg("lobby", 900), msg("lobby", 901)], pseq: 0, members: [] });
  assert.deepEqual(got, []);
  assert.equal(events.at(-1).kind, "rebuilt");
  assert.deepEqual(events.at(-1).messages.map((m) => m.seq), [900, 901]);
  ws.deliver(msg("lobby", 902));
  assert.deepEqual(got, [902]);
  assert.equal(room.seq, 902);
  client.close();
});

test("a new epoch in the history reply also rebuilds", async () => {
  const { client, ws, events } = await subscribedRoom({ seq: 3 });
  ws.deliver(msg("lobby", 5));
  const h = await ws.take("history");
  ws.deliver({ t: "history", id: h.id, room: "lobby", seq: 5, epoch: "e2", msgs: [msg("lobby", 4), msg("lobby", 5)] });
  const sub = await ws.take("sub");
  assert.equal(sub.since, undefined);
  ws.deliver({ t: "subscribed", id: sub.id, room: "lobby", seq: 5, epoch: "e2", recovered: false, msgs: [], pseq: 0, members: [] });
  assert.equal(events.at(-1).kind, "rebuilt");
  client.close();
});

test("after a reconnect: sub with since; recovered delivers the missed messages, then the event", async () => {
  const { client, WS, ws, got, events, room } = await subscribedRoom({ seq: 3 });
  ws.serverClose(1006);
  assert.equal(room.subscribed, true, "still wanted while reconnecting");
  const ws1 = await WS.nth(1);
  await handshake(ws1, { client: "n-2" });
  const sub = await ws1.take("sub");
  assert.deepEqual(sub.since, { seq: 3, epoch: "e1" });
  const order = [];
  room.on("message", (m) => order.push(`msg ${m.seq}`));
  room.on("subscribed", (e) => order.push(e.kind));
  ws1.deliver(
    { t: "subscribed", id: sub.id, room: "lobby", seq: 5, epoch: "e1", recovered: true, msgs: [msg("lobby", 4), msg("lobby", 5)], pseq: 0, members: [] },
    msg("lobby", 6),
  );
  assert.deepEqual(order, ["msg 4", "msg 5", "recovered", "msg 6"]);
  assert.deepEqual(got, [4, 5, 6]);
  assert.equal(events.at(-1).kind, "recovered");
  client.close();
});

test("after a reconnect: not recovered means rebuilt with the newest messages", async () => {
  const { client, WS, ws, got, events, room } = await subscribedRoom({ seq: 3 });
  ws.serverClose(1006);
  const ws1 = await WS.nth(1);
  await handshake(ws1);
  const sub = await ws1.take("sub");
  assert.deepEqual(sub.since, { seq: 3, epoch: "e1" });
  ws1.deliver({ t: "subscribed", id: sub.id, room: "lobby", seq: 2000, epoch: "e9", recovered: false, msgs: [msg("lobby", 2000)], pseq: 0, members: [] });
  assert.deepEqual(got, []);
  assert.equal(events.at(-1).kind, "rebuilt");
  assert.equal(room.seq, 2000);
  assert.equal(room.epoch, "e9");
  client.close();
});

test("subscribe before connect(): the sub goes out once connected", async () => {
  const { Client } = await import("../src/client.js");
  const { fakeWebSocketClass } = await import("../test-support/fake-websocket.js");
  const WS = fakeWebSocketClass();
  const client = new Client({ url: "ws://engine/ws", WebSocket: WS });
  const room = client.room("early");
  const p = room.subscribe();
  client.connect();
  const ws = await WS.nth(0);
  await handshake(ws);
  await subscribed(ws, room, { seq: 9 });
  assert.equal((await p).seq, 9);
  assert.equal(ws.sentOf("sub").length, 1);
  client.close();
});

test("a refused sub rejects subscribe()", async () => {
  const { client, ws } = await connectedClient();
  const room = client.room("secret");
  const p = room.subscribe();
  const sub = await ws.take("sub");
  ws.deliver({ t: "error", id: sub.id, code: "forbidden", reason: "" });
  await assert.rejects(p, (err) => err.code === "forbidden");
  assert.equal(room.subscribed, false);
  client.close();
});

test("unsubscribe sends unsub; later pushes are not delivered", async () => {
  const { client, ws, room, got } = await subscribedRoom({ seq: 1 });
  const p = room.unsubscribe();
  const u = await ws.take("unsub");
  assert.deepEqual(u, { t: "unsub", id: u.id, room: "lobby" });
  ws.deliver({ t: "unsubscribed", id: u.id, room: "lobby" }, msg("lobby", 2));
  await p;
  assert.deepEqual(got, []);
  assert.equal(room.subscribed, false);
  client.close();
});

test("publish carries a generated key (distinct per call) or the given one", async () => {
  const { client, ws, room } = await subscribedRoom();
  const a = room.publish({ x: 1 });
  const b = room.publish("b", { key: "mine" });
  const c = room.publish(null);
  const pa = await ws.take("pub", (m) => m.data?.x === 1);
  const pb = await ws.take("pub", (m) => m.key === "mine");
  const pc = await ws.take("pub", (m) => m.data === null);
  assert.notEqual(pa.key, pc.key);
  assert.equal(pb.data, "b");
  ws.deliver({ t: "ack", id: pa.id, room: "lobby", seq: 1 }, { t: "ack", id: pb.id, room: "lobby", seq: 2 }, { t: "ack", id: pc.id, room: "lobby", seq: 3 });
  assert.deepEqual([await a, await b, await c], [{ seq: 1 }, { seq: 2 }, { seq: 3 }]);
  client.close();
});

test("history(since, limit) returns messages", async () => {
  const { client, ws, room } = await subscribedRoom();
  const p = room.history(10, 2);
  const h = await ws.take("history");
  assert.deepEqual(h, { t: "history", id: h.id, room: "lobby", since: 10, limit: 2 });
  ws.deliver({ t: "history", id: h.id, room: "lobby", seq: 20, epoch: "e1", msgs: [msg("lobby", 11), msg("lobby", 12)] });
  const r = await p;
  assert.equal(r.seq, 20);
  assert.equal(r.epoch, "e1");
  assert.deepEqual(r.messages.map((m) => m.seq), [11, 12]);
  client.close();
});

test("setState: pset once subscribed, set again after a reconnect's resubscription", async () => {
  const { client, WS, ws } = await connectedClient({ backoff: { initialMs: 1, maxMs: 1 } });
  const room = client.room("lobby");
  const sub = room.subscribe();
  const early = room.setState({ status: "away" }); // before the subscription is live: waits
  await settle();
  assert.equal(ws.sentOf("pset").length, 0);
  await subscribed(ws, room, { members: [{ client: "n-1", user: "u1" }] });
  await sub;
  const ps = await ws.take("pset");
  assert.deepEqual(ps, { t: "pset", id: ps.id, room: "lobby", state: { status: "away" } });
  ws.deliver({ t: "ok", id: ps.id });
  await early;

  const again = room.setState({ status: "busy" });
  const ps2 = await ws.take("pset");
  ws.serverClose(1006); // before the ok: set again after resubscribing
  const ws1 = await WS.nth(1);
  await handshake(ws1, { client: "n-2" });
  const sub2 = await ws1.take("sub");
  await settle();
  assert.equal(ws1.sentOf("pset").length, 0, "not before the subscription");
  ws1.deliver({ t: "subscribed", id: sub2.id, room: "lobby", seq: 0, epoch: "e1", recovered: true, msgs: [], pseq: 0, members: [{ client: "n-2", user: "u1" }] });
  const ps3 = await ws1.take("pset");
  assert.deepEqual(ps3.state, { status: "busy" });
  assert.equal(ps2.state.status, "busy");
  ws1.deliver({ t: "ok", id: ps3.id });
  await again;
  client.close();
});

test("setState refused keeps the last accepted state", async () => {
  const { client, ws, room, WS } = await subscribedRoom({ members: [{ client: "n-1", user: "u1" }] });
  const ok = room.setState({ s: 1 });
  const p1 = await ws.take("pset");
  ws.deliver({ t: "ok", id: p1.id });
  await ok;
  const big = room.setState({ s: "x".repeat(2000) });
  const p2 = await ws.take("pset");
  ws.deliver({ t: "error", id: p2.id, code: "too_large", reason: "" });
  await assert.rejects(big, (e) => e.code === "too_large");
  ws.serverClose(1006);
  const ws1 = await WS.nth(1);
  await handshake(ws1);
  await subscribed(ws1, room, { members: [{ client: "n-1", user: "u1" }] });
  const p3 = await ws1.take("pset");
  assert.deepEqual(p3.state, { s: 1 });
  client.close();
});

test("setState in a room not subscribed (a document holds it) goes out as is; a drop fails it", async () => {
  const { client, ws } = await connectedClient({ backoff: { initialMs: 1, maxMs: 1 } });
  const room = client.room("notes");
  const a = room.setState({ cursor: { rev: 1, pos: 2 } });
  const p1 = await ws.take("pset");
  ws.deliver({ t: "ok", id: p1.id });
  await a;
  const b = room.setState({ cursor: { rev: 1, pos: 3 } });
  await ws.take("pset");
  ws.serverClose(1006);
  await assert.rejects(b, (err) => err.code === "disconnected");
  client.close();
});

// Node 18's mock timers take an array (Node 20 an options object) and fire an interval at
// most once per tick(): the test ticks one interval at a time.
function mockIntervals(t) {
  const major = Number(process.versions.node.split(".")[0]);
  t.mock.timers.enable(major < 20 ? ["setInterval"] : { apis: ["setInterval"] });
}

test("typing: on at once, refreshed every 3 s while the calls go on, lapses after 6 s quiet", async (t) => {
  mockIntervals(t);
  const { client, ws, room } = await subscribedRoom();
  const typings = () => ws.sentOf("typing");
  room.typing(true);
  await settle();
  assert.deepEqual(typings(), [{ t: "typing", room: "lobby", on: true }]);
  assert.equal(typings()[0].id, undefined);
  room.typing(true);
  room.typing(true);
  await settle();
  assert.equal(typings().length, 1, "calls within the window send nothing");
  t.mock.timers.tick(3000); // keystrokes happened: refresh
  await settle();
  assert.equal(typings().length, 2);
  t.mock.timers.tick(3000); // quiet tick
  await settle();
  assert.equal(typings().length, 2);
  room.typing(true); // after a quiet tick the last on:true is old: send now
  await settle();
  assert.equal(typings().length, 3);
  t.mock.timers.tick(3000); // two quiet ticks: lapsed
  await settle();
  t.mock.timers.tick(3000);
  await settle();
  room.typing(false); // nothing to turn off
  await settle();
  assert.equal(typings().length, 3);
  room.typing(true);
  room.typing(false);
  room.typing(false);
  await settle();
  assert.deepEqual(typings().slice(3).map((m) => m.on), [true, false]);
  client.close();
});

test("typing from others: listed with their name, own client excluded, dropped when they leave", async () => {
  const { client, ws, room } = await subscribedRoom({
    pseq: 1,
    members: [
      { client: "n-1", user: "u1", name: "Me" },
      { client: "n-5", user: "u5", name: "Eve" },
      { client: "n-6", user: "u6" },
    ],
  });
  const seen = [];
  room.on("typing", (users) => seen.push(users.map((u) => u.client)));
  ws.deliver(
    { t: "typing", room: "lobby", user: "u1", client: "n-1", on: true }, // ourselves
    { t: "typing", room: "lobby", user: "u5", client: "n-5", on: true },
    { t: "typing", room: "lobby", user: "u6", client: "n-6", on: true },
    { t: "typing", room: "lobby", user: "u6", client: "n-6", on: true },
  );
  assert.deepEqual(room.typingUsers, [
    { user: "u5", client: "n-5", name: "Eve" },
    { user: "u6", client: "n-6" },
  ]);
  assert.deepEqual(seen, [["n-5"], ["n-5", "n-6"]]);
  ws.deliver({ t: "typing", room: "lobby", user: "u5", client: "n-5", on: false });
  assert.deepEqual(room.typingUsers.map((u) => u.client), ["n-6"]);
  // n-6 leaves without its on:false: dropped with its presence entry.
  ws.deliver({ t: "pdiff", room: "lobby", pseq: 2, joins: [], leaves: [{ client: "n-6", user: "u6" }] });
  assert.deepEqual(room.typingUsers, []);
  assert.deepEqual(seen.at(-1), []);
  client.close();
});

test("typing is cleared when the connection drops", async () => {
  const { client, ws, room } = await subscribedRoom();
  ws.deliver({ t: "typing", room: "lobby", user: "u5", client: "n-5", on: true });
  assert.equal(room.typingUsers.length, 1);
  ws.serverClose(1006);
  assert.deepEqual(room.typingUsers, []);
  client.close();
});

test("a Message event carries room, seq, user, data, ts", async () => {
  const { client, ws, room } = await subscribedRoom({ seq: 0 });
  const got = [];
  room.on("message", (m) => got.push(m));
  ws.deliver({ t: "msg", room: "lobby", seq: 1, user: "bob", data: [1, "two"], ts: 1700000000000 });
  assert.deepEqual(got, [{ room: "lobby", seq: 1, user: "bob", data: [1, "two"], ts: 1700000000000 }]);
  client.close();
});
