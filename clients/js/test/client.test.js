// Client: handshake, batching, requests, errors, timeouts, reconnect, keep-alive.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Client } from "../src/client.js";
import { TroupeError } from "../src/errors.js";
import { connectedClient, fakeWebSocketClass, handshake, settle, subscribed, until } from "../test-support/fake-websocket.js";

test("connect sends connect with token, user and name, then stores the connected reply", async () => {
  const WS = fakeWebSocketClass();
  const client = new Client({ url: "ws://engine/ws", WebSocket: WS, token: "jwt", user: "ann", name: "Ann" });
  const states = [];
  client.on("state", (e) => states.push(e.state));
  const done = client.connect();
  const ws = await WS.nth(0);
  assert.equal(ws.url, "ws://engine/ws");
  assert.equal(ws.binaryType, "arraybuffer");
  ws.open();
  const c = await ws.take("connect");
  assert.deepEqual(c, { t: "connect", id: c.id, token: "jwt", user: "ann", name: "Ann" });
  assert.ok(Number.isInteger(c.id) && c.id > 0);
  ws.deliver({ t: "connected", id: c.id, client: "n-7", user: "ann", ping: 25 });
  await done;
  assert.equal(client.state, "connected");
  assert.equal(client.clientId, "n-7");
  assert.equal(client.user, "ann");
  assert.deepEqual(states, ["connecting", "connected"]);
  client.close();
  assert.equal(client.state, "closed");
  assert.deepEqual(ws.closedWith, { code: 1000, reason: "bye" });
});

test("optional fields left out are absent from the map, not nil", async () => {
  const WS = fakeWebSocketClass();
  const client = new Client({ url: "ws://engine/ws", WebSocket: WS });
  const done = client.connect();
  const ws = await WS.nth(0);
  ws.open();
  const c = await ws.take("connect");
  assert.deepEqual(Object.keys(c).sort(), ["id", "t"]);
  client.close();
  await assert.rejects(done, (err) => err.code === "closed");
});

test("a token function is asked for a fresh token on each connect", async () => {
  const WS = fakeWebSocketClass();
  let n = 0;
  const client = new Client({
    url: "ws://engine/ws",
    WebSocket: WS,
    token: async () => `tok-${++n}`,
    backoff: { initialMs: 1, maxMs: 1 },
  });
  client.connect().catch(() => {});
  const ws0 = await WS.nth(0);
  ws0.open();
  assert.equal((await ws0.take("connect")).token, "tok-1");
  ws0.serverClose(1006);
  const ws1 = await WS.nth(1);
  ws1.open();
  assert.equal((await ws1.take("connect")).token, "tok-2");
  client.close();
});

test("requests made in one tick go out as one frame; a frame of several maps is all handled", async () => {
  const { client, ws } = await connectedClient();
  const framesBefore = ws.frames.length;
  const a = client._request({ t: "ping" });
  const b = client._request({ t: "ping" });
  const room = client.room("lobby");
  const pub = room.publish({ text: "hi" });
  await until(() => ws.frames.length > framesBefore);
  await settle();
  assert.equal(ws.frames.length, framesBefore + 1, "one frame");
  const frame = ws.frames.at(-1);
  assert.deepEqual(frame.map((m) => m.t), ["ping", "ping", "pub"]);
  const ids = frame.map((m) => m.id);
  assert.equal(new Set(ids).size, 3, "unique ids");
  const [pa, pb, pp] = frame;
  // The engine answers in one frame, out of order.
  ws.deliver({ t: "ack", id: pp.id, room: "lobby", seq: 4 }, { t: "pong", id: pb.id }, { t: "pong", id: pa.id });
  assert.deepEqual(await a, { t: "pong", id: pa.id });
  assert.deepEqual(await b, { t: "pong", id: pb.id });
  assert.deepEqual(await pub, { seq: 4 });
  client.close();
});

test("an error reply rejects with a TroupeError carrying code and reason", async () => {
  const { client, ws } = await connectedClient();
  const p = client.room("secret").history(0);
  const h = await ws.take("history");
  assert.deepEqual(h, { t: "history", id: h.id, room: "secret", since: 0 });
  ws.deliver({ t: "error", id: h.id, code: "forbidden", reason: "not for you" });
  await assert.rejects(p, (err) => {
    assert.ok(err instanceof TroupeError);
    assert.ok(err instanceof Error);
    assert.equal(err.code, "forbidden");
    assert.equal(err.reason, "not for you");
    return true;
  });
  client.close();
});

test("an error without id is reported through the error event", async () => {
  const { client, ws } = await connectedClient();
  const errors = [];
  client.on("error", (e) => errors.push(e));
  ws.deliver({ t: "error", code: "not_subscribed", reason: "typing in lobby" });
  assert.equal(errors.length, 1);
  assert.equal(errors[0].code, "not_subscribed");
  client.close();
});

test("a request without a reply in time fails with timeout; a late reply is ignored", async () => {
  const { client, ws } = await connectedClient({ requestTimeoutMs: 30 });
  const t0 = Date.now();
  const p = client._request({ t: "ping" });
  const sent = await ws.take("ping");
  await assert.rejects(p, (err) => err.code === "timeout");
  assert.ok(Date.now() - t0 >= 25);
  ws.deliver({ t: "pong", id: sent.id }); // late: nothing happens
  assert.equal(client.state, "connected");
  client.close();
});

test("ping() measures a round trip", async () => {
  const { client, ws } = await connectedClient();
  const p = client.ping();
  const sent = await ws.take("ping");
  ws.deliver({ t: "pong", id: sent.id });
  const ms = await p;
  assert.equal(typeof ms, "number");
  assert.ok(ms >= 0);
  client.close();
});

test("a refused token rejects connect() and ends without reconnecting", async () => {
  const WS = fakeWebSocketClass();
  const client = new Client({ url: "ws://engine/ws", WebSocket: WS, token: "bad", backoff: { initialMs: 1, maxMs: 1 } });
  const states = [];
  const errors = [];
  client.on("state", (e) => states.push(e));
  client.on("error", (e) => errors.push(e));
  const done = client.connect();
  const ws = await WS.nth(0);
  ws.open();
  const c = await ws.take("connect");
  ws.deliver({ t: "error", id: c.id, code: "unauthorized", reason: "bad signature" });
  ws.serverClose(4403, "token refused");
  await assert.rejects(done, (err) => err.code === "unauthorized" && err.reason === "bad signature");
  await settle();
  await settle();
  assert.equal(WS.sockets.length, 1, "no reconnect");
  assert.equal(client.state, "closed");
  assert.equal(states.at(-1).state, "closed");
  assert.equal(errors[0].code, "unauthorized");
  await assert.rejects(client._request({ t: "ping" }), (err) => err.code === "closed");
});

test("reconnects with exponential backoff and jitter, capped at maxMs", async () => {
  const WS = fakeWebSocketClass();
  const client = new Client({
    url: "ws://engine/ws",
    WebSocket: WS,
    backoff: { initialMs: 4, maxMs: 20, factor: 2, jitter: 0.5 },
    random: () => 0.5,
  });
  const delays = [];
  client.on("state", (e) => e.state === "reconnecting" && delays.push(e.retryInMs));
  client.connect().catch(() => {});
  // The engine is down: every attempt fails before it opens.
  for (let i = 0; i < 5; i++) (await WS.nth(i)).serverClose(1006, "refused");
  await WS.nth(5);
  // base 4, 8, 16, 20, 20; with random 0.5 the delay is 3/4 of the base.
  assert.deepEqual(delays, [3, 6, 12, 15, 15]);
  client.close();
});

test("jitter spreads each delay over [base/2, base]", async () => {
  for (const [r, want] of [
    [0, 50],
    [0.999999, 100],
  ]) {
    const WS = fakeWebSocketClass();
    const client = new Client({ url: "ws://engine/ws", WebSocket: WS, backoff: { initialMs: 100 }, random: () => r });
    const delays = [];
    client.on("state", (e) => e.state === "reconnecting" && delays.push(e.retryInMs));
    client.connect().catch(() => {});
    (await WS.nth(0)).serverClose(1006);
    assert.deepEqual(delays, [want]);
    client.close();
  }
});

test("the backoff starts again after a connection that lasted", async () => {
  const { client, WS, ws, states } = await connectedClient({ backoff: { initialMs: 4, maxMs: 30, jitter: 0 } });
  ws.serverClose(1006); // lasted less than maxMs: the backoff keeps growing from attempt 0
  const ws1 = await WS.nth(1);
  ws1.serverClose(1006);
  const ws2 = await WS.nth(2);
  await handshake(ws2);
  await until(() => client.state === "connected");
  await new Promise((r) => setTimeout(r, 40)); // lasts longer than maxMs
  ws2.serverClose(1006);
  const delays = states.filter((e) => e.state === "reconnecting").map((e) => e.retryInMs);
  assert.deepEqual(delays, [4, 8, 4]);
  client.close();
});

test("state events: connecting, connected, reconnecting {code, reason, retryInMs}, connected, closed", async () => {
  const { client, WS, ws, states } = await connectedClient({ backoff: { initialMs: 1, maxMs: 1 } });
  ws.serverClose(4503, "shutting down");
  await handshake(await WS.nth(1));
  await until(() => client.state === "connected");
  client.close();
  assert.deepEqual(
    states.map((e) => e.state),
    ["connecting", "connected", "reconnecting", "connected", "closed"],
  );
  const r = states[2];
  assert.equal(r.code, 4503);
  assert.equal(r.reason, "shutting down");
  assert.equal(r.retryInMs, 1);
});

test("requests in flight: non-idempotent ones fail with disconnected, keyed publishes are resent after resubscribing", async () => {
  const { client, WS, ws } = await connectedClient({ backoff: { initialMs: 1, maxMs: 1 } });
  const room = client.room("lobby");
  const sub = room.subscribe();
  await subscribed(ws, room, { seq: 3 });
  await sub;
  const hist = room.history(0);
  const pub = room.publish("hello", { key: "k-1" });
  const autoKeyed = room.publish("again");
  const p1 = await ws.take("pub", (m) => m.key === "k-1");
  const p2 = await ws.take("pub", (m) => m.data === "again");
  assert.equal(typeof p2.key, "string");
  assert.ok(p2.key.length > 4);
  ws.serverClose(1006);
  await assert.rejects(hist, (err) => err.code === "disconnected");

  const ws1 = await WS.nth(1);
  await handshake(ws1);
  const resub = await ws1.take("sub");
  assert.deepEqual(resub.since, { seq: 3, epoch: "e1" });
  const r1 = await ws1.take("pub", (m) => m.key === "k-1");
  const r2 = await ws1.take("pub", (m) => m.key === p2.key);
  assert.equal(r1.data, "hello");
  assert.equal(r2.data, "again");
  const order = ws1.sent.map((m) => m.t);
  assert.ok(order.indexOf("sub") < order.indexOf("pub"), "resubscribed before resending");
  assert.ok(r1.id > 0 && p1.id > 0);
  ws1.deliver({ t: "ack", id: r1.id, room: "lobby", seq: 4 }, { t: "ack", id: r2.id, room: "lobby", seq: 5 });
  assert.deepEqual(await pub, { seq: 4 });
  assert.deepEqual(await autoKeyed, { seq: 5 });
  client.close();
});

test("requests made while disconnected wait and go out after the resubscriptions", async () => {
  const { client, WS, ws } = await connectedClient({ backoff: { initialMs: 5, maxMs: 5 } });
  const room = client.room("lobby");
  const sub = room.subscribe();
  await subscribed(ws, room, { seq: 1 });
  await sub;
  ws.serverClose(1006);
  assert.equal(client.state, "reconnecting");
  const hist = room.history(0, 10);
  const pub = room.publish(42);
  client._send({ t: "custom", room: "lobby" });
  const ws1 = await WS.nth(1);
  await handshake(ws1);
  await ws1.take("custom");
  assert.deepEqual(
    ws1.sent.map((m) => m.t),
    ["connect", "sub", "history", "pub", "custom"],
  );
  const h = ws1.sentOf("history")[0];
  assert.equal(h.limit, 10);
  ws1.deliver({ t: "history", id: h.id, room: "lobby", seq: 1, epoch: "e1", msgs: [] });
  const p = ws1.sentOf("pub")[0];
  ws1.deliver({ t: "ack", id: p.id, room: "lobby", seq: 2 });
  assert.deepEqual((await hist).messages, []);
  assert.deepEqual(await pub, { seq: 2 });
  client.close();
});

test("requests made before connect() are sent once connected", async () => {
  const WS = fakeWebSocketClass();
  const client = new Client({ url: "ws://engine/ws", WebSocket: WS });
  const p = client._request({ t: "ping" });
  client.connect();
  const ws = await WS.nth(0);
  await handshake(ws);
  const ping = await ws.take("ping");
  ws.deliver({ t: "pong", id: ping.id });
  assert.equal((await p).t, "pong");
  client.close();
});

test("_request with resend: true is sent again after the reconnect hooks ran", async () => {
  const { client, WS, ws } = await connectedClient({ backoff: { initialMs: 1, maxMs: 1 } });
  const calls = [];
  client._onReconnected(() => {
    calls.push("hook");
    client._send({ t: "hooked", room: "doc" });
  });
  const op = client._request({ t: "op", room: "doc", rev: 0, op: ["x"], key: "K" }, { resend: true });
  const first = await ws.take("op");
  ws.serverClose(1006);
  const ws1 = await WS.nth(1);
  await handshake(ws1);
  const again = await ws1.take("op");
  assert.deepEqual(calls, ["hook"]);
  assert.equal(again.key, "K");
  assert.deepEqual(again.op, first.op);
  const order = ws1.sent.map((m) => m.t);
  assert.ok(order.indexOf("hooked") < order.indexOf("op"), "after the hooks");
  ws1.deliver({ t: "ack", id: again.id, room: "doc", rev: 1 });
  assert.equal((await op).rev, 1);
  client.close();
});

test("_onReconnected is not called on the first connection; its unsubscribe works", async () => {
  const WS = fakeWebSocketClass();
  const client = new Client({ url: "ws://engine/ws", WebSocket: WS, backoff: { initialMs: 1, maxMs: 1 } });
  let n = 0;
  const off = client._onReconnected(() => n++);
  client.connect();
  await handshake(await WS.nth(0));
  await until(() => client.state === "connected");
  assert.equal(n, 0);
  (await WS.nth(0)).serverClose(1006);
  await handshake(await WS.nth(1));
  await until(() => n === 1);
  off();
  (await WS.nth(1)).serverClose(1006);
  await handshake(await WS.nth(2));
  await until(() => client.state === "connected");
  assert.equal(n, 1);
  client.close();
});

test("_route hands pushes of one kind and room to their handlers", async () => {
  const { client, ws } = await connectedClient();
  const got = [];
  const off = client._route("doc", "op", (m) => got.push(m.rev));
  ws.deliver(
    { t: "op", room: "doc", rev: 1, op: ["a"], user: "u", key: "k" },
    { t: "op", room: "other", rev: 9, op: ["b"], user: "u", key: "k" },
    { t: "op", room: "doc", rev: 2, op: ["c"], user: "u", key: "k" },
  );
  assert.deepEqual(got, [1, 2]);
  off();
  ws.deliver({ t: "op", room: "doc", rev: 3, op: [], user: "u", key: "k" });
  assert.deepEqual(got, [1, 2]);
  client.close();
});

test("code awaiting a reply runs before the pushes that follow it in the same frame", async () => {
  const { client, ws } = await connectedClient();
  const log = [];
  client._route("doc", "op", (m) => log.push(`op ${m.rev}`));
  const opened = (async () => {
    const reply = await client._request({ t: "open", room: "doc" });
    log.push(`opened ${reply.rev}`);
  })();
  const open = await ws.take("open");
  ws.deliver({ t: "opened", id: open.id, room: "doc", rev: 5, epoch: "e", text: "", pseq: 0, members: [] }, { t: "op", room: "doc", rev: 6, op: [], user: "u", key: "k" });
  await opened;
  await until(() => log.length === 2);
  assert.deepEqual(log, ["opened 5", "op 6"]);
  client.close();
});

test("a disconnect map with reconnect: false stops reconnecting", async () => {
  const { client, WS, ws, states } = await connectedClient({ backoff: { initialMs: 1, maxMs: 1 } });
  const pending = client._request({ t: "ping" });
  await ws.take("ping");
  ws.deliver({ t: "disconnect", code: 4401, reason: "go away", reconnect: false });
  ws.serverClose(4401, "");
  await assert.rejects(pending, (err) => err.code === "disconnected");
  await settle();
  await settle();
  assert.equal(WS.sockets.length, 1);
  assert.equal(client.state, "closed");
  assert.deepEqual({ ...states.at(-1) }, { state: "closed", code: 4401, reason: "go away" });
});

test("close codes 4403 and 4429 do not reconnect; 4500 does", async () => {
  for (const code of [4403, 4429]) {
    const { client, WS, ws } = await connectedClient({ backoff: { initialMs: 1, maxMs: 1 } });
    ws.serverClose(code, "no");
    await settle();
    await settle();
    assert.equal(WS.sockets.length, 1, `code ${code}`);
    assert.equal(client.state, "closed");
  }
  const { client, WS, ws } = await connectedClient({ backoff: { initialMs: 1, maxMs: 1 } });
  ws.deliver({ t: "disconnect", code: 4500, reason: "slow consumer", reconnect: true });
  ws.serverClose(4500, "slow consumer");
  await WS.nth(1);
  assert.equal(client.state, "reconnecting");
  client.close();
});

test("keep-alive: pings every ping interval; silence for 2 × ping drops and reconnects", async () => {
  // A 250 ms ping (dead after 500 ms of silence): wide enough that a busy machine's event-loop
  // stalls (ctest runs this beside the C++ tests) are not taken for a dead engine.
  const { client, WS, ws, states } = await connectedClient({ backoff: { initialMs: 1, maxMs: 1 } }, { ping: 0.25 });
  // Answer three pings: the connection stays.
  for (let i = 0; i < 3; i++) {
    const p = await ws.take("ping");
    ws.deliver({ t: "pong", id: p.id });
  }
  assert.equal(client.state, "connected");
  assert.equal(WS.sockets.length, 1);
  // Then the engine goes silent.
  await WS.nth(1);
  const r = states.find((e) => e.state === "reconnecting");
  assert.equal(r.code, 1006);
  assert.match(r.reason, /ping/);
  assert.ok(ws.closedWith, "the dead socket was closed");
  client.close();
});

test("close() fails pending requests with closed, and later ones too", async () => {
  const { client, ws } = await connectedClient();
  const p = client._request({ t: "ping" });
  await ws.take("ping");
  client.close();
  await assert.rejects(p, (err) => err.code === "closed");
  await assert.rejects(client._request({ t: "ping" }), (err) => err.code === "closed");
  await assert.rejects(client.room("x").subscribe(), (err) => err.code === "closed");
});

test("room() and document() return one object per name", async () => {
  const client = new Client({ url: "ws://engine/ws", WebSocket: fakeWebSocketClass() });
  assert.equal(client.room("a"), client.room("a"));
  assert.notEqual(client.room("a"), client.room("b"));
  assert.equal(client.document("a"), client.document("a"));
  assert.equal(client.document("a").room, "a");
  client.close();
});

test("frames that are not MessagePack are reported, the connection stays", async () => {
  const { client, ws } = await connectedClient();
  const errors = [];
  client.on("error", (e) => errors.push(e.code));
  ws.onmessage({ data: new Uint8Array([0xc1]).buffer });
  ws.onmessage({ data: "text" });
  assert.deepEqual(errors, ["protocol_error", "protocol_error"]);
  assert.equal(client.state, "connected");
  client.close();
});

test("rpc sends {t:rpc, method, data} and resolves with the result's data (null when none)", async () => {
  const { client, ws } = await connectedClient();
  const p = client.rpc("cart.add", { sku: 7 });
  const r = await ws.take("rpc");
  assert.deepEqual(r, { t: "rpc", id: r.id, method: "cart.add", data: { sku: 7 } });
  ws.deliver({ t: "result", id: r.id, data: { total: 3 } });
  assert.deepEqual(await p, { total: 3 });
  const q = client.rpc("ping.me");
  const r2 = await ws.take("rpc");
  assert.deepEqual(Object.keys(r2).sort(), ["id", "method", "t"]); // no data: absent
  ws.deliver({ t: "result", id: r2.id, data: null });
  assert.equal(await q, null);
  client.close();
});

test("rpc rejects with the contract's error code", async () => {
  const { client, ws } = await connectedClient();
  const p = client.rpc("cart.add", 1);
  const r = await ws.take("rpc");
  ws.deliver({ t: "error", id: r.id, code: "unavailable", reason: "the backend did not answer in time" });
  await assert.rejects(p, (err) => err instanceof TroupeError && err.code === "unavailable");
  await assert.rejects(client.rpc(""), TypeError);
  client.close();
});
