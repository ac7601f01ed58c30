// Six editors written from the contract alone, with ot-text-unicode as their OT (not the
// project's clients), type at once into one document and must converge. Each is ShareDB's
// client algorithm: one operation in flight, one buffered (new local edits compose into it);
// an incoming operation s is transformed against the one in flight, then the buffered one:
//   inflight' = transform(inflight, s, 'left');  s' = transform(s, inflight, 'right')
// and the author's ack moves the buffered operation into flight. Local edits are often written
// the way ot-text-unicode writes a replace, delete then insert: [k, {d:n}, "x"].
//   node --test tests/reference/editors.test.mjs     SEED=n, RUNS=n (default 50), EDITS=n (40)
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Conn, STEP_MS, Signal, cpLength, envInt, prng, randomText, seed, startEngine, toRef, toWire, type } from "./support.mjs";

const RUNS = envInt("RUNS", 50);
const EDITS = envInt("EDITS", 40);
const EDITORS = 6;
const rnd = prng(seed("editors"));

let engine;
const conns = []; // a setter, then one per editor
before(async () => {
  engine = await startEngine();
  for (let i = 0; i <= EDITORS; i++) conns.push(await Conn.open(engine.port, i === 0 ? "setter" : `editor${i}`));
});
after(async () => {
  await Promise.all(conns.map((c) => c.close()));
  await engine?.stop();
});

const show = (v) => JSON.stringify(v);
const delay = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** A random local edit of `text` in ot-text-unicode's form: mostly replaces (delete, then
 *  insert), plus plain inserts and deletes. */
function localEdit(text) {
  const len = cpLength(text);
  const pos = rnd.int(len + 1);
  const n = 1 + rnd.int(Math.min(3, Math.max(len - pos, 1)));
  const ins = randomText(rnd, 3) || "x";
  const r = rnd();
  if (pos < len && r < 0.5) return type.normalize([pos, { d: n }, ins]);
  if (pos < len && r < 0.7) return type.normalize([pos, { d: n }]);
  return type.normalize([pos, ins]);
}

class Editor {
  constructor(conn, room, signal) {
    Object.assign(this, { conn, room, signal, name: conn.user });
    this.text = null;
    this.rev = null;
    this.inflight = null;
    this.buffer = null;
    this.sent = 0;
    this.transforms = 0; // incoming operations transformed against pending ones: the concurrency seen
    this.error = null;
  }

  fail(message) {
    this.error ??= `${this.name}: ${message}`;
    this.signal.notify();
  }

  // Replies and pushes are handled as their frame is read, in wire order.
  open() {
    return new Promise((resolve, reject) => {
      this.conn.onRoom(this.room, (m) => m.t === "op" && this.onPush(m));
      this.conn.call({ t: "open", room: this.room }, (err, m) => {
        if (err) return reject(err);
        this.text = m.text;
        this.rev = m.rev;
        resolve();
      });
    });
  }

  edit() {
    const op = localEdit(this.text);
    this.text = type.apply(this.text, op);
    this.buffer = this.buffer ? type.compose(this.buffer, op) : op;
    this.flush();
  }

  flush() {
    if (this.inflight || !this.buffer || this.error) return;
    this.inflight = this.buffer;
    this.buffer = null;
    const msg = { t: "op", room: this.room, rev: this.rev, op: toWire(this.inflight), key: `${this.name}-${++this.sent}` };
    this.conn.call(msg, (err, m) => (err ? this.fail(err.message) : this.onAck(m)));
  }

  onAck(m) {
    if (m.rev !== this.rev + 1) return this.fail(`ack of revision ${m.rev} at revision ${this.rev}`);
    this.rev = m.rev;
    this.inflight = null;
    this.flush();
    this.signal.notify();
  }

  onPush(m) {
    if (this.error) return;
    if (m.rev !== this.rev + 1) return this.fail(`push of revision ${m.rev} at revision ${this.rev}`);
    try {
      let s = toRef(m.op);
      for (const pending of ["inflight", "buffer"]) {
        const p = this[pending];
        if (!p) continue;
        this.transforms++;
        this[pending] = type.transform(p, s, "left");
        s = type.transform(s, p, "right");
      }
      this.text = type.apply(this.text, s);
      this.rev = m.rev;
    } catch (err) {
      this.fail(`push ${show(m.op)} at revision ${m.rev}: ${err.message}`);
    }
    this.signal.notify();
  }

  /** `EDITS` local edits with small random pauses, some in bursts (so the buffer composes). */
  async type() {
    for (let done = 0; done < EDITS && !this.error; ) {
      await delay(rnd.int(6));
      for (let burst = rnd() < 0.3 ? 2 + rnd.int(3) : 1; burst > 0 && done < EDITS && !this.error; burst--, done++) this.edit();
    }
  }

  idle() {
    return !this.inflight && !this.buffer;
  }
}

test(`${RUNS} runs of ${EDITORS} editors typing ${EDITS} edits each converge`, async () => {
  const [setter, ...editorConns] = conns;
  const failures = [];
  let opsTotal = 0;
  let transforms = 0;
  for (let run = 0; run < RUNS; run++) {
    const room = `ref-editors-${run}`;
    await setter.request({ t: "open", room });
    await setter.request({ t: "op", room, rev: 0, op: [randomText(rnd, 12) || "base"], key: "base" });
    await setter.request({ t: "close", room });

    const signal = new Signal();
    const editors = editorConns.map((c) => new Editor(c, room, signal));
    await Promise.all(editors.map((e) => e.open()));
    await Promise.all(editors.map((e) => e.type()));

    // Settled: nothing pending anywhere, and everyone has seen every operation.
    const total = () => 1 + editors.reduce((n, e) => n + e.sent, 0);
    const state = () => editors.map((e) => `${e.name} rev ${e.rev}/${total()} ${e.idle() ? "idle" : "pending"} ${show(e.text)}`).join("\n  ");
    await signal.until(
      () => editors.some((e) => e.error) || editors.every((e) => e.idle() && e.rev === total()),
      STEP_MS,
      () => `${room}: the editors did not settle within ${STEP_MS} ms:\n  ${state()}`,
    );
    for (const e of editors) e.conn.onRoom(room, null);
    opsTotal += total();
    transforms += editors.reduce((n, e) => n + e.transforms, 0);

    const fresh = await setter.request({ t: "open", room });
    const errors = editors.filter((e) => e.error).map((e) => e.error);
    const texts = new Set(editors.map((e) => e.text));
    if (errors.length || texts.size !== 1 || !texts.has(fresh.text) || fresh.rev !== total()) {
      failures.push(
        `${room}: ${errors.length ? errors.join("; ") : "diverged"}\n  ${state()}\n  fresh open: rev ${fresh.rev} ${show(fresh.text)}`,
      );
    }
    await Promise.all([setter, ...editorConns].map((c) => c.request({ t: "close", room })));
  }
  for (const f of failures.slice(0, 3)) console.log(f);
  console.log(
    `${RUNS} runs, ${opsTotal} operations accepted, ${transforms} transforms against pending operations, ` +
      `${failures.length} runs did not converge`,
  );
  assert.equal(failures.length, 0, `${failures.length} of ${RUNS} runs did not converge (first ones above)`);
});
