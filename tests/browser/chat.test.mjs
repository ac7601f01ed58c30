// Two people in one room: each sees the other online (and a second tab as one user with two
// tabs), typing shows in the other page, messages arrive in one order everywhere, and a late
// joiner gets the history.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  defer, startEngine, launchBrowser, openPage, join, ready, tempDir, waitOnline, online, say, messages,
  waitMessages, checkNoErrors, STEP_MS,
} from "./support.mjs";

test("chat, presence with tabs, typing and history in two browsers", { timeout: 180000 }, async (t) => {
  const engine = await startEngine({ data: tempDir(t) });
  defer(t, () => engine.stop());
  const browser = await launchBrowser();
  defer(t, () => browser.close());
  const room = "chat-test";

  // A browser context is one person (its own localStorage); a second page in it, a second tab.
  const ann = await browser.newContext();
  const bob = await browser.newContext();
  const a = await openPage(ann, `${engine.url}/`);
  const b = await openPage(bob, `${engine.url}/`);
  await join(a, "Ann", room);
  await join(b, "Bob", room);

  // Presence: each sees both, one tab each.
  await waitOnline(a, { ann: 1, bob: 1 });
  await waitOnline(b, { ann: 1, bob: 1 });
  assert.match(await a.textContent("#people li[data-user=ann] .name"), /Ann \(you\)/);

  // Ann's second tab: the link with the room joins at once with her remembered name, and
  // counts as one user in two tabs.
  const a2 = await openPage(ann, `${engine.url}/#room=${room}`);
  await ready(a2);
  await waitOnline(b, { ann: 2, bob: 1 });
  await waitOnline(a, { ann: 2, bob: 1 });
  await a2.close();
  await waitOnline(b, { ann: 1, bob: 1 });

  // Typing: shown in the other page while Ann types, gone once she sends.
  await a.getByLabel("Message", { exact: true }).pressSequentially("hello", { delay: 10 });
  await b.waitForFunction(() => document.getElementById("typing").textContent === "Ann is typing…", null, {
    timeout: STEP_MS,
  });
  assert.equal(await a.textContent("#typing"), "", "one's own typing is not shown");
  await a.getByLabel("Message", { exact: true }).press("Enter");
  await b.waitForFunction(() => document.getElementById("typing").textContent === "", null, { timeout: STEP_MS });

  // Messages: one after another from each, and a burst from both at once; both pages show
  // them in one order, by seq without holes, and mark their own.
  await say(b, "hi Ann");
  await waitMessages(a, ["hello", "hi Ann"]);
  const burstA = ["a1", "a2", "a3", "a4"];
  const burstB = ["b1", "b2", "b3", "b4"];
  await Promise.all([
    (async () => { for (const m of burstA) await say(a, m); })(),
    (async () => { for (const m of burstB) await say(b, m); })(),
  ]);
  const all = ["hello", "hi Ann", ...burstA, ...burstB];
  await waitMessages(a, all);
  await waitMessages(b, all);
  const seenA = await messages(a);
  const seenB = await messages(b);
  assert.deepEqual(seenA.map((m) => [m.seq, m.text]), seenB.map((m) => [m.seq, m.text]), "one order in both pages");
  assert.deepEqual(seenA.map((m) => m.seq), seenA.map((_, i) => i + 1), "seq 1, 2, 3 … without holes");
  for (const burst of [burstA, burstB]) {
    const order = seenA.map((m) => m.text).filter((x) => burst.includes(x));
    assert.deepEqual(order, burst, "each sender's messages in the order sent");
  }
  assert.deepEqual(seenA.filter((m) => m.own).map((m) => m.text).sort(), ["a1", "a2", "a3", "a4", "hello"]);
  assert.deepEqual(seenB.filter((m) => m.own).map((m) => m.text).sort(), ["b1", "b2", "b3", "b4", "hi Ann"]);

  // A late joiner, with the keyboard only, gets the history in the same order and is seen by
  // the others.
  const cat = await browser.newContext();
  const c = await openPage(cat, `${engine.url}/`);
  await c.keyboard.press("Tab"); // the skip link
  await c.keyboard.press("Tab");
  assert.equal(await c.evaluate(() => document.activeElement.id), "join-name");
  await c.keyboard.type("Cat");
  await c.keyboard.press("Tab");
  await c.keyboard.press("Control+A");
  await c.keyboard.type(room);
  await c.keyboard.press("Enter");
  await ready(c);
  assert.equal(await c.evaluate(() => document.activeElement.id), "message", "focus goes to the message field");
  await waitMessages(c, all);
  assert.deepEqual((await messages(c)).map((m) => [m.seq, m.text]), seenA.map((m) => [m.seq, m.text]));
  await waitOnline(a, { ann: 1, bob: 1, cat: 1 });
  assert.deepEqual(await online(c), { ann: 1, bob: 1, cat: 1 });
  await c.keyboard.type("hi all");
  await c.keyboard.press("Enter");
  await waitMessages(a, [...all, "hi all"]);

  // New messages are announced: the list is a polite live region.
  assert.equal(await a.getAttribute("#messages", "aria-live"), "polite");
  checkNoErrors(a, b, c);
});
