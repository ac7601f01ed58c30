// The recommendations seed app (examples/recommendations): the built engine, the PHP backend
// (php -S) and the shop page in Debian's Chromium, on free loopback ports with their own
// temporary directories. Alice in two tabs, Bob in one.
// 1. The backend's side, with the test signing calls as the engine does: unsigned, forged and
//    stale calls refused (401), bad calls mapped to contract errors, and its publishes to
//    user:<id> reach that user's tabs only.
// 2. End to end (needs the engine's --backend and the client's rpc(), branch backend-rpc; skipped as PENDING before):
//    Alice's clicks go out as rpc("interaction"), the engine calls the backend signed, the
//    backend publishes to user:alice, and the recommendations appear in both her tabs and not
//    in Bob's; Bob's differ from hers.
// With an engine that sends webhooks, both also check that the backend verified and logged
// Alice's member_added. Both skip, saying so, without php. Every wait is bounded.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { createHmac } from "node:crypto";
import { readFileSync, existsSync } from "node:fs";
import { createServer } from "node:net";
import path from "node:path";
import { defer, launchBrowser, openPage, tempDir, checkNoErrors, STEP_MS } from "../browser/support.mjs";
import { engineBinary, repo, startEngine, within } from "../support/engine.mjs";

const example = path.join(repo, "examples", "recommendations");
const php = spawnSync("php", ["--version"]).status === 0;
const SKIP_PHP = "php is not installed (bash scripts/install-deps.sh installs php-cli): skipped";

/** `troupe --help`: which of the backend calls this engine has. */
function engineHelp() {
  try {
    const help = spawnSync(engineBinary(), ["--help"], { encoding: "utf8", timeout: 10000 });
    return `${help.stdout}${help.stderr}`;
  } catch {
    return "--backend --webhook-queue"; // no engine at all: let the tests say so
  }
}
const help = engineHelp();
const engineHasBackend = /--backend\b/.test(help);
const engineHasWebhooks = /--webhook-queue\b/.test(help);

/** A free loopback port (the engine takes 0; php -S needs a number). */
function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** php -S 127.0.0.1:port backend.php; resolves once it answers HTTP. */
async function startBackend({ port, env }) {
  const child = spawn("php", ["-S", `127.0.0.1:${port}`, path.join(example, "backend.php")], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const log = [];
  for (const s of [child.stdout, child.stderr]) s.setEncoding("utf8").on("data", (d) => log.push(d));
  const exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 15000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`php -S exited:\n${log.join("")}`);
    try {
      await fetch(`${url}/`, { signal: AbortSignal.timeout(1000) });
      break;
    } catch {
      if (Date.now() > deadline) {
        child.kill("SIGKILL");
        throw new Error(`php -S did not answer within 15 s:\n${log.join("")}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    url,
    log,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return exited;
      child.kill("SIGTERM");
      return within(exited, 10000, "php -S did not stop within 10 s");
    },
  };
}

/** Signs `body` as the engine does: t=<unix s>,v1=<hex HMAC-SHA256(secret, "t.body")>. */
function sign(secret, body, t = Math.floor(Date.now() / 1000)) {
  return `t=${t},v1=${createHmac("sha256", secret).update(`${t}.${body}`).digest("hex")}`;
}

/** The product ids the page shows as recommended, and the seq and count of updates it got. */
async function shown(page) {
  return page.evaluate(() => {
    const list = document.getElementById("recs");
    return {
      items: [...list.querySelectorAll("li")].map((li) => li.dataset.product),
      seq: Number(list.dataset.seq),
      after: list.dataset.after ?? "",
      updates: window.recsApp.updates,
    };
  });
}

/** Waits until the page shows the recommendations that followed an interaction with `product`. */
async function waitRecommendationsAfter(page, product) {
  await page.waitForFunction(
    (p) => document.getElementById("recs").dataset.after === p && document.querySelectorAll("#recs li").length > 0,
    product,
    { timeout: STEP_MS },
  );
}

/** Waits (bounded) until the backend's events.log in `dir` has a line matching `pattern`. */
async function waitWebhookLogged(dir, pattern) {
  const file = path.join(dir, "events.log");
  const logged = () => (existsSync(file) ? readFileSync(file, "utf8") : "");
  const deadline = Date.now() + STEP_MS; // batches are at most 250 ms late; generous for ctest's load
  while (!pattern.test(logged())) {
    if (Date.now() > deadline) assert.fail(`the backend logged no webhook matching ${pattern}:\n${logged()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function openShop(context, url) {
  const page = await openPage(context, url);
  await page.waitForFunction(() => window.recsApp?.ready === true, null, { timeout: STEP_MS });
  return page;
}

async function click(page, product, action) {
  const card = page.locator(`#products li[data-product="${product}"]`);
  const before = await page.evaluate(() => window.recsApp.rpcs.ok);
  await card.locator(`button[data-action="${action}"]`).click();
  // The rpc's reply: the backend took it (it publishes before it answers).
  await page.waitForFunction((n) => window.recsApp.rpcs.ok > n || window.recsApp.rpcs.failed > 0, before, {
    timeout: STEP_MS,
  });
  assert.equal(await page.evaluate(() => window.recsApp.rpcs.failed), 0, `the rpc for ${action} ${product} failed`);
}

/**
 * The engine serving the shop page (with --backend pointing at the PHP backend if
 * `withBackend`), and the PHP backend on a free port that publishes to it; both stopped, and their folders removed, when `t` ends.
 */
async function startShop(t, { withBackend }) {
  const secret = "test-backend-secret";
  const apiKey = "test-api-key";
  const backendPort = await freePort();
  const engine = await startEngine({
    data: tempDir(t, "troupe-recs-engine-"),
    args: [
      "--web", path.join(example, "web"),
      "--api-key", apiKey,
      ...(withBackend ? ["--backend", `http://127.0.0.1:${backendPort}`, "--backend-secret", secret] : []),
    ],
  });
  defer(t, () => engine.stop());
  const backendData = tempDir(t, "troupe-recs-backend-");
  const backend = await startBackend({
    port: backendPort,
    env: { BACKEND_SECRET: secret, ENGINE_URL: engine.url, ENGINE_API_KEY: apiKey, DATA_DIR: backendData },
  });
  defer(t, () => backend.stop());
  const browser = await launchBrowser();
  defer(t, () => browser.close());
  return { secret, engine, backend, backendData, browser };
}

/** POSTs `call` to the backend's /rpc signed as the engine signs (`secret`, at time `t`). */
async function callBackend(backend, call, { secret, t, signed = true } = {}) {
  const body = JSON.stringify(call);
  const r = await fetch(`${backend.url}/rpc`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(signed ? { "x-troupe-signature": sign(secret, body, t) } : {}) },
    body,
    signal: AbortSignal.timeout(5000),
  });
  return { status: r.status, body: await r.json() };
}

/** Alice in two tabs (one browser context), Bob in one (another), each ready. */
async function openUsers(shop) {
  const alice = await shop.browser.newContext();
  const bob = await shop.browser.newContext();
  const a1 = await openShop(alice, `${shop.engine.url}/?user=alice`);
  const a2 = await openShop(alice, `${shop.engine.url}/?user=alice`);
  const b1 = await openShop(bob, `${shop.engine.url}/?user=bob`);
  for (const p of [a1, a2, b1]) assert.deepEqual((await shown(p)).items, [], "nothing recommended yet");
  return { alice, a1, a2, b1 };
}

// The backend's side of the contract, with the test in the engine's place: it refuses calls
// not signed, forged or stale, maps bad calls to contract errors, and its publishes to
// user:<id> reach that user's tabs only. Runs on any engine with per-user rooms.
test(
  "recommendations backend: signature checked, errors mapped, pushes reach only the user's tabs",
  { timeout: 120000, skip: php ? false : SKIP_PHP },
  async (t) => {
    const shop = await startShop(t, { withBackend: engineHasBackend });
    const { secret, backend } = shop;
    const call = (user, product, action, opts = {}) =>
      callBackend(backend, { client: "c", user, method: "interaction", data: { product, action } }, { secret, ...opts });

    for (const [what, opts] of [
      ["unsigned", { signed: false }],
      ["forged", { secret: "not-the-secret" }],
      ["stale (301 s old)", { t: Math.floor(Date.now() / 1000) - 301 }],
    ]) {
      const r = await call("mallory", "tent", "viewed", opts);
      assert.equal(r.status, 401, `an ${what} call is refused`);
      assert.equal(r.body.error, "unauthorized");
    }
    assert.equal((await call("alice", "no-such-product", "viewed")).body.error, "bad_request");
    assert.equal((await callBackend(backend, { client: "c", user: "alice", method: "nope", data: {} }, { secret })).body.error, "not_found");

    const { a1, a2, b1 } = await openUsers(shop);
    assert.deepEqual(await call("alice", "tent", "viewed"), { status: 200, body: { data: { ok: true } } });
    assert.deepEqual(await call("alice", "sleeping-bag", "added"), { status: 200, body: { data: { ok: true } } });
    await waitRecommendationsAfter(a1, "sleeping-bag");
    await waitRecommendationsAfter(a2, "sleeping-bag");
    const aliceRecs = await shown(a1);
    assert.deepEqual(aliceRecs.items, ["headlamp", "camp-stove", "water-filter"]);
    assert.deepEqual(await shown(a2), aliceRecs);
    assert.equal((await call("bob", "espresso-machine", "viewed")).status, 200);
    await waitRecommendationsAfter(b1, "espresso-machine");
    assert.deepEqual((await shown(b1)).items, ["milk-frother", "coffee-grinder", "cookbook"]);
    assert.equal((await shown(b1)).updates, 1, "Bob's tab got his one update only");
    for (const p of [a1, a2]) assert.equal((await shown(p)).updates, 2, "Alice's tabs got her two updates only");
    checkNoErrors(a1, a2, b1);
    if (engineHasWebhooks) await waitWebhookLogged(shop.backendData, /webhook member_added room=user:alice user=alice /);
  },
);

// End to end through the engine: the page's rpc("interaction") → engine → signed POST /rpc →
// the backend → POST /api/publish → user:alice → both of Alice's tabs, not Bob's.
// Pending until both halves of RPC are in: the engine's --backend and the client's rpc().
const clientHasRpc = /^\s*(async\s+)?rpc\s*\(/m.test(readFileSync(path.join(repo, "clients/js/src/client.js"), "utf8"));
const hasBackend = engineHasBackend && clientHasRpc;
test(
  "recommendations end to end: the page's rpc, the engine's signed call, pushed to both of Alice's tabs and not to Bob",
  {
    timeout: 180000,
    skip: !php
      ? SKIP_PHP
      : !hasBackend
        ? `PENDING on branch backend-rpc: ${clientHasRpc ? "this engine has no --backend option" : "clients/js has no rpc() yet"} (RPC not merged)`
        : false,
  },
  async (t) => {
    const shop = await startShop(t, { withBackend: true });
    const { engine, backendData } = shop;
    const { alice, a1, a2, b1 } = await openUsers(shop);
    const aliceRecsFor = async (p) => (await shown(p)).items;

    // Alice, in her first tab: views the tent, adds the sleeping bag. Both her tabs show the
    // recommendations that followed each, with the same seq of user:alice.
    await click(a1, "tent", "viewed");
    await waitRecommendationsAfter(a1, "tent");
    await waitRecommendationsAfter(a2, "tent");
    await click(a1, "sleeping-bag", "added");
    await waitRecommendationsAfter(a1, "sleeping-bag");
    await waitRecommendationsAfter(a2, "sleeping-bag");
    const aliceRecs = await shown(a1);
    assert.deepEqual(await shown(a2), aliceRecs, "both of Alice's tabs show the same update");
    assert.equal(aliceRecs.updates, 2, "one live update per interaction");
    assert.equal(aliceRecs.seq, 2);
    for (const seen of ["tent", "sleeping-bag"]) assert.ok(!aliceRecs.items.includes(seen), "what she saw is not recommended");
    // Co-occurrence from the seed sessions: the camping gear viewed with a tent and a sleeping bag.
    assert.deepEqual(aliceRecs.items, ["headlamp", "camp-stove", "water-filter"]);

    // Bob got none of it.
    assert.deepEqual(await shown(b1), { items: [], seq: 0, after: "", updates: 0 }, "Alice's recommendations are not pushed to Bob");

    // Bob views the espresso machine: his own recommendations, different from Alice's, in his
    // tab only.
    await click(b1, "espresso-machine", "viewed");
    await waitRecommendationsAfter(b1, "espresso-machine");
    const bobRecs = await shown(b1);
    assert.equal(bobRecs.updates, 1);
    assert.notDeepEqual(bobRecs.items, aliceRecs.items, "Bob's recommendations differ from Alice's");
    assert.deepEqual(bobRecs.items, ["milk-frother", "coffee-grinder", "cookbook"]);
    // Alice's tabs did not get Bob's: one more rpc of hers bounds the wait (her inbox is
    // ordered, so anything of Bob's would have arrived before it).
    await click(a2, "headlamp", "viewed");
    await waitRecommendationsAfter(a1, "headlamp");
    await waitRecommendationsAfter(a2, "headlamp");
    for (const p of [a1, a2]) assert.equal((await shown(p)).updates, 3, "Alice's tabs got her three updates and nothing else");
    assert.equal((await shown(b1)).updates, 1, "Bob's tab got his one update and nothing else");

    // A new tab of Alice's opens with her newest recommendations from the room's history.
    const a3 = await openShop(alice, `${engine.url}/?user=alice`);
    await waitRecommendationsAfter(a3, "headlamp");
    assert.deepEqual(await aliceRecsFor(a3), await aliceRecsFor(a1));

    checkNoErrors(a1, a2, a3, b1);

    // The backend verified and logged the engine's webhooks: Alice's arrival in her room.
    if (engineHasWebhooks) await waitWebhookLogged(backendData, /webhook member_added room=user:alice user=alice /);
  },
);
