// The engine stops (SIGTERM) and starts again on the same port: the pages say they are
// reconnecting, then come back. With the durable store (the default) the engine kept every
// seq, epoch and revision, so they recover: nothing missed, edits and messages made while it
// was down go through once. With --store memory it lost everything, so they say rebuilt.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  defer, startEngine, launchBrowser, openPage, join, tempDir, waitOnline, say, messages, waitMessages,
  waitStatus, waitConverged, checkNoErrors, STEP_MS,
} from "./support.mjs";

// Reconnection backs off up to 10 s (with jitter) while the engine is down.
const BACK_MS = 40000;

async function twoPages(t, engine, room) {
  const browser = await launchBrowser();
  defer(t, () => browser.close());
  const a = await openPage(await browser.newContext(), `${engine.url}/`);
  const b = await openPage(await browser.newContext(), `${engine.url}/`);
  await join(a, "Ann", room);
  await join(b, "Bob", room);
  await waitOnline(a, { ann: 1, bob: 1 });
  await say(a, "before");
  await waitMessages(b, ["before"]);
  await a.getByRole("textbox", { name: "Shared text" }).click();
  await a.keyboard.type("kept 😀 text");
  await waitConverged([a, b]);
  return { a, b };
}

test("restart with the durable store: the pages reconnect and recover", { timeout: 240000 }, async (t) => {
  const data = tempDir(t);
  let engine = await startEngine({ data });
  defer(t, () => engine.stop());
  const { a, b } = await twoPages(t, engine, "restart-durable");

  assert.deepEqual(await engine.stop(), { code: 0, signal: null }, "SIGTERM: exit 0");
  await waitStatus(a, "reconnecting");
  await waitStatus(b, "reconnecting");
  assert.match(await a.textContent("#status"), /^Connection lost, reconnecting( in \d+ s)?…$/);

  // While it is down Ann writes a message and edits: both wait and go out once it is back.
  await say(a, "while down");
  await a.getByRole("textbox", { name: "Shared text" }).click();
  await a.keyboard.press("Control+End");
  await a.keyboard.type(" + offline 𝄞");

  engine = await startEngine({ port: engine.port, data });
  await waitStatus(a, "recovered", BACK_MS);
  await waitStatus(b, "recovered", BACK_MS);
  await waitMessages(b, ["before", "while down"]);
  assert.equal(await waitConverged([a, b]), "kept 😀 text + offline 𝄞");

  // And they carry on.
  await say(b, "after");
  await waitMessages(a, ["before", "while down", "after"]);
  const seen = await messages(a);
  assert.deepEqual(seen.map((m) => [m.seq, m.text]), [[1, "before"], [2, "while down"], [3, "after"]]);
  assert.deepEqual((await messages(b)).map((m) => [m.seq, m.text]), seen.map((m) => [m.seq, m.text]));
  await b.getByRole("textbox", { name: "Shared text" }).click();
  await b.keyboard.press("Control+Home");
  await b.keyboard.type("Bob: ");
  assert.equal(await waitConverged([a, b]), "Bob: kept 😀 text + offline 𝄞");
  await waitOnline(a, { ann: 1, bob: 1 });
  checkNoErrors(a, b);
});

test("restart with --store memory: the pages reconnect and say they rebuilt", { timeout: 240000 }, async (t) => {
  const data = tempDir(t);
  let engine = await startEngine({ data, args: ["--store", "memory"] });
  defer(t, () => engine.stop());
  const { a, b } = await twoPages(t, engine, "restart-memory");

  await engine.stop();
  await waitStatus(a, "reconnecting");
  await waitStatus(b, "reconnecting");
  // Made while it is down: the message goes to the new engine; the edit cannot be kept (the
  // text it was made on is gone), and Ann's page says so.
  await say(a, "while down");
  await a.getByRole("textbox", { name: "Shared text" }).click();
  await a.keyboard.press("Control+End");
  await a.keyboard.type(" + lost");
  engine = await startEngine({ port: engine.port, data, args: ["--store", "memory"] });
  await waitStatus(a, "rebuilt", BACK_MS);
  await waitStatus(b, "rebuilt", BACK_MS);
  assert.match(await a.textContent("#status"), /rebuilt/i);
  await a.waitForFunction(() => /could not be saved/.test(document.getElementById("notice").textContent), null, { timeout: STEP_MS });
  assert.equal(await b.isVisible("#notice"), false, "Bob had nothing pending");
  // The engine started empty: the chat says its history was lost, the text is the engine's.
  await a.waitForFunction(() => document.querySelector("#messages li.note") !== null, null, { timeout: STEP_MS });
  await waitMessages(b, ["while down"]);
  assert.equal(await waitConverged([a, b]), "");

  await say(b, "fresh");
  await waitMessages(a, ["while down", "fresh"]);
  assert.deepEqual((await messages(a)).map((m) => [m.seq, m.text]), [[1, "while down"], [2, "fresh"]]);
  assert.deepEqual((await messages(b)).map((m) => [m.seq, m.text]), [[1, "while down"], [2, "fresh"]]);
  await a.getByRole("textbox", { name: "Shared text" }).click();
  await a.keyboard.type("new 🎉");
  assert.equal(await waitConverged([a, b]), "new 🎉");
  checkNoErrors(a, b);
});
