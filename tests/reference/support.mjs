// Shared by the reference tests: ot-text-unicode (the contract's reference OT), a seeded
// PRNG, random texts and operations, the real engine, and a raw MessagePack WebSocket client.
// Every wait is bounded and fails with what it waited for; nothing sleeps to synchronise.
import { mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import path from "node:path";
import { startEngine as startBareEngine, within } from "../support/engine.mjs";

export { repo, within } from "../support/engine.mjs";
const require = createRequire(import.meta.url);

function load(name) {
  try {
    return require(name);
  } catch (err) {
    throw new Error(`${name} is not installed in tests/reference: run bash scripts/js-deps.sh (${err.message})`);
  }
}

/** ShareDB's ot-text-unicode 4.0.0: `{d:n}` deletes, and it only takes normalised operations. */
export const { type } = load("ot-text-unicode");
const WebSocket = load("ws");
const { encode, decodeMulti } = load("@msgpack/msgpack");

// Generous: ctest runs these beside the C++ tests on two cores.
export const STEP_MS = 20000;

// ---- operations: wire form <-> ot-text-unicode -------------------------------------------------

/** Wire operation -> ot-text-unicode's normalised form (zero components and a trailing retain
 *  dropped, neighbours of one kind merged: what its checkOp demands). */
export const toRef = (wire) => type.normalize(wire.map((c) => (typeof c === "number" && c < 0 ? { d: -c } : c)));
/** ot-text-unicode operation -> wire form. */
export const toWire = (op) => op.map((c) => (typeof c === "object" ? -(typeof c.d === "number" ? c.d : cpLength(c.d)) : c));

export const cpLength = (s) => {
  let n = 0;
  for (const _ of s) n++;
  return n;
};

/** Code points `op` (wire form) retains or removes. */
export const span = (op) => op.reduce((n, c) => n + (typeof c === "number" ? Math.abs(c) : 0), 0);

// ---- seeded randomness ----------------------------------------------------------------------

export { prng } from "../../clients/js/test-support/prng.js";

/** The seed: SEED from the environment, else a fixed one (CI sees the same cases). Printed, so a
 *  failure can be replayed with SEED=... */
export function seed(name) {
  const s = process.env.SEED !== undefined ? Number(process.env.SEED) >>> 0 : 0x19;
  console.log(`${name}: SEED=${s}`);
  return s;
}

/** Integer from the environment (case counts), else `fallback`. */
export const envInt = (name, fallback) => (process.env[name] ? Number(process.env[name]) : fallback);

// ASCII, two-byte (é), astral (😀, 𝄞: surrogate pairs in JS, 4 bytes in UTF-8), CJK, and a
// combining mark (two code points that look like one).
export const ALPHABET = ["a", "b", "c", "z", " ", "é", "é", "😀", "𝄞", "中", "e\u0301"];

export function randomText(rnd, max) {
  let s = "";
  for (let n = rnd.int(max + 1); n > 0; n--) s += rnd.pick(ALPHABET);
  return s;
}

const insertText = (rnd) => randomText(rnd, 2) || rnd.pick(ALPHABET);

/**
 * A random wire operation against a text of `len` code points. Leans to what ties: a delete
 * then an insert at one place ([k, -n, "s"], how ot-text-unicode writes a replace), an insert
 * then a delete, split runs, zero components, with and without a trailing retain.
 */
export function randomWireOp(rnd, len) {
  const op = [];
  let left = len;
  const take = () => 1 + rnd.int(Math.min(left, 3));
  for (let steps = 1 + rnd.int(5); steps > 0; steps--) {
    const r = rnd();
    if (r < 0.25 && left > 0) {
      const n = take();
      op.push(n);
      left -= n;
    } else if (r < 0.4 && left > 0) {
      const n = take();
      op.push(-n);
      left -= n;
    } else if (r < 0.55) {
      op.push(insertText(rnd));
    } else if (r < 0.75 && left > 0) {
      const n = take(); // a replace, as ot-text-unicode writes it: delete, then insert
      op.push(-n, insertText(rnd));
      left -= n;
    } else if (r < 0.85 && left > 0) {
      const n = take();
      op.push(insertText(rnd), -n);
      left -= n;
    } else if (r < 0.93) {
      op.push(rnd.pick([0, ""])); // allowed, and means nothing
    }
  }
  if (left > 0 && rnd() < 0.4) op.push(left); // a trailing retain, sometimes
  return op;
}

// ---- bounded waits ---------------------------------------------------------------------------

/** Wakes waiters whenever something they watch may have changed. */
export class Signal {
  constructor() {
    this.waiters = new Set();
  }
  notify() {
    for (const w of [...this.waiters]) w();
  }
  /** Resolves once `pred()` holds, checked now and at every notify(); fails after `ms`. */
  until(pred, ms, message) {
    let wake;
    const done = new Promise((resolve, reject) => {
      wake = () => {
        try {
          if (pred()) resolve();
        } catch (err) {
          reject(err);
        }
      };
      this.waiters.add(wake);
      wake();
    });
    return within(done, ms, message).finally(() => this.waiters.delete(wake));
  }
}

// ---- the engine --------------------------------------------------------------------------------

/** The engine on a free port with a fresh data directory, memory store, no rate budget;
 *  stop() also removes the directory. */
export async function startEngine() {
  const data = mkdtempSync(path.join(tmpdir(), "troupe-reference-"));
  const cleanup = () => rmSync(data, { recursive: true, force: true });
  let engine;
  try {
    engine = await startBareEngine({ data, args: ["--store", "memory", "--rate", "0"] });
  } catch (err) {
    cleanup();
    throw err;
  }
  return {
    ...engine,
    async stop() {
      try {
        await engine.stop();
      } finally {
        cleanup();
      }
    },
  };
}

// ---- a raw client: MessagePack maps in binary frames ------------------------------------------

export class Conn {
  /** Connects to the engine and sends `connect` as `user`. */
  static async open(port, user) {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
    await within(
      new Promise((resolve, reject) => {
        ws.once("open", resolve);
        ws.once("error", reject);
      }),
      STEP_MS,
      `WebSocket to 127.0.0.1:${port} did not open within ${STEP_MS} ms`,
    );
    const conn = new Conn(ws, user);
    await conn.request({ t: "connect", user });
    return conn;
  }

  constructor(ws, user) {
    this.ws = ws;
    this.user = user;
    this.nextId = 1;
    this.pending = new Map(); // id -> {callback, timer, msg}
    this.rooms = new Map(); // room -> push handler
    this.closed = null;
    ws.on("message", (data, isBinary) => {
      if (!isBinary) return this.fail(new Error(`${user}: the engine sent a text frame`));
      for (const m of decodeMulti(data)) this.dispatch(m);
    });
    ws.on("close", (code, reason) => this.fail(new Error(`${user}: connection closed (${code} ${reason})`)));
    ws.on("error", (err) => this.fail(err));
  }

  dispatch(m) {
    const p = m.id !== undefined ? this.pending.get(m.id) : undefined;
    if (p) {
      this.pending.delete(m.id);
      clearTimeout(p.timer);
      if (m.t === "error") p.callback(new Error(`${this.user}: ${JSON.stringify(p.msg)} got ${m.code}: ${m.reason}`));
      else p.callback(null, m);
    } else if (m.room !== undefined) {
      this.rooms.get(m.room)?.(m);
    }
  }

  fail(err) {
    if (this.closed) return;
    this.closed = err;
    for (const [, p] of this.pending) {
      clearTimeout(p.timer);
      p.callback(err);
    }
    this.pending.clear();
  }

  /** Sends a request; `callback(err, reply)` runs while its frame is being read, so in wire
   *  order with the pushes around it (a promise would run it after the whole frame). */
  call(msg, callback, ms = STEP_MS) {
    if (this.closed) return callback(this.closed);
    const id = this.nextId++;
    const full = { ...msg, id };
    const timer = setTimeout(() => {
      this.pending.delete(id);
      callback(new Error(`${this.user}: no reply to ${JSON.stringify(full)} within ${ms} ms`));
    }, ms);
    this.pending.set(id, { callback, timer, msg: full });
    this.ws.send(encode(full));
  }

  request(msg, ms) {
    return new Promise((resolve, reject) => this.call(msg, (err, m) => (err ? reject(err) : resolve(m)), ms));
  }

  /** Pushes for `room` go to `handler` (null: dropped). */
  onRoom(room, handler) {
    if (handler) this.rooms.set(room, handler);
    else this.rooms.delete(room);
  }

  async close() {
    if (this.ws.readyState === WebSocket.CLOSED) return;
    const closed = new Promise((resolve) => this.ws.once("close", resolve));
    this.closed ??= new Error(`${this.user}: closed by the test`);
    this.ws.close(1000);
    await within(closed, STEP_MS, `${this.user}: the WebSocket did not close within ${STEP_MS} ms`).catch(() =>
      this.ws.terminate(),
    );
  }
}
