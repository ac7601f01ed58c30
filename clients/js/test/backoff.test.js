// Backoff: exponential growth, a cap, jitter within [base·(1 − jitter), base], reset.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Backoff } from "../src/backoff.js";

const run = (b, n) => Array.from({ length: n }, () => b.next());

test("delays grow by the factor and stop at maxMs (no jitter)", () => {
  const b = new Backoff({ initialMs: 100, maxMs: 1000, factor: 2, jitter: 0 });
  assert.deepEqual(run(b, 6), [100, 200, 400, 800, 1000, 1000]);
  assert.equal(b.attempt, 6);
});

test("defaults: 250 ms, doubling, capped at 10 s, equal jitter", () => {
  const b = new Backoff({}, () => 0.999999);
  assert.deepEqual(run(b, 8), [250, 500, 1000, 2000, 4000, 8000, 10000, 10000]);
  const low = new Backoff({}, () => 0);
  assert.deepEqual(run(low, 8), [125, 250, 500, 1000, 2000, 4000, 5000, 5000]);
});

test("each delay lies in [base/2, base] with the default jitter", () => {
  let seed = 7;
  const random = () => ((seed = (seed * 16807) % 2147483647) - 1) / 2147483646;
  const b = new Backoff({ initialMs: 10, maxMs: 5000 }, random);
  let base = 10;
  for (let i = 0; i < 20; i++) {
    const d = b.next();
    assert.ok(d >= base / 2 && d <= base, `attempt ${i}: ${d} not in [${base / 2}, ${base}]`);
    base = Math.min(5000, base * 2);
  }
});

test("jitter 1 spreads over [0, base] (never below 1 ms); jitter 0.2 over [0.8·base, base]", () => {
  assert.equal(new Backoff({ initialMs: 100, jitter: 1 }, () => 0).next(), 1);
  assert.equal(new Backoff({ initialMs: 100, jitter: 0.2 }, () => 0).next(), 80);
  assert.equal(new Backoff({ initialMs: 100, jitter: 0.2 }, () => 0.5).next(), 90);
});

test("reset starts from initialMs again", () => {
  const b = new Backoff({ initialMs: 5, maxMs: 100, jitter: 0 });
  run(b, 4);
  b.reset();
  assert.equal(b.attempt, 0);
  assert.equal(b.next(), 5);
});

test("nonsense options are clamped: maxMs below initialMs, factor below 1", () => {
  const b = new Backoff({ initialMs: 50, maxMs: 10, factor: 0.5, jitter: 0 });
  assert.deepEqual(run(b, 3), [50, 50, 50]);
});
