// The engine's pushed operations equal ot-text-unicode's: in each trial 2-4 clients send one
// random operation each against the same revision, all at once; the engine accepts them in
// some order, and the k-th must reach a listener as ot-text-unicode transforms it over each
// operation accepted before it, in turn, with side left. The final text must be theirs too.
//   node --test tests/reference/engine.test.mjs      SEED=n, TRIALS=n (default 1000)
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { isDeepStrictEqual } from "node:util";
import { Conn, STEP_MS, Signal, cpLength, envInt, prng, randomText, randomWireOp, seed, startEngine, toRef, toWire, type } from "./support.mjs";

const TRIALS = envInt("TRIALS", 1000);
const rnd = prng(seed("engine"));

let engine;
const conns = []; // setter, listener, up to four senders
before(async () => {
  engine = await startEngine();
  for (const user of ["setter", "listener", "s1", "s2", "s3", "s4"]) conns.push(await Conn.open(engine.port, user));
});
after(async () => {
  await Promise.all(conns.map((c) => c.close()));
  await engine?.stop();
});

const show = (v) => JSON.stringify(v);

test(`${TRIALS} trials: every pushed operation is ot-text-unicode's transform`, async () => {
  const [setter, listener, ...senders] = conns;
  const failures = [];
  let pushesChecked = 0;
  let pushesBad = 0;
  let textsBad = 0;
  for (let trial = 0; trial < TRIALS; trial++) {
    const room = `ref-engine-${trial}`;
    // The base text: one operation from one client.
    const base = randomText(rnd, 8);
    await setter.request({ t: "open", room });
    const set = await setter.request({ t: "op", room, rev: 0, op: [base], key: "base" });
    assert.equal(set.rev, 1, `${room}: the base text is revision 1`);
    await setter.request({ t: "close", room });

    // The listener sends nothing and records every push.
    const pushes = [];
    const signal = new Signal();
    listener.onRoom(room, (m) => {
      if (m.t === "op") pushes.push(m);
      signal.notify();
    });
    const opened = await listener.request({ t: "open", room });
    assert.deepEqual([opened.rev, opened.text], [1, base], `${room}: the listener opens at revision 1`);

    const writers = senders.slice(0, 2 + rnd.int(3));
    for (const w of writers) {
      const m = await w.request({ t: "open", room });
      assert.deepEqual([m.rev, m.text], [1, base], `${room}: ${w.user} opens at revision 1`);
    }
    // One operation each against revision 1, all sent before any answer is awaited.
    const sent = writers.map((w, i) => ({ user: w.user, key: `k${i}`, op: randomWireOp(rnd, cpLength(base)) }));
    const acks = await Promise.all(sent.map((s, i) => writers[i].request({ t: "op", room, rev: 1, op: s.op, key: s.key })));
    sent.forEach((s, i) => (s.rev = acks[i].rev));
    sent.sort((x, y) => x.rev - y.rev);
    assert.deepEqual(sent.map((s) => s.rev), sent.map((_, i) => i + 2), `${room}: the acks are revisions 2..${sent.length + 1}`);

    // What ot-text-unicode makes of them, in the order accepted.
    const accepted = [];
    for (const s of sent) accepted.push(accepted.reduce((x, y) => type.transform(x, y, "left"), toRef(s.op)));
    const expected = accepted.map(toWire);

    await signal.until(
      () => pushes.length >= sent.length,
      STEP_MS,
      () => `${room}: the listener got ${pushes.length} of ${sent.length} pushes within ${STEP_MS} ms`,
    );
    listener.onRoom(room, null);
    const got = pushes.map((p) => p.op);
    assert.deepEqual(pushes.map((p) => [p.rev, p.key]), sent.map((s) => [s.rev, s.key]), `${room}: one push per accepted operation, in order`);
    pushesChecked += pushes.length;
    pushesBad += got.filter((op, k) => !isDeepStrictEqual(op, expected[k])).length;

    const final = await setter.request({ t: "open", room }); // a fresh open
    const want = accepted.reduce((text, op) => type.apply(text, op), base);
    if (final.text !== want) textsBad++;
    if (!isDeepStrictEqual(got, expected) || final.text !== want || final.rev !== sent.length + 1) {
      failures.push(
        `${room}: base ${show(base)}, sent against revision 1 and accepted in this order:\n` +
          sent.map((s, k) => `    ${show(s.op)}\n      pushed ${show(got[k])}\n      ot-text-unicode ${show(expected[k])}`).join("\n") +
          `\n    final text ${show(final.text)} (revision ${final.rev}), ot-text-unicode ${show(want)}`,
      );
    }
    await Promise.all([setter, listener, ...writers].map((c) => c.request({ t: "close", room })));
  }
  for (const f of failures.slice(0, 5)) console.log(f);
  console.log(
    `${TRIALS} trials, ${pushesChecked} pushed operations checked: ${pushesBad} differ from ot-text-unicode; ` +
      `${failures.length} trials differ, ${textsBad} of them in the final text`,
  );
  assert.equal(failures.length, 0, `${failures.length} of ${TRIALS} trials: the engine's pushes or text differ from ot-text-unicode (first cases above)`);
});
