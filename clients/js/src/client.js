// Client: one WebSocket to the engine, kept open (reconnects with backoff), requests matched
// to replies by id, pushes routed to rooms and documents, maps batched in both directions.
//
// Internal hooks for the other parts of this package (documents, rooms, presence). Not part
// of the public API; their names start with "_":
//   client._request(map, {resend}?) -> Promise<reply map>. Assigns `id`. An `error` reply
//       rejects with TroupeError(code, reason); no reply within requestTimeoutMs rejects with
//       "timeout". When the connection drops before the reply it rejects with "disconnected",
//       unless sent with {resend: true}: then it is sent again on the next connection, after
//       rooms are resubscribed and the _onReconnected hooks ran (documents reopened). Made
//       while disconnected, it waits for the next connection. After close(): "closed".
//       When a reply is followed by more maps in one frame, the rest of the frame is handled
//       in a later task, so code awaiting the reply runs before the pushes that follow it.
//   client._call(map, onReply, onError, {resend}?) -> the same with plain callbacks, called
//       synchronously from the frame (rooms and presence use it: no push can slip between a
//       reply and its handling).
//   client._send(map): fire and forget (no id); waits for the next connection if there is none.
//   client._route(room, kind, handler) -> unsubscribe fn: pushes {t: kind, room} ("msg",
//       "pdiff", "typing", "op") are handed to handler(map), in arrival order.
//   client._onReconnected(fn) -> unsubscribe fn: fn() runs after `connected` on every
//       reconnection (not the first connection after connect()), after rooms were sent their
//       resubscriptions and before waiting requests are flushed.
//   client._recycle(reason): drop the connection and reconnect (a reply that never came).
//   client._newKey(): a fresh idempotency key.
//   client._report(error): emits it on the client's "error" event.
//   client._ready: a connection is up and `connected` was received. client._ended: closed for
//       good (requests fail with "closed" until connect()).
//   client.room(name).presence._reset(pseq, members): a snapshot from a `subscribed` or
//       `opened` reply. client.room(name).setState(state). client.clientId.
import { Encoder, decodeMulti } from "@msgpack/msgpack";
import { Backoff } from "./backoff.js";
import { Emitter } from "./emitter.js";
import { TroupeError } from "./errors.js";
import { Room } from "./room.js";
import { TextDocument } from "./document.js";

// Close codes after which coming back cannot help: the token was refused, the client abused
// the rate limit, or it speaks the protocol wrongly (a retry would do the same again).
const NO_RECONNECT = new Set([1003, 1009, 4400, 4403, 4429]);
// Outgoing batches are cut into frames of at most this size (the engine's --max-frame is 1 MiB).
const MAX_FRAME_BYTES = 256 * 1024;
const KEY_CHARS = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

// ignoreUndefined: an optional field left undefined must be absent, not nil (a wrong type).
const encoder = new Encoder({ ignoreUndefined: true });

export class Client extends Emitter {
  #url;
  #token;
  #user;
  #name;
  #WebSocket;
  #timeoutMs;
  #random;
  #backoff;

  #state = "closed";
  #clientId;
  #userId;
  #ws = null;
  #ready = false; // `connected` received on #ws
  #started = false; // connect() called and not ended since
  #ended = false; // ended for good: requests fail with "closed" until connect()
  #everConnected = false; // since connect(): the next `connected` is a reconnection
  #refusal = null; // the error that refused the connection (bad token)
  #attempt = 0; // generation of connection attempts: stale callbacks check it
  #connectedAt = 0;
  #disconnectNote = null;
  #connectWaiters = [];
  #reconnectTimer = null;

  #nextId = 0;
  #pending = new Map(); // id -> entry {id, map, resend, sent, done, timer, onReply, onError, async}
  #queue = []; // waiting for the next connection: pending entries and {oneway, map}
  #out = []; // encoded maps of the next outgoing frame
  #flushScheduled = false;
  #inbox = []; // decoded incoming maps not yet handled
  #inboxPos = 0;
  #paused = false;

  #pingMs = 0;
  #pingTimer = null;
  #deadTimer = null;

  #routes = new Map();
  #reconnectHooks = new Set();
  #rooms = new Map();
  #documents = new Map();
  #keyPrefix;
  #keyCounter = 0;

  constructor(options) {
    super();
    if (!options || typeof options.url !== "string") throw new TypeError("Client: options.url is required");
    this.#url = options.url;
    this.#token = options.token;
    this.#user = options.user;
    this.#name = options.name;
    this.#WebSocket = options.WebSocket;
    this.#timeoutMs = options.requestTimeoutMs ?? 10000;
    this.#random = options.random ?? Math.random;
    this.#backoff = new Backoff(options.backoff, this.#random);
    this.#keyPrefix = this.#randomString(12);
  }

  get state() {
    return this.#state;
  }
  get clientId() {
    return this.#clientId;
  }
  get user() {
    return this.#userId;
  }

  // ---- public API ------------------------------------------------------------------------

  connect() {
    if (this.#ready) return Promise.resolve();
    const done = new Promise((resolve, reject) => this.#connectWaiters.push({ resolve, reject }));
    if (!this.#started) {
      this.#started = true;
      this.#ended = false;
      this.#everConnected = false;
      this.#refusal = null;
      this.#backoff.reset();
      this.#setState({ state: "connecting" });
      this.#open();
    }
    return done;
  }

  close() {
    const ws = this.#ws;
    if (ws) {
      this.#detach(ws);
      try {
        ws.close(1000, "bye");
      } catch {
        // already closing
      }
    }
    this.#end(1000, "closed by the client", new TroupeError("closed", "the client was closed"));
  }

  async ping() {
    const t0 = performance.now();
    await this._request({ t: "ping" });
    return performance.now() - t0;
  }

  // Calls `method` of the application's backend (the engine's --backend) with `data`.
  // Resolves with the reply's data (null when none); rejects with a TroupeError carrying the
  // contract's code: the backend's own, "unavailable", "not_found" (no backend),
  // "rate_limited" (16 calls in flight). Never resent after a reconnect: it may have run.
  async rpc(method, data) {
    if (typeof method !== "string" || method === "") throw new TypeError("rpc: a method is required");
    const map = { t: "rpc", method };
    if (data !== undefined) map.data = data;
    const reply = await this._request(map);
    return reply.data === undefined ? null : reply.data;
  }

  room(name) {
    if (typeof name !== "string" || name === "") throw new TypeError("room: a name is required");
    let room = this.#rooms.get(name);
    if (!room) this.#rooms.set(name, (room = new Room(this, name)));
    return room;
  }

  document(name) {
    if (typeof name !== "string" || name === "") throw new TypeError("document: a name is required");
    let doc = this.#documents.get(name);
    if (!doc) this.#documents.set(name, (doc = new TextDocument(this, name)));
    return doc;
  }

  // ---- internal hooks (see the top of this file) -----------------------------------------

  get _ready() {
    return this.#ready;
  }

  get _ended() {
    return this.#ended;
  }

  _request(map, { resend = false } = {}) {
    return new Promise((resolve, reject) => this.#call(map, resolve, reject, resend, true));
  }

  _call(map, onReply, onError, { resend = false } = {}) {
    this.#call(map, onReply, onError, resend, false);
  }

  _send(map) {
    if (this.#ended) return;
    if (this.#ready) this.#write(map);
    else this.#queue.push({ oneway: true, map });
  }

  _route(room, kind, handler) {
    const key = `${kind} ${room}`;
    let set = this.#routes.get(key);
    if (!set) this.#routes.set(key, (set = new Set()));
    const entry = (m) => handler(m);
    set.add(entry);
    return () => {
      set.delete(entry);
    };
  }

  _onReconnected(fn) {
    const entry = () => fn();
    this.#reconnectHooks.add(entry);
    return () => {
      this.#reconnectHooks.delete(entry);
    };
  }

  _recycle(reason) {
    if (this.#ws) this.#drop(1006, reason);
  }

  _newKey() {
    return `${this.#keyPrefix}-${++this.#keyCounter}`;
  }

  _report(error) {
    this._emit("error", error);
  }

  // ---- requests --------------------------------------------------------------------------

  #call(map, onReply, onError, resend, async) {
    if (this.#ended) {
      onError(new TroupeError("closed", "the client is closed"));
      return;
    }
    const entry = this.#register(map, onReply, onError, resend, async);
    if (this.#ready) this.#transmit(entry);
    else this.#queue.push(entry);
  }

  #register(map, onReply, onError, resend, async) {
    const id = ++this.#nextId;
    const entry = { id, map: { ...map, id }, resend, sent: false, done: false, onReply, onError, async };
    entry.timer = setTimeout(
      () => this.#settle(id, new TroupeError("timeout", `no reply to ${map.t} within ${this.#timeoutMs} ms`)),
      this.#timeoutMs,
    );
    this.#pending.set(id, entry);
    return entry;
  }

  #transmit(entry) {
    entry.sent = true;
    this.#write(entry.map);
  }

  // Settles request `id` with an error or a reply; true when the caller awaits a promise.
  #settle(id, error, reply) {
    const entry = this.#pending.get(id);
    if (!entry) return false;
    this.#pending.delete(id);
    clearTimeout(entry.timer);
    entry.done = true;
    if (error) entry.onError(error);
    else entry.onReply(reply);
    return entry.async;
  }

  // ---- outgoing: one frame per microtask ----------------------------------------------------

  #write(map) {
    this.#out.push(encoder.encode(map));
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    queueMicrotask(() => this.#flush());
  }

  #flush() {
    this.#flushScheduled = false;
    const parts = this.#out;
    this.#out = [];
    const ws = this.#ws;
    if (!ws || ws.readyState !== 1 || parts.length === 0) return; // lost: the request table knows
    let i = 0;
    while (i < parts.length) {
      let size = parts[i].length;
      let j = i + 1;
      while (j < parts.length && size + parts[j].length <= MAX_FRAME_BYTES) size += parts[j++].length;
      const frame = new Uint8Array(size);
      let at = 0;
      for (let k = i; k < j; k++) {
        frame.set(parts[k], at);
        at += parts[k].length;
      }
      ws.send(frame);
      i = j;
    }
  }

  // ---- the connection ----------------------------------------------------------------------

  #open() {
    this.#reconnectTimer = null;
    const attempt = ++this.#attempt;
    if (typeof this.#token !== "function") return this.#openSocket(attempt, this.#token);
    // A fresh token for each (re)connect, from the application's backend.
    Promise.resolve()
      .then(() => this.#token())
      .then(
        (token) => this.#openSocket(attempt, token),
        (err) => {
          if (attempt !== this.#attempt) return;
          this._report(new TroupeError("unauthorized", `the token function failed: ${err?.message ?? err}`));
          this.#onClosed(1006, "no token");
        },
      );
  }

  #openSocket(attempt, token) {
    if (attempt !== this.#attempt || !this.#started) return; // closed meanwhile
    const WS = this.#WebSocket ?? globalThis.WebSocket;
    let ws;
    try {
      if (!WS) throw new Error("no WebSocket class (pass options.WebSocket)");
      ws = new WS(this.#url);
    } catch (err) {
      const error = new TroupeError("closed", `cannot open ${this.#url}: ${err?.message ?? err}`);
      this._report(error);
      this.#end(1006, error.reason, error);
      return;
    }
    ws.binaryType = "arraybuffer";
    this.#ws = ws;
    this.#inbox = [];
    this.#inboxPos = 0;
    this.#paused = false;
    ws.onopen = () => {
      if (ws === this.#ws) this.#handshake(ws, token);
    };
    ws.onmessage = (ev) => {
      if (ws === this.#ws) this.#onFrame(ev.data);
    };
    ws.onclose = (ev) => {
      if (ws === this.#ws) this.#onClosed(ev.code ?? 1006, ev.reason ?? "");
    };
    ws.onerror = () => {}; // a close event follows, with the code
  }

  #handshake(ws, token) {
    const map = { t: "connect", token: token || undefined, user: this.#user, name: this.#name };
    const onReply = (reply) => this.#onConnected(ws, reply);
    const onError = (err) => {
      if (ws !== this.#ws) return;
      if (err.code === "timeout") return this.#drop(1006, "no `connected` reply in time");
      // Refused (bad token): the engine closes with 4403; do not come back.
      this.#refusal = err;
      this._report(err);
      this.#drop(4403, err.reason || err.code);
    };
    this.#transmit(this.#register(map, onReply, onError, false, false));
  }

  #onConnected(ws, reply) {
    if (ws !== this.#ws) return;
    this.#clientId = reply.client == null ? undefined : String(reply.client);
    this.#userId = reply.user == null ? undefined : String(reply.user);
    this.#pingMs = Number(reply.ping) > 0 ? Number(reply.ping) * 1000 : 25000;
    this.#ready = true;
    this.#connectedAt = Date.now();
    const reconnection = this.#everConnected;
    this.#everConnected = true;
    this.#startKeepAlive();
    this.#setState({ state: "connected" });
    if (ws !== this.#ws) return; // a listener closed us
    // Order on a new connection: resubscriptions, then the reopen hooks, then what waited.
    for (const room of this.#rooms.values()) room._connected();
    if (reconnection) {
      for (const hook of [...this.#reconnectHooks]) {
        try {
          hook();
        } catch (err) {
          queueMicrotask(() => {
            throw err;
          });
        }
      }
    }
    if (ws !== this.#ws) return;
    const queue = this.#queue;
    this.#queue = [];
    for (const item of queue) {
      if (item.oneway) this.#write(item.map);
      else if (!item.done) this.#transmit(item);
    }
    for (const w of this.#connectWaiters.splice(0)) w.resolve();
  }

  // ---- incoming ----------------------------------------------------------------------------

  #onFrame(data) {
    if (this.#ready) this.#armDeadline();
    let bytes;
    if (data instanceof ArrayBuffer) bytes = new Uint8Array(data);
    else if (ArrayBuffer.isView(data)) bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    else return this._report(new TroupeError("protocol_error", "a frame from the engine that is not binary"));
    const it = decodeMulti(bytes);
    for (;;) {
      let next;
      try {
        next = it.next();
      } catch (err) {
        this._report(new TroupeError("protocol_error", `a frame that is not MessagePack: ${err?.message ?? err}`));
        break;
      }
      if (next.done) break;
      this.#inbox.push(next.value);
    }
    this.#drain();
  }

  // Handles the inbox in order. After a reply that settles a promise, the rest waits for a
  // later task: every `await` on that reply resumes before the next map is handled.
  #drain() {
    if (this.#paused) return;
    const inbox = this.#inbox;
    while (this.#inboxPos < inbox.length && inbox === this.#inbox) {
      const map = inbox[this.#inboxPos++];
      let yielded = false;
      try {
        yielded = this.#dispatch(map);
      } catch (err) {
        queueMicrotask(() => {
          throw err;
        });
      }
      if (yielded && inbox === this.#inbox && this.#inboxPos < inbox.length) {
        this.#paused = true;
        setTimeout(() => {
          if (inbox !== this.#inbox) return;
          this.#paused = false;
          this.#drain();
        }, 0);
        return;
      }
    }
    if (inbox === this.#inbox) {
      this.#inbox = [];
      this.#inboxPos = 0;
    }
  }

  #dispatch(m) {
    if (m === null || typeof m !== "object" || Array.isArray(m)) {
      this._report(new TroupeError("protocol_error", "an item of a frame from the engine is not a map"));
      return false;
    }
    const t = m.t;
    if (m.id != null) {
      const id = Number(m.id);
      if (!this.#pending.has(id)) return false; // a late reply to a request that already failed
      if (t === "error") return this.#settle(id, new TroupeError(m.code ?? "internal", m.reason ?? ""));
      return this.#settle(id, null, m);
    }
    if (t === "error") {
      this._report(new TroupeError(m.code ?? "internal", m.reason ?? ""));
      return false;
    }
    if (t === "disconnect") {
      this.#disconnectNote = { code: m.code, reason: m.reason, reconnect: m.reconnect };
      return false;
    }
    if (typeof m.room === "string") {
      const handlers = this.#routes.get(`${t} ${m.room}`);
      if (handlers) for (const h of [...handlers]) h(m);
    }
    return false;
  }

  // ---- keep-alive: browsers cannot see WebSocket pings, so ask for pongs ---------------------

  #startKeepAlive() {
    this.#stopKeepAlive();
    this.#armDeadline();
    this.#pingTimer = setInterval(() => {
      if (this.#ready) this.#write({ t: "ping", id: ++this.#nextId }); // its pong is any frame
    }, this.#pingMs);
  }

  #armDeadline() {
    clearTimeout(this.#deadTimer);
    this.#deadTimer = setTimeout(() => this.#drop(1006, "nothing from the engine within 2 × ping"), 2 * this.#pingMs);
  }

  #stopKeepAlive() {
    clearInterval(this.#pingTimer);
    clearTimeout(this.#deadTimer);
    this.#pingTimer = this.#deadTimer = null;
  }

  // ---- losing the connection ---------------------------------------------------------------

  #detach(ws) {
    ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
  }

  // Ends the connection from this side (dead, refused) and handles it as closed at once: a
  // dead connection's close event may take minutes to come.
  #drop(code, reason) {
    const ws = this.#ws;
    if (!ws) return;
    this.#detach(ws);
    try {
      ws.close(4000, String(reason).slice(0, 100));
    } catch {
      // already closing
    }
    this.#onClosed(code, reason);
  }

  #onClosed(code, reason) {
    if (this.#ws) this.#detach(this.#ws);
    this.#ws = null;
    this.#ready = false;
    this.#out = [];
    this.#inbox = [];
    this.#inboxPos = 0;
    this.#paused = false;
    this.#stopKeepAlive();
    const note = this.#disconnectNote;
    this.#disconnectNote = null;
    if (note) {
      if (typeof note.code === "number") code = note.code;
      if (note.reason) reason = note.reason;
    }
    const why = reason || `connection closed (${code})`;

    for (const room of this.#rooms.values()) room._disconnected();
    // Requests on the wire: resend the idempotent ones first, in their order; fail the rest.
    const resend = [];
    for (const entry of [...this.#pending.values()]) {
      if (!entry.sent) continue; // still waiting in the queue
      if (entry.resend) {
        entry.sent = false;
        resend.push(entry);
      } else {
        this.#settle(entry.id, new TroupeError("disconnected", why));
      }
    }
    this.#queue = [...resend, ...this.#queue];

    const again =
      this.#started &&
      !this.#refusal &&
      (note && typeof note.reconnect === "boolean" ? note.reconnect : !NO_RECONNECT.has(code));
    if (!again) {
      this.#end(code, why, this.#refusal ?? new TroupeError("closed", why));
      return;
    }
    // A connection that lasted starts the backoff again; one cut at once keeps growing it.
    if (this.#connectedAt && Date.now() - this.#connectedAt >= this.#backoff.maxMs) this.#backoff.reset();
    this.#connectedAt = 0;
    const delay = this.#backoff.next();
    this.#reconnectTimer = setTimeout(() => this.#open(), delay);
    this.#setState({ state: "reconnecting", code, reason: why, retryInMs: delay });
  }

  // Ends for good: everything waiting fails with `error`.
  #end(code, reason, error) {
    const wasStarted = this.#started;
    this.#started = false;
    this.#ended = true;
    this.#ready = false;
    this.#attempt++;
    clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = null;
    this.#stopKeepAlive();
    this.#ws = null;
    this.#out = [];
    this.#inbox = [];
    this.#inboxPos = 0;
    this.#disconnectNote = null;
    for (const room of this.#rooms.values()) room._closed(error);
    for (const id of [...this.#pending.keys()]) this.#settle(id, error);
    this.#queue = [];
    for (const w of this.#connectWaiters.splice(0)) w.reject(this.#refusal ?? error);
    if (wasStarted || this.#state !== "closed") this.#setState({ state: "closed", code, reason });
  }

  #setState(event) {
    this.#state = event.state;
    this._emit("state", event);
  }

  #randomString(n) {
    let s = "";
    for (let i = 0; i < n; i++) s += KEY_CHARS[Math.floor(this.#random() * KEY_CHARS.length) % KEY_CHARS.length];
    return s;
  }
}
