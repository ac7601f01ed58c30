// docs/demo.png: the demo with two people, as Ann's page shows it (messages, both online, Bob
// typing, Bob's cursor in the shared text). Taken only with TROUPE_SCREENSHOT=1 or when the
// file is missing, so that a test run leaves the checked-in picture alone.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import path from "node:path";
import {
  defer, repo, startEngine, launchBrowser, openPage, join, ready, tempDir, waitOnline, say, waitMessages,
  waitConverged, checkNoErrors, STEP_MS,
} from "./support.mjs";

const target = path.join(repo, "docs", "demo.png");
const wanted = process.env.TROUPE_SCREENSHOT === "1" || !existsSync(target);

test("screenshot of the demo with two users (docs/demo.png)", { skip: !wanted && "docs/demo.png exists (TROUPE_SCREENSHOT=1 takes it again)", timeout: 180000 }, async (t) => {
  const engine = await startEngine({ data: tempDir(t) });
  defer(t, () => engine.stop());
  const browser = await launchBrowser();
  defer(t, () => browser.close());
  const room = "lobby";
  const viewport = { width: 1180, height: 860 };

  const ann = await browser.newContext({ viewport, deviceScaleFactor: 1, locale: "en-GB", timezoneId: "UTC" });
  const bob = await browser.newContext({ viewport, deviceScaleFactor: 1, locale: "en-GB", timezoneId: "UTC" });
  const a = await openPage(ann, `${engine.url}/`);
  const b = await openPage(bob, `${engine.url}/`);
  await join(a, "Ann", room);
  await join(b, "Bob", room);
  const a2 = await openPage(ann, `${engine.url}/#room=${room}`); // Ann's second tab
  await ready(a2);
  await waitOnline(a, { ann: 2, bob: 1 });

  await say(a, "Hi Bob! Shall we write Friday's agenda together?");
  await waitMessages(b, ["Hi Bob! Shall we write Friday's agenda together?"]);
  await say(b, "Sure, it's open below. I'll add the demo ✍️");
  await waitMessages(a, ["Sure, it's open below. I'll add the demo ✍️"]);
  await say(a, "Great, I'll take notes at the bottom.");

  const editorA = a.getByRole("textbox", { name: "Shared text" });
  const editorB = b.getByRole("textbox", { name: "Shared text" });
  await editorA.click();
  await a.keyboard.type("Agenda for Friday\n\n1. Welcome\n2. Numbers for Q3\n3. \n\nNotes: ", { delay: 2 });
  await waitConverged([a, b]);
  await editorB.click();
  const at = (await editorB.inputValue()).indexOf("3. ") + 3;
  await b.evaluate((i) => document.getElementById("doc").setSelectionRange(i, i), at);
  await b.keyboard.type("Live demo of the editor 🎉", { delay: 2 });
  await editorA.click();
  await a.keyboard.press("Control+End");
  await a.keyboard.type("everyone in", { delay: 2 });
  const text = await waitConverged([a, b]);
  assert.ok(text.includes("3. Live demo of the editor 🎉"));

  // Bob starts a message without sending it: Ann's page says he is typing.
  await b.getByLabel("Message", { exact: true }).pressSequentially("Done, what about", { delay: 5 });
  await a.waitForFunction(() => document.getElementById("typing").textContent === "Bob is typing…", null, { timeout: STEP_MS });
  await a.waitForFunction(() => [...document.querySelectorAll("#cursors .caret .label")].some((l) => l.textContent === "Bob"), null, { timeout: STEP_MS });
  await a.evaluate(() => document.fonts.ready);

  await a.screenshot({ path: target });
  checkNoErrors(a, a2, b);
});
