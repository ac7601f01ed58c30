// Shared by the browser tests: a real engine (the built binary) on a free port with a fresh
// data directory, Debian's Chromium driven by playwright-core, and the demo page's steps.
// Every wait is bounded; nothing sleeps to synchronise.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { repo, startEngine as startBareEngine } from "../support/engine.mjs";

export { engineBinary, repo } from "../support/engine.mjs";

/** The engine serving the repository's web/ (the demo), on `data`; see tests/support/engine.mjs. */
export function startEngine({ port = 0, data, args = [] } = {}) {
  return startBareEngine({ port, data, args: ["--web", path.join(repo, "web"), ...args] });
}

// The waits of one step: generous, as ctest runs these beside the C++ tests on two cores.
export const STEP_MS = 20000;

const cleanups = new WeakMap();

/** Runs `fn` when the test `t` ends, the last deferred first (browser, engine, directory). */
export function defer(t, fn) {
  let stack = cleanups.get(t);
  if (!stack) {
    cleanups.set(t, (stack = []));
    t.after(async () => {
      let first;
      while (stack.length) {
        try {
          await stack.pop()();
        } catch (err) {
          first ??= err;
        }
      }
      if (first) throw first;
    });
  }
  stack.push(fn);
}

/** A fresh temporary directory, removed when the test `t` ends. */
export function tempDir(t, prefix = "troupe-browser-") {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  defer(t, () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export async function launchBrowser() {
  let chromium;
  try {
    ({ chromium } = await import("playwright-core"));
  } catch (err) {
    throw new Error(`playwright-core is not installed in tests/browser: run bash scripts/js-deps.sh (${err.message})`);
  }
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking"],
    timeout: 60000,
  });
}

/**
 * A page of the demo for one person (a browser context is one person: its own localStorage).
 * Collects the page's errors so that a test can check there were none.
 */
export async function openPage(context, url) {
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_MS);
  page.errors = [];
  page.on("pageerror", (err) => page.errors.push(String(err?.stack ?? err)));
  page.on("console", (msg) => {
    // A refused WebSocket while the engine is down is expected (the restart tests).
    if (msg.type() === "error" && !/WebSocket connection to .* failed/.test(msg.text()))
      page.errors.push(`console: ${msg.text()}`);
  });
  await page.goto(url);
  return page;
}

/** Joins `room` as `name` through the form, and waits for the room and the document. */
export async function join(page, name, room) {
  await page.getByLabel("Your name", { exact: true }).fill(name);
  await page.getByLabel("Room", { exact: true }).fill(room);
  await page.getByRole("button", { name: "Join" }).click();
  await ready(page);
}

/** Waits until the page is connected, subscribed and has the document open. */
export async function ready(page) {
  await page.waitForFunction(
    () =>
      document.getElementById("status").dataset.state === "connected" &&
      window.troupeDemo?.room.subscribed &&
      window.troupeDemo?.doc.isOpen &&
      !document.getElementById("doc").disabled,
    null,
    { timeout: STEP_MS },
  );
}

/** The names and tab counts the page lists as online: {user: tabs}. */
export async function online(page) {
  return page.$$eval("#people li", (items) =>
    Object.fromEntries(items.map((li) => [li.dataset.user, Number(li.querySelector(".tabs").textContent.split(" ")[0])])),
  );
}

/** Waits until the page lists exactly `expected` ({user: tabs}) as online. */
export async function waitOnline(page, expected) {
  await page.waitForFunction(
    (want) => {
      const got = {};
      for (const li of document.querySelectorAll("#people li"))
        got[li.dataset.user] = Number(li.querySelector(".tabs").textContent.split(" ")[0]);
      return JSON.stringify(Object.entries(got).sort()) === JSON.stringify(Object.entries(want).sort());
    },
    expected,
    { timeout: STEP_MS },
  );
}

/** The chat as the page shows it: [{seq, own, text}] in screen order. */
export async function messages(page) {
  return page.$$eval("#messages li[data-seq]", (items) =>
    items.map((li) => ({ seq: Number(li.dataset.seq), own: li.classList.contains("own"), text: li.querySelector(".text").textContent })),
  );
}

/** Waits until the page shows a message with each of `texts`. */
export async function waitMessages(page, texts) {
  await page.waitForFunction(
    (want) => {
      const shown = new Set([...document.querySelectorAll("#messages li[data-seq] .text")].map((e) => e.textContent));
      return want.every((t) => shown.has(t));
    },
    texts,
    { timeout: STEP_MS },
  );
}

/** Sends a chat message through the form. */
export async function say(page, text) {
  await page.getByLabel("Message", { exact: true }).fill(text);
  await page.getByLabel("Message", { exact: true }).press("Enter");
}

/** Waits until the connection status says `state` (connected, reconnecting, recovered, …). */
export async function waitStatus(page, state, timeout = STEP_MS) {
  await page.waitForFunction((s) => document.getElementById("status").dataset.state === s, state, { timeout });
}

/** Waits until the page's document has nothing pending and the textarea shows its text. */
export async function waitSynced(page) {
  await page.waitForFunction(
    () => {
      const d = window.troupeDemo?.doc;
      return d && d.isOpen && !d.pending && document.getElementById("doc").value === d.text;
    },
    null,
    { timeout: STEP_MS },
  );
}

export async function docText(page) {
  return page.inputValue("#doc");
}

/** Waits until every page shows the same text, with nothing pending; returns it. */
export async function waitConverged(pages, timeout = STEP_MS) {
  const deadline = Date.now() + timeout;
  for (;;) {
    for (const p of pages) await waitSynced(p);
    const texts = await Promise.all(pages.map(docText));
    const revs = await Promise.all(pages.map((p) => p.evaluate(() => window.troupeDemo.doc.rev)));
    if (texts.every((t) => t === texts[0]) && revs.every((r) => r === revs[0])) return texts[0];
    if (Date.now() > deadline)
      throw new Error(`the pages did not converge within ${timeout} ms: ${JSON.stringify({ texts, revs })}`);
    // Another page's edit may still be on its way to this one: wait for a change of rev.
    await Promise.race(
      pages.map((p, i) =>
        p.waitForFunction((r) => window.troupeDemo.doc.rev !== r, revs[i], { timeout: 2000 }).catch(() => {}),
      ),
    );
  }
}

export function checkNoErrors(...pages) {
  const errors = pages.flatMap((p) => p.errors ?? []);
  if (errors.length) throw new Error(`errors in the pages:\n${errors.join("\n")}`);
}
