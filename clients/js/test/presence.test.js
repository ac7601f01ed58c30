// Presence: views by user and by connection, diffs in pseq order, state changes, holes.
import assert from "node:assert/strict";
import { test } from "node:test";
import { connectedClient, handshake, settle, subscribed } from "../test-support/fake-websocket.js";

const e = (client, user, extra = {}) => ({ client, user, ...extra });

async function presenceRoom(pseq, members) {
  const c = await connectedClient({ backoff: { initialMs: 1, maxMs: 1 } });
  const room = c.client.room("lobby");
  const changes = [];
  room.on("presence", (view) => changes.push(view.members.map((m) => m.client)));
  const p = room.subscribe();
  await subscribed(c.ws, room, { pseq, members });
  await p;
  return { ...c, room, view: room.presence, changes };
}

test("the subscribed reply's members: by user in order of arrival, by client", async () => {
  const { client, view, changes } = await presenceRoom(4, [
    e("n-1", "ann", { name: "Ann" }),
    e("n-2", "bob", { name: "Bob", info: { role: "admin" } }),
    e("n-3", "ann", { name: "Ann", state: { status: "away" } }),
  ]);
  assert.equal(view.pseq, 4);
  assert.deepEqual(view.members.map((m) => m.client), ["n-1", "n-2", "n-3"]);
  const byUser = view.byUser();
  assert.deepEqual(byUser.map((u) => [u.user, u.name, u.connections.map((c) => c.client)]), [
    ["ann", "Ann", ["n-1", "n-3"]],
    ["bob", "Bob", ["n-2"]],
  ]);
  const byClient = view.byClient();
  assert.ok(byClient instanceof Map);
  assert.deepEqual(byClient.get("n-3").state, { status: "away" });
  assert.deepEqual(byClient.get("n-2").info, { role: "admin" });
  assert.equal(changes.length, 1, "one presence event for the snapshot");
  client.close();
});

test("pdiffs in order: joins appended, leaves removed, a state change keeps its place", async () => {
  const { client, ws, view, changes } = await presenceRoom(1, [e("n-1", "ann"), e("n-2", "bob")]);
  ws.deliver({ t: "pdiff", room: "lobby", pseq: 2, joins: [], leaves: [] }); // our own arrival: nothing
  assert.equal(changes.length, 1);
  assert.equal(view.pseq, 2);
  ws.deliver({ t: "pdiff", room: "lobby", pseq: 3, joins: [e("n-3", "cat")], leaves: [] });
  ws.deliver({
    t: "pdiff",
    room: "lobby",
    pseq: 4,
    joins: [e("n-1", "ann", { state: { typing: "x" } })],
    leaves: [e("n-1", "ann")],
  });
  assert.deepEqual(view.members.map((m) => m.client), ["n-1", "n-2", "n-3"]);
  assert.deepEqual(view.byClient().get("n-1").state, { typing: "x" });
  ws.deliver({ t: "pdiff", room: "lobby", pseq: 5, joins: [], leaves: [e("n-2", "bob")] });
  assert.deepEqual(view.members.map((m) => m.client), ["n-1", "n-3"]);
  assert.deepEqual(view.byUser().map((u) => u.user), ["ann", "cat"]);
  assert.equal(view.pseq, 5);
  assert.equal(changes.length, 4);
  // Old or repeated diffs change nothing.
  ws.deliver({ t: "pdiff", room: "lobby", pseq: 5, joins: [e("n-9", "zed")], leaves: [] });
  assert.equal(view.members.length, 2);
  await settle();
  assert.equal(ws.sentOf("presence").length, 0);
  client.close();
});

test("a reconnect within the grace period (old leaves, new joins, one diff) keeps the user's place", async () => {
  const { client, ws, view } = await presenceRoom(1, [e("n-1", "ann"), e("n-2", "bob"), e("n-3", "cat")]);
  ws.deliver({ t: "pdiff", room: "lobby", pseq: 2, joins: [e("n-7", "bob")], leaves: [e("n-2", "bob")] });
  assert.deepEqual(view.byUser().map((u) => u.user), ["ann", "bob", "cat"]);
  assert.deepEqual(view.members.map((m) => m.client), ["n-1", "n-7", "n-3"]);
  client.close();
});

test("a pseq hole: later diffs held, presence fetched, held diffs past its pseq applied", async () => {
  const { client, ws, view, changes } = await presenceRoom(1, [e("n-1", "ann")]);
  ws.deliver({ t: "pdiff", room: "lobby", pseq: 3, joins: [e("n-3", "cat")], leaves: [] }); // 2 missed
  const req = await ws.take("presence");
  assert.deepEqual(req, { t: "presence", id: req.id, room: "lobby" });
  ws.deliver(
    { t: "pdiff", room: "lobby", pseq: 4, joins: [e("n-4", "dan")], leaves: [] },
    { t: "pdiff", room: "lobby", pseq: 5, joins: [e("n-5", "eve")], leaves: [] },
  );
  assert.deepEqual(view.members.map((m) => m.client), ["n-1"], "held while fetching");
  // The list as diff 4 left it (2, 3 and 4 included); diff 5 then applies on top.
  ws.deliver({ t: "presence", id: req.id, room: "lobby", pseq: 4, members: [e("n-1", "ann"), e("n-2", "bob"), e("n-3", "cat"), e("n-4", "dan")] });
  assert.deepEqual(view.members.map((m) => m.client), ["n-1", "n-2", "n-3", "n-4", "n-5"]);
  assert.equal(view.pseq, 5);
  assert.equal(changes.length, 2);
  ws.deliver({ t: "pdiff", room: "lobby", pseq: 6, joins: [], leaves: [e("n-2", "bob")] });
  assert.equal(view.pseq, 6);
  await settle();
  assert.equal(ws.sentOf("presence").length, 1);
  client.close();
});

test("a diff that does not fit the list (a leave never seen) fetches the list again", async () => {
  const { client, ws, view } = await presenceRoom(1, [e("n-1", "ann")]);
  ws.deliver({ t: "pdiff", room: "lobby", pseq: 2, joins: [], leaves: [e("n-8", "ghost")] });
  const req = await ws.take("presence");
  ws.deliver({ t: "presence", id: req.id, room: "lobby", pseq: 2, members: [e("n-1", "ann"), e("n-9", "new")] });
  assert.deepEqual(view.members.map((m) => m.client), ["n-1", "n-9"]);
  client.close();
});

test("a failed presence fetch is asked again with the next diff", async () => {
  const { client, ws, view } = await presenceRoom(1, [e("n-1", "ann")]);
  ws.deliver({ t: "pdiff", room: "lobby", pseq: 3, joins: [], leaves: [] });
  const r1 = await ws.take("presence");
  ws.deliver({ t: "error", id: r1.id, code: "rate_limited", reason: "" });
  ws.deliver({ t: "pdiff", room: "lobby", pseq: 4, joins: [e("n-4", "dan")], leaves: [] });
  const r2 = await ws.take("presence");
  ws.deliver({ t: "presence", id: r2.id, room: "lobby", pseq: 3, members: [e("n-1", "ann")] });
  assert.deepEqual(view.members.map((m) => m.client), ["n-1", "n-4"]);
  assert.equal(view.pseq, 4);
  client.close();
});

test("after a reconnect the resubscription's members replace the list", async () => {
  const { client, WS, ws, view } = await presenceRoom(5, [e("n-1", "ann"), e("n-2", "bob")]);
  ws.serverClose(1006);
  assert.deepEqual(view.members.map((m) => m.client), ["n-1", "n-2"], "kept on screen meanwhile");
  const ws1 = await WS.nth(1);
  await handshake(ws1, { client: "n-3" });
  ws1.deliver({ t: "pdiff", room: "lobby", pseq: 6, joins: [], leaves: [e("n-2", "bob")] }); // before the sub: ignored
  const sub = await ws1.take("sub");
  ws1.deliver({ t: "subscribed", id: sub.id, room: "lobby", seq: 0, epoch: "e1", recovered: true, msgs: [], pseq: 9, members: [e("n-3", "ann"), e("n-2", "bob")] });
  assert.deepEqual(view.members.map((m) => m.client), ["n-3", "n-2"]);
  assert.equal(view.pseq, 9);
  client.close();
});

test("_reset from a document's opened reply makes the view live without a subscription", async () => {
  const { client, ws } = await connectedClient();
  const room = client.room("notes");
  const seen = [];
  room.on("presence", (v) => seen.push(v.pseq));
  ws.deliver({ t: "pdiff", room: "notes", pseq: 1, joins: [e("n-2", "bob")], leaves: [] }); // no hold yet: ignored
  room.presence._reset(3, [e("n-1", "u1"), e("n-2", "bob")]);
  ws.deliver({ t: "pdiff", room: "notes", pseq: 4, joins: [e("n-3", "cat")], leaves: [] });
  assert.deepEqual(room.presence.members.map((m) => m.client), ["n-1", "n-2", "n-3"]);
  assert.deepEqual(seen, [3, 4]);
  // An older snapshot (the other hold's reply, late) changes nothing.
  room.presence._reset(2, [e("n-1", "u1")]);
  assert.equal(room.presence.pseq, 4);
  assert.equal(room.presence.members.length, 3);
  client.close();
});
