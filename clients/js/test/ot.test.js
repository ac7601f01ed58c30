// The OT library: unit cases (astral characters included), seeded property tests, and the
// replay of real editing traces.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { fileURLToPath } from "node:url";
import * as ot from "../src/ot.js";
import { prng } from "../test-support/prng.js";

// ---- helpers -------------------------------------------------------------------------------


// Characters of every width: ASCII, BMP, astral (surrogate pairs), a combining mark.
const ALPHABET = ["a", "b", "c", " ", "\n", "é", "中", "😀", "𝄞", "e\u0301", "🇫🇷"];

function randomText(rnd, max) {
  let s = "";
  for (let n = rnd.int(max + 1); n > 0; n--) s += rnd.pick(ALPHABET);
  return s;
}

// A random operation against a text of `len` code points, sometimes not normal (zero
// components, split runs, a trailing retain) so that every input form is exercised.
function randomOp(rnd, len) {
  const op = [];
  let left = len;
  while (left > 0 || rnd() < 0.3) {
    const r = rnd();
    if (r < 0.05) op.push(rnd() < 0.5 ? 0 : "");
    else if (r < 0.35) op.push(randomText(rnd, 4));
    if (left === 0) break;
    const n = 1 + rnd.int(Math.min(left, 6));
    if (rnd() < 0.55) op.push(n);
    else op.push(-n);
    left -= n;
    if (rnd() < 0.15) break; // leave the rest as an implicit retain
  }
  return op;
}

function assertNormal(op) {
  for (let i = 0; i < op.length; i++) {
    const c = op[i];
    assert.ok(c !== 0 && c !== "", `no empty components in ${JSON.stringify(op)}`);
    if (i > 0) {
      const kind = (x) => (typeof x === "string" ? "i" : x > 0 ? "r" : "d");
      assert.notEqual(kind(c), kind(op[i - 1]), `merged neighbours in ${JSON.stringify(op)}`);
    }
  }
  assert.ok(!(op.length && typeof op.at(-1) === "number" && op.at(-1) > 0), `no trailing retain: ${JSON.stringify(op)}`);
}

// ---- unit cases ------------------------------------------------------------------------------

test("apply: the contract's examples", () => {
  assert.equal(ot.apply("hello world", [5, ", dear"]), "hello, dear world");
  assert.equal(ot.apply("hello world", [6, -5, "there"]), "hello there");
  assert.equal(ot.apply("hello world", ["¡", 11, "!"]), "¡hello world!");
  assert.equal(ot.apply("abc", []), "abc");
  assert.equal(ot.apply("abc", [0, "", 3, 0]), "abc");
});

test("apply counts code points: astral characters and combining marks", () => {
  // "😀" and "𝄞" are one code point (two UTF-16 units); "e\u0301" is two code points.
  assert.equal(ot.apply("😀a𝄞b", [1, -1, "x"]), "😀x𝄞b");
  assert.equal(ot.apply("😀a𝄞b", [2, -1]), "😀ab");
  assert.equal(ot.apply("😀a𝄞b", [3, "😀"]), "😀a𝄞😀b");
  assert.equal(ot.apply("e\u0301x", [1, -1]), "ex");
  assert.equal(ot.apply("🇫🇷", [1, "|"]), "🇫|🇷"); // a flag is two code points
  assert.throws(() => ot.apply("😀", [2]), RangeError);
  assert.throws(() => ot.apply("😀", [-2]), /does not fit/);
  assert.equal(ot.apply("😀", [1]), "😀");
});

test("malformed operations are refused with a clear error", () => {
  assert.throws(() => ot.apply("ab", "ab"), /not an array/);
  assert.throws(() => ot.apply("ab", [1.5]), /component 0 is not an integer/);
  assert.throws(() => ot.apply("ab", [1, null]), /component 1 is neither/);
  assert.throws(() => ot.apply("ab", [1, { n: 1 }]), TypeError);
  assert.throws(() => ot.apply("ab", [Number.MAX_SAFE_INTEGER + 2]), /not an integer/);
  assert.throws(() => ot.apply("ab", [NaN]), TypeError);
  assert.throws(() => ot.apply("ab", ["\uD83D"]), /lone UTF-16 surrogate/);
  assert.throws(() => ot.apply("ab", ["x\uDE00y"]), /lone UTF-16 surrogate/);
  assert.throws(() => ot.normalize([true]), TypeError);
  assert.throws(() => ot.transform([1], [1], "middle"), /side/);
  assert.throws(() => ot.apply("ab", [3]), /runs past its end \(2 code points\)/);
});

test("normalize: merged neighbours, components in the order given", () => {
  assert.deepEqual(ot.normalize([1, 2, "a", "b", -1, -2, 3]), [3, "ab", -3]);
  assert.deepEqual(ot.normalize([0, "", 0]), []);
  assert.deepEqual(ot.normalize([5]), []);
  assert.deepEqual(ot.normalize([2, -1, "x"]), [2, -1, "x"]); // never reordered: it ties differently
  assert.deepEqual(ot.normalize(["a", -1, "b", -1]), ["a", -1, "b", -1]);
  assert.deepEqual(ot.normalize([-1, "", "x", 0, -1]), [-1, "x", -1]);
});

test("delete then insert ties as given (ot-text-unicode), not as insert then delete", () => {
  // The case: ["c", -1] would put c before the concurrent insert, [-1, "c"] after it.
  assert.deepEqual(ot.transform([-1, "c"], ["x"], "left"), [1, -1, "c"]);
  assert.deepEqual(ot.transform(["c", -1], ["x"], "left"), ["c", 1, -1]);
});

test("code point conversions", () => {
  const s = "a😀b𝄞e\u0301";
  assert.equal(ot.length(s), 6);
  assert.equal(ot.length(""), 0);
  assert.equal(ot.length("\uD83D"), 1); // a lone surrogate counts as one
  const pairs = [
    [0, 0],
    [1, 1],
    [3, 2],
    [4, 3],
    [6, 4],
    [7, 5],
    [8, 6],
  ];
  for (const [u, c] of pairs) {
    assert.equal(ot.toCodePoints(s, u), c, `toCodePoints(${u})`);
    assert.equal(ot.toUtf16(s, c), u, `toUtf16(${c})`);
  }
  // Inside a pair: rounds down, never splits it.
  assert.equal(ot.toCodePoints(s, 2), 1);
  assert.equal(ot.toCodePoints(s, 5), 3);
  assert.throws(() => ot.toUtf16(s, 7), RangeError);
  assert.throws(() => ot.toCodePoints(s, 9), RangeError);
  assert.throws(() => ot.toCodePoints(s, -1), RangeError);
});

test("transform: the tie rule (left goes first) and the usual cases", () => {
  // Both insert at 1 of "ab": left's text comes first.
  const a = [1, "X"];
  const b = [1, "Y"];
  assert.deepEqual(ot.transform(a, b, "left"), [1, "X"]);
  assert.deepEqual(ot.transform(b, a, "right"), [2, "Y"]);
  assert.equal(ot.apply(ot.apply("ab", b), ot.transform(a, b, "left")), "aXYb");
  assert.equal(ot.apply(ot.apply("ab", a), ot.transform(b, a, "right")), "aXYb");
  // Concurrent removals of the same text remove it once.
  assert.deepEqual(ot.transform([1, -2], [2, -2], "left"), [1, -1]);
  // An insert inside a removed range survives at the range's start.
  assert.deepEqual(ot.transform([2, "😀"], [1, -3], "left"), [1, "😀"]);
  // Astral text shifts positions by code points.
  assert.deepEqual(ot.transform([1, "x"], ["😀𝄞"], "right"), [3, "x"]);
});

test("compose", () => {
  assert.deepEqual(ot.compose([1, "abc"], [2, -1]), [1, "ac"]);
  assert.deepEqual(ot.compose(["😀"], [-1]), []);
  assert.deepEqual(ot.compose([-1], ["x"]), ["x", -1]);
  assert.deepEqual(ot.compose([2, "x"], [4, "y"]), [2, "x", 1, "y"]);
  assert.deepEqual(ot.compose(["a😀b"], [1, -1]), ["ab"]);
});

test("transformPosition: before and after at an insert, pulled by removals", () => {
  assert.equal(ot.transformPosition(1, [1, "xy"]), 1);
  assert.equal(ot.transformPosition(1, [1, "xy"], "after"), 3);
  assert.equal(ot.transformPosition(2, [1, "😀"]), 3);
  assert.equal(ot.transformPosition(3, [1, -3]), 1);
  assert.equal(ot.transformPosition(5, [1, -3]), 2);
  assert.equal(ot.transformPosition(2, [1, "ab", -3]), 3); // replaced around it: after the new text
  assert.equal(ot.transformPosition(2, [1, -3, "ab"]), 1); // removed first: before the new text
});

// ---- properties --------------------------------------------------------------------------

const CASES = 4000;

test(`properties over ${CASES} random documents and operations`, () => {
  const rnd = prng(20240601);
  for (let i = 0; i < CASES; i++) {
    const d = randomText(rnd, 12);
    const n = ot.length(d);
    const a = randomOp(rnd, n);
    const b = randomOp(rnd, n);
    const ctx = () => JSON.stringify({ d, a, b });

    // normalize: normal, idempotent, same effect.
    const na = ot.normalize(a);
    assertNormal(na);
    assert.deepEqual(ot.normalize(na), na, ctx());
    const da = ot.apply(d, a);
    assert.equal(ot.apply(d, na), da, ctx());
    const db = ot.apply(d, b);

    // Convergence (TP1), with the contract's tie rule on both sides.
    const b2 = ot.transform(b, a, "right");
    const a2 = ot.transform(a, b, "left");
    assertNormal(a2);
    assertNormal(b2);
    assert.equal(ot.apply(da, b2), ot.apply(db, a2), ctx());

    // compose agrees with applying one after the other.
    const c = randomOp(rnd, ot.length(da));
    const ac = ot.compose(a, c);
    assertNormal(ac);
    assert.equal(ot.apply(d, ac), ot.apply(da, c), ctx());

    // transformPosition stays inside the new text and keeps order.
    const m = ot.length(da);
    let prev = 0;
    for (let p = 0; p <= n; p++) {
      const q = ot.transformPosition(p, a, p % 2 ? "before" : "after");
      assert.ok(q >= 0 && q <= m, `position ${p} -> ${q} outside 0..${m}: ${ctx()}`);
      const q2 = ot.transformPosition(p, a);
      assert.ok(q2 >= prev, `order kept at ${p}: ${ctx()}`);
      prev = q2;
    }

    // UTF-16 <-> code points round trip.
    for (let k = 0; k <= n; k++) assert.equal(ot.toCodePoints(d, ot.toUtf16(d, k)), k);
  }
});

// ---- real editing traces ------------------------------------------------------------------

const TRACES = fileURLToPath(new URL("../../../tests/data/editing-traces/", import.meta.url));

for (const name of ["automerge-paper", "seph-blog1"]) {
  test(`replays the editing trace ${name} to its endContent`, () => {
    const trace = JSON.parse(gunzipSync(readFileSync(TRACES + name + ".json.gz")));
    // Patches [pos, del, ins] count code points. A few hundred at a time are composed into
    // one operation and applied, which exercises compose and keeps the replay fast.
    let text = trace.startContent;
    let batch = [];
    let count = 0;
    for (const txn of trace.txns) {
      for (const [pos, del, ins] of txn.patches) {
        batch = ot.compose(batch, [pos, -del, ins]);
        if (++count % 200 === 0) {
          text = ot.apply(text, batch);
          batch = [];
        }
      }
    }
    text = ot.apply(text, batch);
    assert.equal(text.length, trace.endContent.length);
    assert.ok(text === trace.endContent, "the replayed text is the trace's endContent");
  });
}
