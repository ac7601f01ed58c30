// Room: a subscription's ordered, gap-free message stream, its presence and typing.
//
// Messages: pushes are delivered only when seq == last + 1. A jump holds later pushes back,
// asks `history` since last (page by page), then delivers in order. If the history no longer
// reaches back (or its epoch changed), the room is subscribed again without `since` and a
// "subscribed" event of kind "rebuilt" carries the newest kept messages. After a reconnect
// the client resubscribes with `since`: "recovered" (the missed messages came through
// "message" first) or "rebuilt".
import { encode } from "@msgpack/msgpack";
import { Emitter } from "./emitter.js";
import { TroupeError } from "./errors.js";
import { PresenceView } from "./presence.js";

// The engine lapses typing after 6 s without a refresh; refresh at half that while typing.
const TYPING_REFRESH_MS = 3000;

const num = (x) => (typeof x === "bigint" ? Number(x) : x);

function toMessage(room, m) {
  const msg = { room, seq: Number(num(m.seq)), user: m.user == null ? "" : String(m.user), data: m.data, ts: Number(num(m.ts)) };
  if (m.key != null) msg.key = m.key;
  return msg;
}

function sameValue(a, b) {
  if (a === undefined || b === undefined || a === null || b === null) return a == b;
  try {
    const x = encode(a);
    const y = encode(b);
    return x.length === y.length && x.every((v, i) => v === y[i]);
  } catch {
    return false;
  }
}

export class Room extends Emitter {
  #client;
  #presence;

  // Message stream.
  #want = false; // the user wants this room subscribed
  #phase = "idle"; // idle | subscribing | live | fetching (a gap: history asked, pushes held)
  #token = 0; // replies of an older `sub` or `history` check it
  #havePosition = false;
  #last = 0;
  #epoch;
  #since = null; // of the `sub` in flight
  #rebuilding = false; // the next `subscribed` is a rebuild
  #held = new Map(); // seq -> message, after a gap
  #waiters = []; // subscribe() calls waiting for `subscribed`
  #lastEvent = null;

  // Presence state (pset) and typing.
  #state; // the state we want the engine to have
  #ackedState;
  #stateWaiters = [];
  #typing = new Map(); // client -> {user, client, name?}: others typing
  #myTyping = null; // {timer, dirty, idle} while this connection says it is typing

  constructor(client, name) {
    super();
    this.name = name;
    this.#client = client;
    this.#presence = new PresenceView(client, name, (left) => this.#onPresence(left));
    client._route(name, "msg", (m) => this.#onPush(m));
    client._route(name, "typing", (m) => this.#onTyping(m));
  }

  get seq() {
    return this.#last;
  }
  get epoch() {
    return this.#epoch;
  }
  /** True from subscribe() resolving until unsubscribe(), reconnections included. */
  get subscribed() {
    return this.#want && this.#havePosition;
  }
  get presence() {
    return this.#presence;
  }
  get typingUsers() {
    return [...this.#typing.values()];
  }

  // ---- subscription --------------------------------------------------------------------

  subscribe() {
    if (this.#client._ended) return Promise.reject(new TroupeError("closed", "the client is closed"));
    if (this.#want && this.#lastEvent && (this.#phase === "live" || this.#phase === "fetching"))
      return Promise.resolve(this.#lastEvent);
    const done = new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
    if (!this.#want) {
      this.#want = true;
      if (this.#client._ready) this.#sendSub();
      // else: sent when the client connects (_connected)
    }
    return done;
  }

  async unsubscribe() {
    const was = this.#want;
    this.#want = false;
    this.#havePosition = false; // a later subscribe() starts afresh
    this.#lastEvent = null;
    this.#stop();
    const error = new TroupeError("closed", "unsubscribed");
    for (const w of this.#waiters.splice(0)) w.reject(error);
    for (const w of this.#stateWaiters.splice(0)) w.reject(error);
    if (!was || !this.#client._ready) return;
    try {
      await this.#client._request({ t: "unsub", room: this.name });
    } catch (err) {
      // The subscription ended anyway.
      if (!["disconnected", "closed", "not_subscribed"].includes(err.code)) throw err;
    }
  }

  #sendSub() {
    this.#phase = "subscribing";
    this.#held.clear();
    this.#since = this.#havePosition && !this.#rebuilding ? { seq: this.#last, epoch: this.#epoch } : null;
    const token = ++this.#token;
    const map = { t: "sub", room: this.name };
    if (this.#since) map.since = this.#since;
    this.#client._call(
      map,
      (reply) => token === this.#token && this.#onSubscribed(reply),
      (err) => token === this.#token && this.#onSubFailed(err),
    );
  }

  #onSubscribed(r) {
    if (this.#phase !== "subscribing") return;
    const askedSince = this.#since !== null;
    this.#since = null;
    const seq = Number(num(r.seq) ?? 0);
    const epoch = r.epoch == null ? "" : String(r.epoch);
    const messages = (Array.isArray(r.msgs) ? r.msgs : []).map((m) => toMessage(this.name, m));
    // Presence first, so that the view is complete when "subscribed" is heard.
    this.#presence._reset(r.pseq, r.members);
    this.#syncState();

    if (r.recovered === true && askedSince && this.#havePosition) {
      this.#epoch = epoch;
      this.#rebuilding = false;
      for (const m of messages) {
        if (m.seq <= this.#last) continue;
        if (m.seq === this.#last + 1) this.#deliver(m);
        else this.#held.set(m.seq, m);
      }
      const event = { kind: "recovered", seq, epoch, messages };
      if (this.#held.size === 0 && this.#last >= seq) {
        this.#phase = "live";
        this.#subscribedEvent(event);
      } else {
        // "Recovered", yet with a hole: fill it like any other gap.
        this.#phase = "fetching";
        this.#subscribedEvent(event);
        this.#fetchHistory();
      }
      return;
    }
    const kind = askedSince || this.#rebuilding ? "rebuilt" : "initial";
    this.#rebuilding = false;
    this.#held.clear();
    this.#last = seq;
    this.#epoch = epoch;
    this.#havePosition = true;
    this.#phase = "live";
    this.#subscribedEvent({ kind, seq, epoch, messages });
  }

  #subscribedEvent(event) {
    this.#lastEvent = event;
    this._emit("subscribed", event);
    for (const w of this.#waiters.splice(0)) w.resolve(event);
  }

  #onSubFailed(err) {
    if (err.code === "disconnected" || err.code === "closed") return; // resubscribed on reconnect
    if (err.code === "timeout") return this.#client._recycle("no reply to `sub` in time");
    // Refused (forbidden, …): the room is no longer subscribed.
    this.#want = false;
    this.#phase = "idle";
    const waiters = this.#waiters.splice(0);
    for (const w of waiters) w.reject(err);
    if (waiters.length === 0) this.#client._report(err);
  }

  // ---- the ordered stream ----------------------------------------------------------------

  #deliver(m) {
    this.#last = m.seq;
    this._emit("message", m);
  }

  #onPush(raw) {
    if (this.#phase !== "live" && this.#phase !== "fetching") return; // the (re)subscription covers it
    const m = toMessage(this.name, raw);
    if (!(m.seq > this.#last)) return; // already delivered
    if (this.#phase === "live" && m.seq === this.#last + 1) return this.#deliver(m);
    this.#held.set(m.seq, m);
    if (this.#phase === "live") {
      this.#phase = "fetching";
      this.#fetchHistory();
    } else {
      this.#drainHeld();
    }
  }

  #drainHeld() {
    for (;;) {
      const next = this.#held.get(this.#last + 1);
      if (!next) break;
      this.#held.delete(next.seq);
      this.#deliver(next);
    }
    for (const seq of this.#held.keys()) if (seq <= this.#last) this.#held.delete(seq);
  }

  #fetchHistory() {
    const token = this.#token;
    this.#client._call(
      { t: "history", room: this.name, since: this.#last },
      (h) => token === this.#token && this.#onHistory(h),
      (err) => {
        if (token !== this.#token || this.#phase !== "fetching") return;
        if (err.code === "disconnected" || err.code === "closed") return;
        if (err.code === "timeout") return this.#client._recycle("no reply to `history` in time");
        this.#sendSub(); // let the engine decide: resubscribe from our position
      },
    );
  }

  #onHistory(h) {
    if (this.#phase !== "fetching") return;
    if (String(h.epoch) !== this.#epoch) return this.#rebuild();
    let progressed = false;
    let hole = false;
    for (const raw of Array.isArray(h.msgs) ? h.msgs : []) {
      const m = toMessage(this.name, raw);
      if (m.seq <= this.#last) continue;
      if (m.seq !== this.#last + 1) {
        hole = true;
        break;
      }
      this.#held.delete(m.seq);
      this.#deliver(m);
      progressed = true;
    }
    this.#drainHeld();
    if (this.#held.size === 0) {
      this.#phase = "live";
      return;
    }
    if (hole || !progressed) return this.#rebuild(); // the kept history no longer reaches back
    this.#fetchHistory(); // a page limit: ask for the rest
  }

  #rebuild() {
    this.#rebuilding = true;
    this.#sendSub(); // without since; the engine resynchronises a repeated `sub`
  }

  // ---- the client tells ----------------------------------------------------------------

  _connected() {
    if (this.#want && this.#phase === "idle") this.#sendSub();
  }

  _disconnected() {
    this.#stop();
    this.#presence._disconnected();
  }

  _closed(error) {
    this._disconnected();
    this.#want = false;
    for (const w of this.#waiters.splice(0)) w.reject(error);
    for (const w of this.#stateWaiters.splice(0)) w.reject(error);
  }

  // Ends what lived on the connection: the stream's phase, our typing, others' typing.
  #stop() {
    this.#phase = "idle";
    this.#token++;
    this.#held.clear();
    this.#since = null;
    this.#stopTyping();
    if (this.#typing.size) {
      this.#typing.clear();
      this._emit("typing", []);
    }
  }

  // ---- publish and history ---------------------------------------------------------------

  async publish(data, options = {}) {
    const key = options.key ?? this.#client._newKey();
    // Always keyed, so resending after a reconnect is safe: the engine applies a key once.
    const reply = await this.#client._request({ t: "pub", room: this.name, data, key }, { resend: true });
    return { seq: Number(num(reply.seq)) };
  }

  async history(since, limit) {
    const h = await this.#client._request({ t: "history", room: this.name, since, limit });
    return {
      seq: Number(num(h.seq)),
      epoch: String(h.epoch ?? ""),
      messages: (Array.isArray(h.msgs) ? h.msgs : []).map((m) => toMessage(this.name, m)),
    };
  }

  // ---- presence state --------------------------------------------------------------------

  setState(state) {
    if (this.#client._ended) return Promise.reject(new TroupeError("closed", "the client is closed"));
    if (!this.#want) {
      // Not subscribed here (the room's document may hold it): send it as it is; the engine
      // answers. A drop fails it with "disconnected": the holder sets it again on reopening.
      return this.#client._request({ t: "pset", room: this.name, state }).then(() => {});
    }
    this.#state = state;
    const done = new Promise((resolve, reject) => this.#stateWaiters.push({ resolve, reject }));
    if (this.#client._ready && this.#phase !== "idle" && this.#phase !== "subscribing") this.#sendState();
    // else: sent once the subscription is live (#syncState)
    return done;
  }

  // After each `subscribed`: the engine forgot our state with the old connection.
  #syncState() {
    if (this.#state === undefined) return;
    const self = this.#presence.byClient().get(this.#client.clientId);
    if (self && sameValue(self.state, this.#state)) {
      for (const w of this.#stateWaiters.splice(0)) w.resolve();
      return;
    }
    this.#sendState();
  }

  #sendState() {
    const waiters = this.#stateWaiters.splice(0);
    const sent = this.#state;
    this.#client._call(
      { t: "pset", room: this.name, state: sent },
      () => {
        this.#ackedState = sent;
        for (const w of waiters) w.resolve();
      },
      (err) => {
        if (err.code === "disconnected" && this.#want) {
          this.#stateWaiters.unshift(...waiters); // set again once resubscribed
          return;
        }
        // Refused (too_large, …): keep the last state the engine accepted.
        if (err.code !== "timeout" && this.#state === sent) this.#state = this.#ackedState;
        for (const w of waiters) w.reject(err);
      },
    );
  }

  // ---- typing ------------------------------------------------------------------------

  /** Call on each keystroke: on:true goes out at once, then at most every 3 s while the calls
   *  continue; after 6 s without a call it has lapsed (here and in the engine). */
  typing(on) {
    if (!on) {
      if (this.#myTyping) {
        this.#stopTyping();
        this.#sendTyping(false);
      }
      return;
    }
    const t = this.#myTyping;
    if (t && t.idle === 0) {
      t.dirty = true; // refreshed at the next tick
      return;
    }
    if (!t) {
      // Ephemeral: nothing to send later when there is no live subscription.
      if (!this.#want || !this.#client._ready || this.#phase === "idle" || this.#phase === "subscribing") return;
    }
    // First call, or the first after a quiet tick (the last on:true is 3 s old): send now.
    this.#stopTyping();
    const next = { timer: null, dirty: false, idle: 0 };
    next.timer = setInterval(() => {
      if (next.dirty) {
        next.dirty = false;
        next.idle = 0;
        this.#sendTyping(true);
      } else if (++next.idle >= 2) {
        this.#stopTyping(); // lapsed, as the engine lapses it: 6 s after the last on:true
      }
    }, TYPING_REFRESH_MS);
    this.#myTyping = next;
    this.#sendTyping(true);
  }

  #sendTyping(on) {
    if (this.#client._ready) this.#client._send({ t: "typing", room: this.name, on });
  }

  #stopTyping() {
    if (!this.#myTyping) return;
    clearInterval(this.#myTyping.timer);
    this.#myTyping = null;
  }

  #onTyping(m) {
    const client = String(m.client);
    if (client === this.#client.clientId) return;
    if (m.on) {
      if (this.#typing.has(client)) return;
      const entry = { user: String(m.user), client };
      const name = this.#presence.byClient().get(client)?.name;
      if (name !== undefined) entry.name = name;
      this.#typing.set(client, entry);
    } else if (!this.#typing.delete(client)) {
      return;
    }
    this._emit("typing", this.typingUsers);
  }

  #onPresence(left) {
    this._emit("presence", this.#presence);
    // The engine turns a leaver's typing off; in case that was missed, drop it here too.
    let changed = false;
    for (const client of left) changed = this.#typing.delete(client) || changed;
    if (changed) this._emit("typing", this.typingUsers);
  }
}
