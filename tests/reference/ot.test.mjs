// The C++ OT library (through troupe_ot_cli) and the JS client's OT (clients/js/src/ot.js)
// against ShareDB's ot-text-unicode, the contract's reference: seeded random cases of
// transform (both sides), compose, apply and transformPosition must give deep-equal results.
// A mismatch is shrunk and printed as the smallest case that still differs. Mismatches with
// another outcome (another text or position, not only components in another order) are
// counted apart.
//   node --test tests/reference/ot.test.mjs      SEED=n, CASES=n (default 3000 per function)
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { isDeepStrictEqual } from "node:util";
import * as client from "../../clients/js/src/ot.js";
import { cpLength, envInt, prng, randomText, randomWireOp, repo, seed, span, toRef, toWire, type } from "./support.mjs";

const CASES = envInt("CASES", 3000);
const rnd = prng(seed("ot"));

// ---- the three implementations ---------------------------------------------------------------

const reference = {
  transform: (c) => toWire(type.transform(toRef(c.a), toRef(c.b), c.side)),
  compose: (c) => toWire(type.compose(toRef(c.a), toRef(c.b))),
  apply: (c) => type.apply(c.text, toRef(c.op)),
  transform_position: (c) => type.transformPosition(c.pos, toRef(c.op)),
};

const jsClient = {
  transform: (c) => client.transform(c.a, c.b, c.side),
  compose: (c) => client.compose(c.a, c.b),
  apply: (c) => client.apply(c.text, c.op),
  transform_position: (c) => client.transformPosition(c.pos, c.op),
};

function attempt(fn) {
  try {
    return fn();
  } catch (err) {
    return { error: err.message };
  }
}

function cliBinary() {
  const binary = process.env.TROUPE_OT_CLI || path.join(repo, "build", "tests", "troupe_ot_cli");
  if (!existsSync(binary)) throw new Error(`no troupe_ot_cli at ${binary}: build it, or set TROUPE_OT_CLI`);
  return binary;
}

/** The C++ library's answers: one process, every case on stdin, one JSON line back each. */
function cpp(cases) {
  const run = spawnSync(cliBinary(), [], {
    input: cases.map((c) => JSON.stringify(c)).join("\n") + "\n",
    encoding: "utf8",
    maxBuffer: 1 << 28,
    timeout: 60000,
  });
  if (run.error) throw run.error;
  assert.equal(run.status, 0, `troupe_ot_cli failed (${run.status ?? run.signal}): ${run.stderr}`);
  const lines = run.stdout.split("\n").filter((l) => l !== "");
  assert.equal(lines.length, cases.length, "troupe_ot_cli answers every case with one line");
  return lines.map((l) => {
    const m = JSON.parse(l);
    return "error" in m ? { error: m.error } : m.result;
  });
}

/** The outcome of a result: what it does to the case's text: the text after b then the result (transform), after
 *  the result (compose); apply and transform_position results are that already. */
function effect(c, result) {
  if (result?.error !== undefined) return result;
  return attempt(() =>
    c.fn === "transform" ? type.apply(type.apply(c.text, toRef(c.b)), toRef(result))
    : c.fn === "compose" ? type.apply(c.text, toRef(result))
    : result,
  );
}

/** Every case through the three; where C++ or the JS client differs, and where that changes
 *  the text. */
function evaluate(cases) {
  const fromCpp = cpp(cases);
  return cases.map((c, i) => {
    const ref = attempt(() => reference[c.fn](c));
    const js = attempt(() => jsClient[c.fn](c));
    const r = { c, ref, cpp: fromCpp[i], js };
    r.cppBad = !isDeepStrictEqual(ref, r.cpp);
    r.jsBad = !isDeepStrictEqual(ref, js);
    r.cppText = r.cppBad && !isDeepStrictEqual(effect(c, ref), effect(c, r.cpp));
    r.jsText = r.jsBad && !isDeepStrictEqual(effect(c, ref), effect(c, js));
    return r;
  });
}

// ---- shrinking a mismatch ----------------------------------------------------------------------

// Whether a case is one the contract allows: every operation fits the text it is made against.
function valid(c) {
  switch (c.fn) {
    case "transform":
      return span(c.a) <= cpLength(c.text) && span(c.b) <= cpLength(c.text);
    case "compose": {
      if (span(c.a) > cpLength(c.text)) return false;
      return span(c.b) <= cpLength(type.apply(c.text, toRef(c.a)));
    }
    case "apply":
      return span(c.op) <= cpLength(c.text);
    case "transform_position":
      return c.pos <= cpLength(c.text) && span(c.op) <= cpLength(c.text);
  }
}

const replaced = (op, i, x) => op.map((y, j) => (j === i ? x : y)); // Array#with: Node 20+

// One step smaller: a component dropped, an insert cut to one character, a count less by one,
// the text one character shorter, the position one less.
function* smaller(c) {
  for (const key of ["a", "b", "op"]) {
    const op = c[key];
    if (!op) continue;
    for (let i = 0; i < op.length; i++) {
      yield { ...c, [key]: op.filter((_, j) => j !== i) };
      const x = op[i];
      if (typeof x === "string" && cpLength(x) > 1) yield { ...c, [key]: replaced(op, i, [...x][0]) };
      if (typeof x === "number" && Math.abs(x) > 1) yield { ...c, [key]: replaced(op, i, x - Math.sign(x)) };
    }
  }
  if (c.text) yield { ...c, text: [...c.text].slice(0, -1).join("") };
  if (c.pos > 0) yield { ...c, pos: c.pos - 1 };
}

function shrink(result, bad) {
  for (let round = 0; round < 200; round++) {
    const candidates = [...smaller(result.c)].filter(valid);
    if (candidates.length === 0) break;
    const next = evaluate(candidates).find(bad);
    if (!next) break;
    result = next;
  }
  return result;
}

const show = (v) => JSON.stringify(v);

function describe({ c, ref, cpp, js }) {
  const args =
    c.fn === "transform" ? `${show(c.a)}, ${show(c.b)}, ${show(c.side)}  (text ${show(c.text)})`
    : c.fn === "compose" ? `${show(c.a)}, ${show(c.b)}  (text ${show(c.text)})`
    : c.fn === "apply" ? `${show(c.text)}, ${show(c.op)}`
    : `${c.pos}, ${show(c.op)}  (text ${show(c.text)})`;
  return `${c.fn}(${args})\n    ot-text-unicode: ${show(ref)}\n    C++:             ${show(cpp)}\n    JS client:       ${show(js)}`;
}

/** Runs the cases; prints the smallest mismatch of each implementation (and the smallest that
 *  changes the text, when that is another); fails with the counts. */
function check(name, cases) {
  const results = evaluate(cases);
  const counts = [];
  for (const [who, bad, text] of [["C++", "cppBad", "cppText"], ["JS client", "jsBad", "jsText"]]) {
    const differ = results.filter((r) => r[bad]);
    const differText = results.filter((r) => r[text]);
    counts.push(`${who} ${differ.length} (${differText.length} with another outcome)`);
    if (differ.length) {
      const smallest = shrink(differ[0], (x) => x[bad]);
      console.log(`${name}: ${who} differs from ot-text-unicode, smallest case:\n  ${describe(smallest)}`);
      if (differText.length && !smallest[text]) {
        const r = shrink(differText[0], (x) => x[text]);
        console.log(`${name}: ${who} has another outcome, smallest case:\n  ${describe(r)}`);
      }
    }
  }
  const summary = `${name}: ${cases.length} cases; differing from ot-text-unicode: ${counts.join(", ")}`;
  console.log(summary);
  assert.ok(results.every((r) => !r.cppBad && !r.jsBad), `${summary} (smallest cases printed above)`);
}

// ---- the cases -----------------------------------------------------------------------------

test("transform, both sides, equals ot-text-unicode's", () => {
  const cases = [];
  for (let i = 0; i < CASES; i++) {
    const text = randomText(rnd, 8);
    const a = randomWireOp(rnd, cpLength(text));
    const b = randomWireOp(rnd, cpLength(text));
    cases.push({ fn: "transform", a, b, side: "left", text }, { fn: "transform", a, b, side: "right", text });
  }
  check("transform", cases);
});

test("compose equals ot-text-unicode's", () => {
  const cases = [];
  for (let i = 0; i < CASES; i++) {
    const text = randomText(rnd, 8);
    const a = randomWireOp(rnd, cpLength(text));
    const b = randomWireOp(rnd, cpLength(type.apply(text, toRef(a))));
    cases.push({ fn: "compose", a, b, text });
  }
  check("compose", cases);
});

test("apply equals ot-text-unicode's", () => {
  const cases = [];
  for (let i = 0; i < CASES; i++) {
    const text = randomText(rnd, 8);
    cases.push({ fn: "apply", text, op: randomWireOp(rnd, cpLength(text)) });
  }
  check("apply", cases);
});

test("transformPosition equals ot-text-unicode's", () => {
  const cases = [];
  for (let i = 0; i < CASES; i++) {
    const text = randomText(rnd, 8);
    const pos = rnd.int(cpLength(text) + 1);
    cases.push({ fn: "transform_position", text, pos, op: randomWireOp(rnd, cpLength(text)) });
  }
  check("transform_position", cases);
});

test("issue 19: the late [-1, 'c'] transformed over three accepted ops is [8, -1, 'c']", () => {
  // Four concurrent operations against one text, accepted in this order: each is transformed
  // over every one accepted before it, in turn, with side left (what the engine does).
  const base = "ééczécc";
  const ops = [["zé"], [1, "a", 5, "𝄞𝄞"], ["zzz𝄞éé"], [-1, "c"]];
  const impls = {
    "ot-text-unicode": (a, b) => reference.transform({ a, b, side: "left" }),
    "C++": (a, b) => cpp([{ fn: "transform", a, b, side: "left" }])[0],
    "JS client": (a, b) => jsClient.transform({ a, b, side: "left" }),
  };
  const texts = {};
  for (const [who, transform] of Object.entries(impls)) {
    const accepted = [];
    for (const op of ops) accepted.push(accepted.reduce((x, y) => transform(x, y), op));
    assert.deepEqual(accepted.at(-1), [8, -1, "c"], `${who}: the last operation as accepted`);
    texts[who] = accepted.reduce((text, op) => type.apply(text, toRef(op)), base);
  }
  assert.equal(texts["ot-text-unicode"], "zzz𝄞éézécaéczéc𝄞𝄞c");
  assert.deepEqual(texts["C++"], texts["ot-text-unicode"]);
  assert.deepEqual(texts["JS client"], texts["ot-text-unicode"]);
});
