// The recommendations seed app's page: a product grid whose clicks go to the shop's backend
// with rpc("interaction", {product, action}), and the recommendations the backend pushes to
// this user's own room, user:<id>, shown as they arrive in every tab of the user.
// On the JavaScript client (clients/js, served from ./troupe); no framework, no build step.
import { Client } from "./troupe/index.js";

const $ = (id) => document.getElementById(id);
const USER_PATTERN = /^[A-Za-z0-9_\-.@]{1,64}$/;

// The user: ?user=alice. The engine of this example runs open (no --secret), so the page
// names its user in `connect`. In production the engine has a --secret and the page gets a
// token from the shop's backend instead, e.g.
//   new Client({ url, token: () => fetch("/troupe-token").then((r) => r.text()) })
// and the engine takes the user from the token's verified `sub`.
const params = new URLSearchParams(location.search);
let user = params.get("user") ?? localStorage.getItem("shop.user");
if (!user || !USER_PATTERN.test(user)) user = `guest-${Math.random().toString(36).slice(2, 8)}`;
localStorage.setItem("shop.user", user);
$("me").textContent = user;
$("my-room").textContent = `user:${user}`;

const scheme = location.protocol === "https:" ? "wss" : "ws";
const client = new Client({ url: `${scheme}://${location.host}/ws`, user, name: user });
const inbox = client.room(`user:${user}`);
const app = { client, inbox, user, ready: false, updates: 0, rpcs: { sent: 0, ok: 0, failed: 0 } };
window.recsApp = app; // for the browser test and the console

// ---- the product grid --------------------------------------------------------------------

let catalog = {};

function renderProducts(products) {
  const list = $("products");
  for (const p of products) {
    const li = document.createElement("li");
    li.className = "card";
    li.dataset.product = p.id;
    li.innerHTML = `<span class="name"></span><span class="meta"></span>
      <span class="actions"><button type="button" data-action="viewed">View</button>
      <button type="button" class="primary" data-action="added">Add to cart</button></span>`;
    li.querySelector(".name").textContent = p.name;
    li.querySelector(".meta").textContent = `${p.category} · €${p.price}`;
    for (const button of li.querySelectorAll("button")) {
      button.setAttribute("aria-label", `${button.textContent} ${p.name}`);
      button.addEventListener("click", () => interact(li, p.id, button.dataset.action));
    }
    list.append(li);
  }
}

/** Sends one interaction to the backend; the recommendations come back through the inbox. */
async function interact(card, product, action) {
  if (typeof client.rpc !== "function") {
    showNotice("This build of the client has no rpc(): the engine's backend calls are not in yet.");
    return;
  }
  app.rpcs.sent++;
  card.dataset.state = "sending";
  try {
    await client.rpc("interaction", { product, action });
    app.rpcs.ok++;
    card.dataset.state = "ok";
  } catch (err) {
    app.rpcs.failed++;
    card.dataset.state = "error";
    showNotice(`The shop did not take that: ${err.reason || err.code || err}`);
  }
}

// ---- recommendations, live ---------------------------------------------------------------

function renderRecommendations(m) {
  const { items = [], after } = m.data ?? {};
  const list = $("recs");
  list.replaceChildren(
    ...items.map((item) => {
      const li = document.createElement("li");
      li.dataset.product = item.id;
      li.textContent = catalog[item.id]?.name ?? item.name ?? item.id;
      const reason = document.createElement("span");
      reason.className = "reason";
      reason.textContent = item.reason ?? "";
      li.append(reason);
      return li;
    }),
  );
  list.dataset.seq = String(m.seq);
  list.dataset.updates = String(app.updates);
  list.dataset.after = after?.product ?? "";
  $("recs-empty").hidden = items.length > 0;
  $("recs-empty").textContent = items.length ? "" : "No recommendations for that yet.";
  $("recs-why").textContent = after ? `After you ${after.action} ${catalog[after.product]?.name ?? after.product}:` : "";
}

inbox.on("message", (m) => {
  if (m.data?.type !== "recommendations") return;
  app.updates++;
  renderRecommendations(m);
});
inbox.on("subscribed", (e) => {
  // On opening (or after a rebuild), the newest kept recommendations, if any.
  if (e.kind === "recovered") return;
  const last = [...e.messages].reverse().find((m) => m.data?.type === "recommendations");
  if (last) renderRecommendations(last);
});

// ---- connection --------------------------------------------------------------------------

function showNotice(text) {
  $("notice").textContent = text;
  $("notice").hidden = false;
}

client.on("state", (e) => {
  $("status").dataset.state = e.state;
  $("status").textContent = { connecting: "Connecting…", connected: "Connected", reconnecting: "Reconnecting…", closed: "Disconnected" }[e.state] ?? e.state;
});

async function main() {
  const products = (await (await fetch("products.json")).json()).products;
  catalog = Object.fromEntries(products.map((p) => [p.id, p]));
  renderProducts(products);
  await client.connect();
  await inbox.subscribe();
  app.ready = true;
  document.body.dataset.ready = "true";
}

main().catch((err) => {
  $("status").dataset.state = "closed";
  showNotice(`Could not start: ${err.reason || err.code || err.message || err}`);
});
