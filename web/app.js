// Troupe's demo page: chat, presence, typing and a shared text editor in one room, on the
// JavaScript client (clients/js, served from ./troupe). No framework, no build step.
import { Client, TextDocument } from "./troupe/index.js";

const $ = (id) => document.getElementById(id);
const ROOM_PATTERN = /^[A-Za-z0-9_\-:.@]{1,128}$/;
const MAX_MESSAGES = 500; // kept on screen
// Dark enough for white text on them and for carets on white (contrast >= 4.5:1).
const COLOURS = ["#b3261e", "#1a5fb4", "#26734d", "#8f3f97", "#a05a00", "#0b6e75", "#c01c6b", "#5e5c64"];

// ---- joining: name and room, remembered in localStorage and the URL hash ---------------------

const form = $("join");
const params = new URLSearchParams(location.hash.slice(1));
$("join-name").value = params.get("name") ?? localStorage.getItem("troupe.name") ?? "";
$("join-room").value = params.get("room") ?? localStorage.getItem("troupe.room") ?? "lobby";

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const name = $("join-name").value.trim();
  const room = $("join-room").value.trim();
  if (!name || !ROOM_PATTERN.test(room)) return form.reportValidity();
  localStorage.setItem("troupe.name", name);
  localStorage.setItem("troupe.room", room);
  history.replaceState(null, "", `#room=${encodeURIComponent(room)}`);
  join(name, room);
});

$("leave").addEventListener("click", () => {
  // Start again from the form: the simplest way to end every subscription is a fresh page.
  history.replaceState(null, "", location.pathname);
  localStorage.removeItem("troupe.room");
  location.reload();
});

// A link with a room (#room=lobby) and a remembered name joins at once: a second tab of the
// same person is one click away from the first.
if (params.get("room") && $("join-name").value && ROOM_PATTERN.test(params.get("room"))) {
  join($("join-name").value.trim(), params.get("room"));
}

// ---- the session --------------------------------------------------------------------------

function join(name, roomName) {
  form.hidden = true;
  $("app").hidden = false;
  $("room-name").textContent = roomName;
  document.title = `${roomName} · Troupe demo`;

  // Without a secret the engine takes `user` and `name` from `connect`. The user id is the
  // name, so two tabs with one name are one person in two tabs.
  const user = name.toLowerCase();
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const client = new Client({ url: `${scheme}://${location.host}/ws`, user, name });
  const room = client.room(roomName);
  const doc = client.document(roomName);
  window.troupeDemo = { client, room, doc, TextDocument }; // for the browser tests and the console

  const status = connectionStatus(client);
  bindChat(client, room, name, status);
  bindPresence(client, room);
  bindEditor(doc, status);

  client.connect().then(
    () => {
      room.subscribe().catch((err) => showNotice(`Could not join the room: ${err.reason || err.code}`));
      doc.open().catch((err) => showNotice(`Could not open the shared text: ${err.reason || err.code}`));
    },
    (err) => status.closed(err.reason || err.code),
  );
  $("message").focus();
}

// ---- connection state: connected, reconnecting in N s, recovered, rebuilt ----------------------

function connectionStatus(client) {
  const el = $("status");
  let countdown = null;
  let reconnecting = false; // since the last loss: waiting to learn recovered or rebuilt
  let outcome = {}; // after a reconnect: the room's and the document's kind
  // The words change with the state only (the status is a live region); the countdown beside
  // them is for the eyes.
  const words = document.createElement("span");
  const clock = document.createElement("span");
  clock.setAttribute("aria-hidden", "true");
  el.replaceChildren(words, clock);
  const show = (state, text, detail = "") => {
    el.dataset.state = state;
    if (words.textContent !== text) words.textContent = text;
    clock.textContent = detail;
  };
  show("idle", "Not connected");

  client.on("state", (e) => {
    clearInterval(countdown);
    if (e.state === "connecting") show("connecting", "Connecting…");
    else if (e.state === "connected") {
      if (!reconnecting) show("connected", "Connected");
      else show("catching-up", "Reconnected, catching up…");
    } else if (e.state === "reconnecting") {
      reconnecting = true;
      outcome = {};
      const at = Date.now() + (e.retryInMs ?? 0);
      const tick = () => {
        const s = Math.ceil((at - Date.now()) / 1000);
        show("reconnecting", "Connection lost, reconnecting", s > 0 ? ` in ${s} s…` : "…");
      };
      tick();
      countdown = setInterval(tick, 250);
    } else if (e.state === "closed") {
      show("closed", `Disconnected${e.reason ? `: ${e.reason}` : ""}`);
    }
  });

  // The room and the document each say how they came back; the page says it once both did.
  const settle = (part, kind) => {
    if (!reconnecting) return;
    outcome[part] = kind;
    if (!outcome.room || !outcome.doc) return;
    reconnecting = false;
    if (outcome.room === "recovered" && outcome.doc === "recovered") {
      show("recovered", "Connected · recovered: nothing was missed");
    } else {
      show("rebuilt", "Connected · rebuilt: what was missed could not be replayed, the view was reloaded");
    }
  };
  return {
    room: (kind) => settle("room", kind),
    doc: (kind) => settle("doc", kind),
    closed: (reason) => show("closed", `Could not connect: ${reason}`),
  };
}

function showNotice(text) {
  const el = $("notice");
  el.textContent = text;
  el.hidden = false;
}

// ---- chat: history on join, messages in seq order, typing ----------------------------------

function bindChat(client, room, name, status) {
  const list = $("messages");
  const input = $("message");

  const render = (m) => {
    const li = document.createElement("li");
    const own = m.user === client.user;
    li.className = own ? "own" : "";
    li.dataset.seq = m.seq;
    const who = document.createElement("strong");
    who.textContent = own ? "You" : (m.data?.name ?? m.user);
    who.style.color = colourOf(m.user);
    const time = document.createElement("time");
    time.dateTime = new Date(m.ts).toISOString();
    time.textContent = new Date(m.ts).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    const text = document.createElement("span");
    text.className = "text";
    text.textContent = typeof m.data?.text === "string" ? m.data.text : JSON.stringify(m.data);
    li.append(who, " ", time, " ", text);
    return li;
  };
  const append = (m) => {
    const stick = list.scrollTop + list.clientHeight >= list.scrollHeight - 4;
    list.append(render(m));
    while (list.children.length > MAX_MESSAGES) list.firstElementChild.remove();
    if (stick) list.scrollTop = list.scrollHeight;
  };
  const note = (text) => {
    const li = document.createElement("li");
    li.className = "note";
    li.textContent = text;
    list.append(li);
  };

  room.on("subscribed", (e) => {
    if (e.kind === "initial" || e.kind === "rebuilt") {
      list.replaceChildren();
      if (e.kind === "rebuilt") note("The engine lost the earlier history; showing what it has now.");
      for (const m of e.messages) append(m);
      list.scrollTop = list.scrollHeight;
    }
    if (e.kind !== "initial") status.room(e.kind);
  });
  room.on("message", append);

  $("send").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    room.typing(false);
    // Shown when it comes back in the room's order; while disconnected it waits and is sent
    // once after the reconnect (the client keys every publish).
    room.publish({ text, name }).catch((err) => {
      showNotice(`Your message was not sent (${err.reason || err.code}): ${text}`);
    });
  });
  input.addEventListener("input", () => room.typing(input.value.trim() !== ""));
  input.addEventListener("blur", () => room.typing(false));

  const typing = $("typing");
  room.on("typing", (users) => {
    // Others only (not my other tabs), one line per person.
    const names = [...new Map(users.filter((u) => u.user !== client.user).map((u) => [u.user, u.name ?? u.user])).values()];
    typing.textContent =
      names.length === 0 ? "" :
      names.length === 1 ? `${names[0]} is typing…` :
      names.length === 2 ? `${names[0]} and ${names[1]} are typing…` :
      `${names.length} people are typing…`;
  });
}

// ---- presence: who is online, in how many tabs ------------------------------------------------

function bindPresence(client, room) {
  const list = $("people");
  room.on("presence", (view) => {
    list.replaceChildren(
      ...view.byUser().map((u) => {
        const li = document.createElement("li");
        li.dataset.user = u.user;
        const dot = document.createElement("span");
        dot.className = "dot";
        dot.style.background = colourOf(u.user);
        const name = document.createElement("span");
        name.className = "name";
        name.textContent = (u.name ?? u.user) + (u.user === client.user ? " (you)" : "");
        const tabs = document.createElement("span");
        tabs.className = "tabs";
        const n = u.connections.length;
        tabs.textContent = `${n} ${n === 1 ? "tab" : "tabs"}`;
        li.append(dot, name, " ", tabs);
        return li;
      }),
    );
  });
}

// ---- the shared editor: a <textarea> bound to the room's document ------------------------------

function bindEditor(doc, status) {
  const ta = $("doc");
  const overlay = $("cursors");
  const state = $("doc-state");

  const showSaved = () => (state.textContent = doc.pending ? "Saving…" : "Saved");
  doc.on("state", (e) => {
    if (ta.value !== doc.text) ta.value = doc.text; // (a rebuild's change came as a "change")
    ta.disabled = false;
    showSaved();
    if (e.dropped) showNotice("Some of your last edits to the shared text could not be saved: the engine had lost them.");
    if (e.kind !== "opened") status.doc(e.kind);
    drawCursors();
  });

  // Typing: the whole new value; the client sends only what changed. Not during composition.
  let composing = false;
  const edited = () => {
    try {
      doc.setText(ta.value);
    } catch {
      ta.value = doc.text; // not open (yet): undo it on screen
    }
    showSaved();
    doc.whenSynced().then(showSaved, () => {}); // "Saving…", then "Saved" once acknowledged
    drawCursors();
  };
  ta.addEventListener("compositionstart", () => (composing = true));
  ta.addEventListener("compositionend", () => {
    composing = false;
    edited();
  });
  ta.addEventListener("input", () => {
    if (!composing) edited();
  });

  // Others' edits: new value, our selection moved through the splices.
  doc.on("change", (e) => {
    if (e.remote) {
      const focused = document.activeElement === ta;
      const { selectionStart, selectionEnd, selectionDirection } = ta;
      ta.value = e.text;
      if (focused) {
        ta.setSelectionRange(
          TextDocument.transformIndex(selectionStart, e.splices),
          TextDocument.transformIndex(selectionEnd, e.splices),
          selectionDirection,
        );
      }
    }
    showSaved();
    drawCursors();
  });
  doc.on("cursors", drawCursors);

  // Our caret and selection, for the others.
  document.addEventListener("selectionchange", () => {
    if (document.activeElement !== ta || !doc.isOpen) return;
    const back = ta.selectionDirection === "backward";
    const caret = back ? ta.selectionStart : ta.selectionEnd;
    const anchor = back ? ta.selectionEnd : ta.selectionStart;
    doc.setCursor(caret, anchor === caret ? undefined : anchor);
  });

  // Remote cursors: a mirror of the textarea (same box, font and wrapping) behind transparent
  // text, holding the text up to each cursor and a coloured caret there.
  let frame = 0;
  function drawCursors() {
    if (!frame) frame = requestAnimationFrame(paint);
  }
  function paint() {
    frame = 0;
    const text = ta.value;
    const cursors = doc.cursors
      .filter((c) => c.position <= text.length)
      .sort((a, b) => a.position - b.position);
    const box = overlay.style;
    box.top = `${ta.offsetTop + ta.clientTop}px`;
    box.left = `${ta.offsetLeft + ta.clientLeft}px`;
    box.width = `${ta.clientWidth}px`;
    box.height = `${ta.clientHeight}px`;
    const parts = [];
    let at = 0;
    for (const c of cursors) {
      parts.push(document.createTextNode(text.slice(at, c.position)));
      at = c.position;
      const caret = document.createElement("span");
      caret.className = "caret";
      caret.dataset.client = c.client;
      caret.style.setProperty("--colour", colourOf(c.user));
      const label = document.createElement("span");
      label.className = "label";
      label.textContent = c.name ?? c.user;
      caret.append(label);
      parts.push(caret);
    }
    parts.push(document.createTextNode(text.slice(at) + "\n"));
    overlay.replaceChildren(...parts);
    overlay.scrollTop = ta.scrollTop;
  }
  ta.addEventListener("scroll", () => (overlay.scrollTop = ta.scrollTop));
  new ResizeObserver(drawCursors).observe(ta);
}

// ---- helpers --------------------------------------------------------------------------------

function colourOf(user) {
  let h = 0;
  for (const ch of String(user)) h = (h * 31 + ch.codePointAt(0)) >>> 0;
  return COLOURS[h % COLOURS.length];
}
