// A room's collaborative text document, as one client sees it: the classic OT client with one
// operation in flight (the same logic as client/document_state.cpp and client/document.cpp).
//
//   server text (rev) ──(in flight)──▶ ──(buffer)──▶ local text
//
// A local edit becomes the operation in flight, or is composed into the buffer behind it.
// An incoming operation (rev + 1) is transformed over the in-flight operation and the buffer,
// and they over it: ours keep their inserts first at a tie ("left"), since the engine will
// accept them later. An ack makes the buffer the next operation in flight. After a reconnect
// (or a rev hole) the document reopens with `since` and resends its operation in flight with
// the same key, so the engine applies it once.
//
// The wire counts code points; this API counts UTF-16 units (what JavaScript strings and
// <textarea> use): edits, splices and cursors are converted at the edge.
import { TroupeError } from "./errors.js";
import * as ot from "./ot.js";

const KEEP_OPS = 200; // server operations kept to place cursors published at an older rev
const RETRYABLE = new Set(["unavailable", "rate_limited", "internal"]);

export class TextDocument {
  constructor(client, roomName) {
    this.room = roomName;
    this._client = client;
    this._listeners = new Map();
    // Delays in ms: cursor publishes (moved by the user; refreshed as others move the rev) and
    // retries after unavailable / rate_limited. Tests shorten them.
    this._timing = { cursorThrottleMs: 100, cursorRefreshMs: 1000, retryMs: 1000 };
    this._prefix = randomPrefix();
    this._counter = 0;
    this._phase = "idle"; // idle (not live: before open, or waiting for a connection), opening, open, closed
    this._wanted = false; // open() was called and close() was not
    this._hooks = [];
    this._gen = 0; // connections seen: a reply from an earlier one is stale
    this._openToken = 0;
    this._openWait = null;
    this._early = []; // pushes that came while an open was on its way
    this._syncWaiters = [];
    this._retryTimer = null;
    this._cursorTimer = null;
    this._cursorTimerAt = 0;
    this._lastCursors = [];
    this._resetTo(0, undefined, "");
    this._opened = false;
    this._cursor = null; // our own, in code points of the local text
    this._cursorDirty = false;
    this._cursorSent = null;
    this._cursorSentAt = -Infinity;
  }

  // ---- what it holds ------------------------------------------------------------------------

  get text() {
    return this._local;
  }
  get rev() {
    return this._rev;
  }
  get epoch() {
    return this._epoch;
  }
  get pending() {
    return this._inflight !== null || this._buffer !== null;
  }
  /** From the first `opened` until close(), reconnections included: edits are accepted. */
  get isOpen() {
    return this._opened && this._wanted;
  }
  get cursors() {
    const out = [];
    if (this._cursors.size === 0) return out;
    const n = ot.length(this._local);
    const local = (p) => {
      if (this._inflight) p = ot.transformPosition(p, this._inflight.op);
      if (this._buffer) p = ot.transformPosition(p, this._buffer);
      return ot.toUtf16(this._local, Math.min(p, n));
    };
    for (const [client, c] of this._cursors) {
      const r = { client, user: c.user };
      if (c.name !== undefined) r.name = c.name;
      r.position = local(c.pos);
      if (c.anchor !== undefined) r.anchor = local(c.anchor);
      out.push(r);
    }
    return out;
  }

  on(event, fn) {
    if (typeof fn !== "function") throw new TypeError("listener must be a function");
    let set = this._listeners.get(event);
    if (!set) this._listeners.set(event, (set = new Set()));
    const entry = (arg) => fn(arg); // one function added twice is two listeners
    set.add(entry);
    return () => set.delete(entry);
  }

  _emit(event, arg) {
    for (const fn of [...(this._listeners.get(event) ?? [])]) {
      try {
        fn(arg);
      } catch (err) {
        queueMicrotask(() => {
          throw err; // a listener's bug must not break the document's bookkeeping
        });
      }
    }
  }

  // ---- opening and closing ------------------------------------------------------------------

  open() {
    if (this._wanted) return this._openWait.promise;
    if (this._phase === "closed") {
      // Opened again after close(): start from the engine's text.
      this._resetTo(0, undefined, "");
      this._opened = false;
      this._cursor = null;
    }
    this._wanted = true;
    this._phase = "idle";
    let resolve, reject;
    const promise = new Promise((res, rej) => ((resolve = res), (reject = rej)));
    this._openWait = { promise, resolve, reject, done: false };
    const room = this._client.room(this.room);
    this._hooks = [
      this._client._route(this.room, "op", (m) => this._onPush(m)),
      this._client._onReconnected(() => this._onReconnected()),
      room.on("presence", (view) => this._syncCursors(view?.members ?? room.presence?.members)),
    ];
    this._sendOpen(false);
    return promise;
  }

  close() {
    if (!this._wanted) return Promise.resolve();
    this._wanted = false;
    this._phase = "closed";
    for (const off of this._hooks) off?.();
    this._hooks = [];
    clearTimeout(this._retryTimer);
    clearTimeout(this._cursorTimer);
    this._retryTimer = this._cursorTimer = null;
    const closed = () => new TroupeError("closed", "the document was closed");
    if (!this._openWait.done) this._openWait.reject(closed());
    this._openWait.done = true;
    for (const w of this._syncWaiters.splice(0)) w.reject(closed());
    this._cursors.clear();
    this._parked.clear();
    this._raw.clear();
    this._checkCursors();
    return this._client._request({ t: "close", room: this.room }).then(
      () => undefined,
      (err) => {
        if (!["disconnected", "closed", "not_subscribed"].includes(err?.code)) throw err;
      },
    );
  }

  whenSynced() {
    if (!this.pending) return Promise.resolve();
    return new Promise((resolve, reject) => this._syncWaiters.push({ resolve, reject }));
  }

  _sendOpen(withSince) {
    this._phase = "opening";
    const token = ++this._openToken;
    const msg = { t: "open", room: this.room };
    if (withSince && this._opened) msg.since = { rev: this._rev, epoch: this._epoch };
    // Not kept for the next connection: the reconnection hook sends a fresh one with since.
    this._client._request(msg).then(
      (reply) => this._onOpened(token, reply),
      (err) => this._onOpenFailed(token, err),
    );
  }

  _onReconnected() {
    this._gen++;
    this._early = [];
    if (!this._wanted) return;
    this._sent = false;
    this._cursorSent = null; // publish again on this connection
    this._sendOpen(true);
  }

  _onOpened(token, reply) {
    if (token !== this._openToken || this._phase !== "opening") return; // superseded
    let rev, epoch, ops, text;
    try {
      rev = checkRev(reply?.rev, 0);
      if (typeof reply.epoch !== "string" && typeof reply.epoch !== "number") throw new TypeError("no epoch");
      epoch = String(reply.epoch);
      if (reply.recovered === true) {
        if (!Array.isArray(reply.ops)) throw new TypeError("recovered without ops");
        ops = reply.ops.map(parseDocOp);
      } else if (typeof reply.text !== "string") throw new TypeError("no text");
      else text = reply.text;
    } catch (err) {
      this._report("malformed opened reply: " + err.message);
      this._phase = "idle";
      return this._retry();
    }

    let kind = "recovered";
    let dropped = false;
    if (ops) {
      if (!this._recover(rev, epoch, ops)) return this._sendOpen(false); // start from the text
    } else if (this._opened && !this._refused && epoch === this._epoch && rev === this._rev && text === this._server) {
      this._sent = false; // nothing was lost: send what is in flight again (same key)
    } else {
      kind = this._opened ? "rebuilt" : "opened";
      dropped = this.pending;
      const before = this._local;
      this._resetTo(rev, epoch, text);
      if (before !== text) this._changed(before, diff(before, text), true);
    }
    this._opened = true;
    this._phase = "open";
    this._cursorSent = null;
    this._cursorDirty = this._cursor !== null;

    const room = this._client.room(this.room);
    room.presence._reset(reply.pseq, reply.members);
    this._syncCursors(room.presence.members);

    const event = { kind, rev: this._rev, dropped };
    this._emit("state", event);
    if (!this._openWait.done) {
      this._openWait.done = true;
      this._openWait.resolve(event);
    }
    for (const m of this._early.splice(0)) this._onPush(m); // stale ones are skipped
    if (this._phase !== "open") return; // a listener closed it, or a push found a hole
    this._flush();
    this._flushCursor();
    this._checkCursors();
    this._checkSynced();
  }

  // The missed operations of a recovered open: false if they do not lead from our rev to `rev`.
  _recover(rev, epoch, ops) {
    if (!this._opened || this._refused || epoch !== this._epoch || rev < this._rev) return false;
    for (const o of ops) {
      if (o.rev <= this._rev) continue; // the reply may start earlier than we need
      if (o.rev !== this._rev + 1 || o.rev > rev) return false;
      const r = this._remote(o);
      if (r !== "applied" && r !== "acked") return false;
    }
    if (this._rev !== rev) return false;
    this._sent = false; // what is in flight now goes out again on this connection (same key)
    return true;
  }

  _onOpenFailed(token, err) {
    if (token !== this._openToken || this._phase !== "opening") return;
    const code = err?.code;
    if (code === "disconnected") {
      this._phase = "idle"; // opened again from the reconnection hook
    } else if (code === "timeout") {
      this._sendOpen(true);
    } else if (this._opened && RETRYABLE.has(code)) {
      this._phase = "idle";
      this._report(err);
      this._retry();
    } else {
      // Refused (forbidden, not_found, …) or the client was closed: the document stays as it is.
      this._wanted = false;
      this._phase = "closed";
      for (const off of this._hooks) off?.();
      this._hooks = [];
      if (!this._openWait.done) {
        this._openWait.done = true;
        this._openWait.reject(err);
      } else this._report(err);
    }
  }

  // One timer for every retry: reopen if not live, else resend what is in flight.
  _retry() {
    if (this._retryTimer) return;
    this._retryTimer = setTimeout(() => {
      this._retryTimer = null;
      if (this._phase === "idle" && this._wanted) this._sendOpen(true);
      else if (this._phase === "open") this._flush();
    }, this._timing.retryMs);
  }

  _report(err) {
    this._emit("error", err instanceof TroupeError ? err : new TroupeError("protocol_error", String(err)));
  }

  // ---- the server's side ----------------------------------------------------------------------

  _resetTo(rev, epoch, text) {
    this._rev = rev;
    this._epoch = epoch;
    this._server = text;
    this._serverLength = ot.length(text);
    this._local = text;
    this._inflight = null; // {op, key}: against the server text at rev, transformed as ops arrive
    this._buffer = null; // local edits behind it, composed
    this._sent = false; // the op in flight was sent on this connection
    this._refused = false; // refused for good: dropped by the next open
    this._failedKey = null; // the key that got a conflict once
    this._log = []; // server operations of revs rev - log.length + 1 … rev
    // Remote cursors at rev (code points of the server text), those parked for a later rev,
    // and what each client last published (to see when it changes).
    this._cursors = new Map();
    this._parked = new Map();
    this._raw = new Map();
  }

  _onPush(msg) {
    if (this._phase === "opening") {
      // Pushes that overtake the reply of an open: the older ones are stale after it, the
      // newer ones follow it. Kept, to be sorted out once the reply is in.
      if (this._early.push(msg) > 10000) this._early = [];
      return;
    }
    if (this._phase !== "open") return; // not live: the next open covers it
    let o;
    try {
      o = parseDocOp(msg);
    } catch (err) {
      this._report("malformed op push: " + err.message);
      return this._sendOpen(true);
    }
    const r = this._remote(o);
    if (r === "hole") this._sendOpen(true);
    else if (r === "mismatch") {
      this._report(`operation ${o.rev} does not fit the document`);
      this._sendOpen(false);
    }
  }

  // An accepted operation: a push, or an item of a recovered open.
  _remote(o) {
    if (o.rev <= this._rev) return "stale";
    if (o.rev !== this._rev + 1) return "hole";
    if (this._inflight && o.key && o.key === this._inflight.key) {
      this._acked(); // ours, accepted (found by a recovered open)
      return "acked";
    }
    if (ot.baseLength(o.op) > this._serverLength) return "mismatch";
    // It was accepted before ours: ours keep their inserts first at a tie.
    let incoming = o.op;
    if (this._inflight) {
      const mine = ot.transform(this._inflight.op, incoming, "left");
      incoming = ot.transform(incoming, this._inflight.op, "right");
      this._inflight.op = mine;
    }
    if (this._buffer) {
      const mine = ot.transform(this._buffer, incoming, "left");
      incoming = ot.transform(incoming, this._buffer, "right");
      this._buffer = mine;
    }
    this._advance(o.op);
    const before = this._local;
    this._local = ot.apply(before, incoming);
    this._changed(before, incoming, true);
    this._flushCursor(); // the rev moved on: republish ours now and then
    this._checkCursors();
    return "applied";
  }

  _onAck(key, reply) {
    if (this._phase === "closed" || this._inflight?.key !== key) return; // settled already
    let rev;
    try {
      rev = checkRev(reply?.rev, 1);
    } catch (err) {
      this._report("malformed ack: " + err.message);
      return this._sendOpen(true);
    }
    if (rev > this._rev + 1) {
      // Operations before ours never reached us: the reopen brings them, and ours with its key.
      if (this._phase === "open") this._sendOpen(true);
    } else if (rev <= this._rev) {
      this._report(`ack for revision ${rev}, which went to another operation`);
      if (this._phase === "open") this._sendOpen(false);
    } else this._acked();
  }

  _acked() {
    const { op } = this._inflight;
    this._inflight = null;
    this._sent = false;
    this._failedKey = null;
    this._advance(op);
    const b = this._buffer;
    this._buffer = null;
    if (b && !ot.isNoop(b)) this._inflight = { op: b, key: this._nextKey() };
    this._flush();
    this._flushCursor();
    this._checkCursors();
    this._checkSynced();
  }

  _onOpFailed(key, gen, err) {
    if (this._phase === "closed" || this._inflight?.key !== key) return;
    if (gen !== this._gen) return; // sent on an earlier connection: the reopen resends it
    const code = err?.code;
    this._sent = false; // whatever happens, it goes out again with the same key, or is dropped
    if (code === "disconnected") {
      if (this._phase === "open") this._phase = "idle"; // reopened from the reconnection hook
    } else if (code === "closed") {
      // The client is closed for good.
    } else if (code === "timeout") {
      this._flush(); // same key: the engine applies it once
    } else if (RETRYABLE.has(code)) {
      this._retry();
    } else if (code === "conflict" && key !== this._failedKey) {
      // Its base revision is older than the engine's log. Reopen with since and send it again
      // (transformed over what the reopen brings); if the log does not reach back to us, the
      // reopen rebuilds from the text.
      this._failedKey = key;
      if (this._phase === "open") this._sendOpen(true);
    } else {
      // Refused for good (bad_request, forbidden, a second conflict): rebuild, dropping it.
      this._refused = true;
      this._report(err);
      if (this._phase === "open") this._sendOpen(false);
    }
  }

  // A server operation at rev + 1: the server text, the kept log and the cursors move on.
  _advance(op) {
    this._server = ot.apply(this._server, op);
    this._serverLength += lengthChange(op);
    this._rev++;
    this._log.push(op);
    if (this._log.length > KEEP_OPS) this._log.shift();
    for (const c of this._cursors.values()) {
      c.pos = ot.transformPosition(c.pos, op);
      if (c.anchor !== undefined) c.anchor = ot.transformPosition(c.anchor, op);
    }
    for (const [client, c] of this._parked) if (c.rev <= this._rev) this._place(client, c);
  }

  _flush() {
    if (this._phase !== "open" || !this._inflight || this._sent || this._refused) return;
    this._sent = true;
    const { op, key } = this._inflight;
    const gen = this._gen;
    this._client._request({ t: "op", room: this.room, rev: this._rev, op, key }).then(
      (reply) => this._onAck(key, reply),
      (err) => this._onOpFailed(key, gen, err),
    );
  }

  _checkSynced() {
    if (this.pending) return;
    for (const w of this._syncWaiters.splice(0)) w.resolve();
  }

  _nextKey() {
    return `${this._prefix}-${++this._counter}`;
  }

  // ---- local edits ------------------------------------------------------------------------------

  insert(index, text) {
    this.replace(index, 0, text);
  }

  remove(index, length) {
    this.replace(index, length, "");
  }

  replace(index, length, text) {
    this._editable();
    if (typeof text !== "string") throw new TypeError("text must be a string");
    const s = this._local;
    if (!Number.isSafeInteger(length) || length < 0 || !Number.isSafeInteger(index) || index + length > s.length)
      throw new RangeError(`range ${index}+${length} is not inside the text (${s.length} UTF-16 units)`);
    // A range that cuts a surrogate pair takes the whole character.
    const start = ot.toCodePoints(s, index);
    const end = ot.toCodePoints(s, index + length) + (insidePair(s, index + length) ? 1 : 0);
    this._edit(ot.normalize([start, text, start - end]));
  }

  setText(next) {
    this._editable();
    if (typeof next !== "string") throw new TypeError("text must be a string");
    this._edit(diff(this._local, next));
  }

  _editable() {
    if (!this.isOpen) throw new TroupeError("closed", `the document ${this.room} is not open`);
  }

  // An operation against the local text (normalised).
  _edit(op) {
    if (ot.isNoop(op)) return;
    ot.check(op); // a lone surrogate cannot go over the wire
    const before = this._local;
    this._local = ot.apply(before, op);
    if (!this._inflight) {
      this._inflight = { op, key: this._nextKey() };
      this._sent = false;
    } else this._buffer = this._buffer ? ot.compose(this._buffer, op) : op;
    this._changed(before, op, false);
    this._flush();
    this._checkCursors();
  }

  // The local text went from `before` through `op`: our cursor follows it, listeners hear it.
  _changed(before, op, remote) {
    if (this._cursor) {
      // Our own typing carries the caret past its text; others' insert at it leaves it.
      const assoc = remote ? "before" : "after";
      const { pos, anchor } = this._cursor;
      this._cursor.pos = ot.transformPosition(pos, op, assoc);
      if (anchor !== undefined) this._cursor.anchor = ot.transformPosition(anchor, op, assoc);
      if (!remote) this._cursorDirty = true;
    }
    if (this._listeners.get("change")?.size)
      this._emit("change", { text: this._local, rev: this._rev, remote, splices: splicesOf(before, op) });
  }

  static transformIndex(index, splices, assoc = "before") {
    for (const s of splices) {
      if (index < s.index || (index === s.index && assoc !== "after")) continue;
      if (index >= s.index + s.remove) index += s.insert.length - s.remove;
      else index = s.index + s.insert.length; // it was inside the removed text
    }
    return index;
  }

  // ---- cursors -------------------------------------------------------------------------------------

  setCursor(position, anchor) {
    if (!this.isOpen) return; // a hint, not data: nothing to place it in yet
    const s = this._local;
    const cp = (i) => ot.toCodePoints(s, i);
    this._cursor = { pos: cp(position), anchor: anchor === undefined ? undefined : cp(anchor) };
    this._cursorDirty = true;
    this._flushCursor();
  }

  // Publishes our cursor when it may: only while nothing is pending (then local positions are
  // the server's at rev), at most every cursorThrottleMs when its user moved it, and at most
  // every cursorRefreshMs when only others' edits moved the rev on (so that peers whose kept
  // log is short can still place it).
  _flushCursor() {
    if (!this._cursor || this._phase !== "open" || this.pending) return;
    const n = this._serverLength;
    const c = { rev: this._rev, pos: Math.min(this._cursor.pos, n) };
    if (this._cursor.anchor !== undefined) c.anchor = Math.min(this._cursor.anchor, n);
    const s = this._cursorSent;
    if (s && s.rev === c.rev && s.pos === c.pos && s.anchor === c.anchor) {
      this._cursorDirty = false;
      return;
    }
    const gap = this._cursorDirty || !s ? this._timing.cursorThrottleMs : this._timing.cursorRefreshMs;
    const due = this._cursorSentAt + gap;
    const now = Date.now();
    if (now < due) {
      if (this._cursorTimer && this._cursorTimerAt <= due) return;
      clearTimeout(this._cursorTimer);
      this._cursorTimerAt = due;
      this._cursorTimer = setTimeout(() => {
        this._cursorTimer = null;
        this._flushCursor();
      }, due - now);
      return;
    }
    clearTimeout(this._cursorTimer);
    this._cursorTimer = null;
    this._cursorSent = c;
    this._cursorSentAt = now;
    this._cursorDirty = false;
    // Other keys of our presence state (a colour, a status) are kept.
    const room = this._client.room(this.room);
    const own = room.presence?.members?.find((m) => m.client === this._client.clientId);
    const state = { ...(own?.state ?? {}), cursor: c };
    room.setState(state).then(undefined, (err) => {
      if (err?.code === "disconnected" || err?.code === "closed") return; // published again on reopen
      this._report(err);
    });
  }

  // Presence members' cursors `{cursor: {rev, pos, anchor?}}`: placed at our rev.
  _syncCursors(members) {
    if (!this._opened || !this._wanted) return;
    const self = this._client.clientId;
    const seen = new Set();
    for (const m of Array.isArray(members) ? members : []) {
      if (!m || m.client === self) continue;
      const c = parseCursor(m.state);
      if (!c) continue;
      seen.add(m.client);
      const sig = `${c.rev}:${c.pos}:${c.anchor}`;
      const known = this._cursors.get(m.client) ?? this._parked.get(m.client);
      if (known && this._raw.get(m.client) === sig) {
        known.user = m.user;
        known.name = m.name;
        continue;
      }
      this._raw.set(m.client, sig);
      this._place(m.client, { user: m.user, name: m.name, ...c });
    }
    for (const client of [...this._cursors.keys(), ...this._parked.keys()]) {
      if (seen.has(client)) continue;
      this._cursors.delete(client);
      this._parked.delete(client);
      this._raw.delete(client);
    }
    this._checkCursors();
  }

  _place(client, c) {
    if (c.rev > this._rev) {
      // Until its revision arrives, the previous cursor (if any) stays on show.
      this._parked.set(client, c);
      return;
    }
    this._parked.delete(client);
    const at = (p) => Math.min(this._throughLog(p, c.rev), this._serverLength);
    const placed = { user: c.user, name: c.name, pos: at(c.pos) };
    if (c.anchor !== undefined) placed.anchor = at(c.anchor);
    this._cursors.set(client, placed);
  }

  // A position at `fromRev` moved to our rev through the kept log (best effort if too old).
  _throughLog(pos, fromRev) {
    const first = this._rev - this._log.length + 1;
    for (let i = Math.max(0, fromRev + 1 - first); i < this._log.length; i++)
      pos = ot.transformPosition(pos, this._log[i]);
    return pos;
  }

  _checkCursors() {
    const now = this.cursors;
    const last = this._lastCursors;
    const same =
      now.length === last.length &&
      now.every((c, i) => {
        const l = last[i];
        return c.client === l.client && c.user === l.user && c.name === l.name && c.position === l.position && c.anchor === l.anchor;
      });
    if (same) return;
    this._lastCursors = now;
    this._emit("cursors", now);
  }
}

// ---- helpers --------------------------------------------------------------------------------------

function checkRev(v, min) {
  if (typeof v === "bigint") v = Number(v);
  if (!Number.isSafeInteger(v) || v < min) throw new TypeError(`rev is not an integer >= ${min}: ${v}`);
  return v;
}

// `{rev, op, user, key}`: a push or an item of a recovered open.
function parseDocOp(m) {
  if (!m || typeof m !== "object") throw new TypeError("operation entry is not a map");
  const op = Array.isArray(m.op) ? m.op.map((c) => (typeof c === "bigint" ? Number(c) : c)) : m.op;
  return { rev: checkRev(m.rev, 1), op: ot.normalize(op), user: m.user, key: typeof m.key === "string" ? m.key : "" };
}

function parseCursor(state) {
  const c = state?.cursor;
  const ok = (v) => Number.isSafeInteger(v) && v >= 0;
  if (!c || typeof c !== "object" || !ok(c.rev) || !ok(c.pos)) return null;
  const out = { rev: c.rev, pos: c.pos };
  if (ok(c.anchor)) out.anchor = c.anchor;
  return out;
}

function lengthChange(op) {
  let n = 0;
  for (const c of op) n += typeof c === "string" ? ot.length(c) : c < 0 ? c : 0;
  return n;
}

const isHigh = (u) => u >= 0xd800 && u <= 0xdbff;
const isLow = (u) => u >= 0xdc00 && u <= 0xdfff;

function insidePair(s, i) {
  return i > 0 && i < s.length && isHigh(s.charCodeAt(i - 1)) && isLow(s.charCodeAt(i));
}

// One operation from `a` to `b`: their common prefix and suffix kept, never splitting a pair.
function diff(a, b) {
  const max = Math.min(a.length, b.length);
  let p = 0;
  while (p < max && a.charCodeAt(p) === b.charCodeAt(p)) p++;
  if (p > 0 && isHigh(a.charCodeAt(p - 1))) p--;
  let s = 0;
  while (s < max - p && a.charCodeAt(a.length - 1 - s) === b.charCodeAt(b.length - 1 - s)) s++;
  if (s > 0 && isLow(a.charCodeAt(a.length - s))) s--;
  const removed = ot.length(a.slice(p, a.length - s));
  return ot.normalize([ot.length(a.slice(0, p)), b.slice(p, b.length - s), -removed]);
}

// The splices (UTF-16) of a normalised operation applied to `text`, each at its index in the
// text as the splices before it left it.
function splicesOf(text, op) {
  const out = [];
  let i = 0; // in `text`
  let at = 0; // in the text being changed
  for (const c of op) {
    if (typeof c === "string") {
      out.push({ index: at, remove: 0, insert: c });
      at += c.length;
    } else if (c > 0) {
      const j = ot.toUtf16(text, c, i);
      at += j - i;
      i = j;
    } else {
      const j = ot.toUtf16(text, -c, i);
      const last = out[out.length - 1];
      // An insert right before a removal is one replacement.
      if (last && last.remove === 0 && last.index + last.insert.length === at) last.remove = j - i;
      else out.push({ index: at, remove: j - i, insert: "" });
      i = j;
    }
  }
  return out;
}

function randomPrefix() {
  const bytes = new Uint8Array(8);
  if (globalThis.crypto?.getRandomValues) globalThis.crypto.getRandomValues(bytes);
  else for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(Math.random() * 256);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
