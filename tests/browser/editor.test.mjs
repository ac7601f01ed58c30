// Two pages edit the room's shared text at once, typing at the keyboard (emoji and other
// astral characters included), and end with the same text as the engine, which a third,
// fresh page opens on its own. Each sees the other's cursor.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  defer, startEngine, launchBrowser, openPage, join, tempDir, waitConverged, waitSynced, docText,
  checkNoErrors, STEP_MS,
} from "./support.mjs";

const codePoints = (s) => [...s].length;

test("two pages edit one text concurrently and converge with the engine", { timeout: 180000 }, async (t) => {
  const engine = await startEngine({ data: tempDir(t) });
  defer(t, () => engine.stop());
  const browser = await launchBrowser();
  defer(t, () => browser.close());
  const room = "editor-test";

  const a = await openPage(await browser.newContext(), `${engine.url}/`);
  const b = await openPage(await browser.newContext(), `${engine.url}/`);
  await join(a, "Ann", room);
  await join(b, "Bob", room);
  const editorA = a.getByRole("textbox", { name: "Shared text" });
  const editorB = b.getByRole("textbox", { name: "Shared text" });

  // Ann writes a first line; Bob's page shows it.
  await editorA.click();
  await a.keyboard.type("Hello 😀 world");
  await b.waitForFunction(() => document.getElementById("doc").value === "Hello 😀 world", null, { timeout: STEP_MS });

  // At once: Ann types at the end, Bob at the start, keystroke by keystroke.
  await editorB.click();
  await b.keyboard.press("Control+Home");
  await editorA.click();
  await a.keyboard.press("Control+End");
  const atEnd = " and 𝄞 music 🎻";
  const atStart = "Bob 🧑‍🚀 says: ";
  await Promise.all([a.keyboard.type(atEnd, { delay: 15 }), b.keyboard.type(atStart, { delay: 15 })]);
  let text = await waitConverged([a, b]);
  assert.equal(text, atStart + "Hello 😀 world" + atEnd);

  // Remote cursors: each page draws the other's caret, with its name.
  await a.waitForFunction(() => [...document.querySelectorAll("#cursors .caret .label")].some((l) => l.textContent === "Bob"), null, { timeout: STEP_MS });
  await b.waitForFunction(() => [...document.querySelectorAll("#cursors .caret .label")].some((l) => l.textContent === "Ann"), null, { timeout: STEP_MS });
  // Bob's caret comes to rest right after his insert, in UTF-16 units of Ann's text, and
  // Ann's at the end.
  await a.waitForFunction((at) => window.troupeDemo.doc.cursors.find((c) => c.name === "Bob")?.position === at,
    atStart.length, { timeout: STEP_MS });
  await b.waitForFunction((at) => window.troupeDemo.doc.cursors.find((c) => c.name === "Ann")?.position === at,
    text.length, { timeout: STEP_MS });

  // Both in the same place now: the middle, right after "😀", typing and deleting at once
  // (Backspace removes a whole astral character, never half of it).
  const middle = text.indexOf("😀") + "😀".length;
  for (const [page, editor] of [[a, editorA], [b, editorB]]) {
    await editor.click();
    await page.evaluate((i) => document.getElementById("doc").setSelectionRange(i, i), middle);
  }
  await Promise.all([
    (async () => {
      await a.keyboard.type("𝄞𝄞x", { delay: 10 });
      await a.keyboard.press("Backspace");
      await a.keyboard.press("Backspace"); // the second 𝄞
      await a.keyboard.type("🎉", { delay: 10 });
    })(),
    (async () => {
      await b.keyboard.type("yz😀", { delay: 10 });
      await b.keyboard.press("Backspace"); // the 😀 just typed
      await b.keyboard.type("ü", { delay: 10 });
    })(),
  ]);
  text = await waitConverged([a, b]);
  // Whatever the interleaving, each one's edits are in, once, and no pair was split.
  assert.equal(codePoints(text), codePoints(atStart + "Hello 😀 world" + atEnd) + codePoints("𝄞🎉") + codePoints("yzü"));
  for (const piece of ["𝄞🎉", "yzü"]) assert.ok(text.includes(piece), `${piece} in ${text}`);
  assert.ok(!/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(text), "no lone surrogate");
  assert.ok(text.startsWith(atStart + "Hello 😀") && text.endsWith(" world" + atEnd));

  // The engine's text, as a third page with a fresh client opens it.
  const c = await openPage(await browser.newContext(), `${engine.url}/`);
  await join(c, "Cat", room);
  await waitSynced(c);
  assert.equal(await docText(c), text);
  assert.equal(await c.evaluate(() => window.troupeDemo.doc.rev), await a.evaluate(() => window.troupeDemo.doc.rev));

  // A larger edit: Bob selects everything and replaces it, Ann's page follows.
  await editorB.click();
  await b.keyboard.press("Control+A");
  await b.keyboard.type("fresh start 🌱");
  assert.equal(await waitConverged([a, b, c]), "fresh start 🌱");
  checkNoErrors(a, b, c);
});
