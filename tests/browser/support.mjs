// Shared by the browser tests: a real engine (the built binary) on a free port with a fresh
// data directory, Debian's Chromium driven by playwright-core, and the demo page's steps.
// Every wait is bounded; nothing sleeps to synchronise.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";

const here = path.dirname(fileURLToPath(import.meta.url));
export const repo = path.resolve(here, "../..");

// The waits of one step: generous, as ctest runs these beside the C++ tests on two cores.
export const STEP_MS = 20000;

export function engineBinary() {
  const binary = process.env.TROUPE_BINARY || path.join(repo, "build", "troupe");
  if (!existsSync(binary)) throw new Error(`no engine at ${binary}: build it, or set TROUPE_BINARY`);
  return binary;
}

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

/**
 * Starts the engine: `--host 127.0.0.1 --port <port or 0> --data <dir>` plus `args`, serving
 * the repository's web/. Resolves once it logs "listening on 127.0.0.1:PORT".
 */
export async function startEngine({ port = 0, data, args = [] } = {}) {
  // The engine reads TROUPE_* from the environment too: none of the caller's may leak in.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("TROUPE_")));
  const child = spawn(
    engineBinary(),
    ["--host", "127.0.0.1", "--port", String(port), "--data", data, "--web", path.join(repo, "web"), ...args],
    { env, stdio: ["ignore", "pipe", "pipe"] },
  );
  const log = [];
  const exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (s) => log.push(s));
  const lines = createInterface({ input: child.stdout });
  const listening = new Promise((resolve, reject) => {
    lines.on("line", (line) => {
      log.push(line + "\n");
      const m = /listening on 127\.0\.0\.1:(\d+)/.exec(line);
      if (m) resolve(Number(m[1]));
    });
    exited.then(({ code, signal }) =>
      reject(new Error(`the engine exited (${code ?? signal}) before listening:\n${log.join("")}`)),
    );
  });
  const actualPort = await within(listening, 15000, () => `the engine did not listen within 15 s:\n${log.join("")}`).catch(
    (err) => {
      child.kill("SIGKILL");
      throw err;
    },
  );
  return {
    port: actualPort,
    url: `http://127.0.0.1:${actualPort}`,
    log,
    /** SIGTERM, then waits for the exit (SIGKILL after 15 s); resolves with the exit code. */
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return exited;
      child.kill("SIGTERM");
      try {
        return await within(exited, 15000, () => "the engine did not stop within 15 s of SIGTERM");
      } catch (err) {
        child.kill("SIGKILL");
        await exited;
        throw err;
      }
    },
  };
}

function within(promise, ms, message) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(message())), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
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
