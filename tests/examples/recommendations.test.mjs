// The recommendations seed app (examples/recommendations) end to end: the built engine with
// --backend pointing at the PHP backend (php -S), both on free loopback ports with their own
// temporary directories, and the shop page in Debian's Chromium. Alice in two tabs and Bob in
// one: Alice's clicks go to the backend as rpc("interaction"), the backend publishes her
// recommendations to user:alice, and they appear in both her tabs and not in Bob's; Bob's
// differ from hers. The backend verifies every call's signature (it refuses unsigned and stale
// ones: checked here too) and logs the webhooks. Every wait is bounded.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { createHmac } from "node:crypto";
import { readFileSync, existsSync } from "node:fs";
import { createServer } from "node:net";
import path from "node:path";
import { defer, launchBrowser, openPage, tempDir, checkNoErrors, STEP_MS } from "../browser/support.mjs";
import { repo, startEngine, within } from "../support/engine.mjs";

const example = path.join(repo, "examples", "recommendations");
const php = spawnSync("php", ["--version"]).status === 0;

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

test(
  "recommendations: rpc to a PHP backend, pushed to user:<id> in both of Alice's tabs and not to Bob",
  { timeout: 180000, skip: php ? false : "php is not installed (bash scripts/install-deps.sh installs php-cli): skipped" },
  async (t) => {
    const secret = "test-backend-secret";
    const apiKey = "test-api-key";
    const backendPort = await freePort();
    const engine = await startEngine({
      data: tempDir(t, "troupe-recs-engine-"),
      args: [
        "--web", path.join(example, "web"),
        "--api-key", apiKey,
        "--backend", `http://127.0.0.1:${backendPort}`,
        "--backend-secret", secret,
      ],
    });
    defer(t, () => engine.stop());
    const backendData = tempDir(t, "troupe-recs-backend-");
    const backend = await startBackend({
      port: backendPort,
      env: { BACKEND_SECRET: secret, ENGINE_URL: engine.url, ENGINE_API_KEY: apiKey, DATA_DIR: backendData },
    });
    defer(t, () => backend.stop());

    // The backend refuses what the engine did not sign, a forged signature and a stale one.
    const body = JSON.stringify({ client: "x", user: "mallory", method: "interaction", data: { product: "tent", action: "viewed" } });
    for (const [what, header] of [
      ["unsigned", undefined],
      ["forged", sign("not-the-secret", body)],
      ["stale (301 s old)", sign(secret, body, Math.floor(Date.now() / 1000) - 301)],
    ]) {
      const r = await fetch(`${backend.url}/rpc`, {
        method: "POST",
        headers: { "content-type": "application/json", ...(header ? { "x-troupe-signature": header } : {}) },
        body,
        signal: AbortSignal.timeout(5000),
      });
      assert.equal(r.status, 401, `an ${what} call is refused`);
    }

    const browser = await launchBrowser();
    defer(t, () => browser.close());
    const alice = await browser.newContext();
    const bob = await browser.newContext();
    const a1 = await openShop(alice, `${engine.url}/?user=alice`);
    const a2 = await openShop(alice, `${engine.url}/?user=alice`);
    const b1 = await openShop(bob, `${engine.url}/?user=bob`);
    for (const p of [a1, a2, b1]) assert.deepEqual((await shown(p)).items, [], "nothing recommended yet");

    // Alice, in her first tab: views the tent, adds the sleeping bag. Both her tabs show the
    // recommendations that followed the second, with the same seq of user:alice.
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
    assert.ok(aliceRecs.items.length > 0);
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
    // Alice's tabs did not get Bob's (the round trip of one more rpc of hers bounds the wait:
    // her inbox is ordered, so anything of Bob's would have arrived before it).
    await click(a2, "headlamp", "viewed");
    await waitRecommendationsAfter(a1, "headlamp");
    await waitRecommendationsAfter(a2, "headlamp");
    for (const p of [a1, a2]) assert.equal((await shown(p)).updates, 3, "Alice's tabs got her three updates and nothing else");
    assert.equal((await shown(b1)).updates, 1, "Bob's tab got his one update and nothing else");

    // A new tab of Alice's opens with her newest recommendations from the room's history.
    const a3 = await openShop(alice, `${engine.url}/?user=alice`);
    await waitRecommendationsAfter(a3, "headlamp");
    assert.deepEqual((await shown(a3)).items, (await shown(a1)).items);

    checkNoErrors(a1, a2, a3, b1);

    // The backend logged the webhooks it received (when the engine sends them: member_added
    // for Alice's and Bob's rooms). Bounded: the engine batches them at most 250 ms late.
    const events = path.join(backendData, "events.log");
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline && !(existsSync(events) && /webhook member_added/.test(readFileSync(events, "utf8"))))
      await new Promise((r) => setTimeout(r, 100));
    const logged = existsSync(events) ? readFileSync(events, "utf8") : "";
    if (!/webhook member_added/.test(logged)) t.diagnostic(`no webhook logged by the backend yet:\n${logged}`);
  },
);
