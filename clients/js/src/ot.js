// Operational transformation for plain text, over Unicode code points, as on the wire.
//
// An operation is an array of components walking the document from its start: n > 0 keeps n
// code points, a string inserts it, n < 0 removes -n code points. Everything after the last
// component is kept. Texts are JavaScript strings (UTF-16), so every count goes through the
// code point helpers below and a surrogate pair is never split.
//
// Ties follow the wire contract (ShareDB's rule): when two concurrent operations insert at
// one place, the one accepted later goes first. transform(op, other, "left") puts op's insert
// first, so the engine transforms a late operation over accepted ones with "left", and a
// client transforms its pending operations over an incoming one with "left" and the incoming
// one over its pending operations with "right". The same as ot/text_operation.cpp.

const SURROGATE = /[\uD800-\uDFFF]/;

const isHigh = (u) => u >= 0xd800 && u <= 0xdbff;
const isLow = (u) => u >= 0xdc00 && u <= 0xdfff;

// ---- code points in UTF-16 strings -----------------------------------------------------------

/** Code points in `text` (a lone surrogate counts as one). */
export function length(text) {
  if (!SURROGATE.test(text)) return text.length; // the common case, at native speed
  let n = 0;
  for (let i = 0; i < text.length; i++, n++) {
    if (isHigh(text.charCodeAt(i)) && isLow(text.charCodeAt(i + 1))) i++;
  }
  return n;
}

/** The UTF-16 index reached by stepping `n` code points from `from`, or -1 past the end. */
function advance(text, from, n) {
  const end = from + n;
  if (end > text.length) {
    if (!SURROGATE.test(text.slice(from))) return -1;
  } else if (!SURROGATE.test(text.slice(from, end))) {
    return end; // no surrogates in the way: code points are units (at native speed)
  }
  let i = from;
  for (; n > 0 && i < text.length; n--) {
    i += isHigh(text.charCodeAt(i)) && isLow(text.charCodeAt(i + 1)) ? 2 : 1;
  }
  return n > 0 ? -1 : i;
}

/** UTF-16 index -> code points before it. An index inside a surrogate pair counts the pair as
 *  after it (rounds down), so it never splits a character. */
export function toCodePoints(text, utf16Index) {
  checkIndex(utf16Index, text.length, "UTF-16 index");
  let i = utf16Index;
  if (i > 0 && i < text.length && isLow(text.charCodeAt(i)) && isHigh(text.charCodeAt(i - 1))) i--;
  return length(text.slice(0, i));
}

/** Code point index -> UTF-16 index in `text`. With `fromUtf16`: the UTF-16 index reached by
 *  stepping `codePointIndex` code points from there. */
export function toUtf16(text, codePointIndex, fromUtf16 = 0) {
  checkIndex(codePointIndex, Infinity, "code point index");
  const i = advance(text, fromUtf16, codePointIndex);
  if (i < 0) throw new RangeError(`code point index ${codePointIndex} is past the end of the text (${length(text)})`);
  return i;
}

/** true when `s` has a surrogate that is not part of a pair (not a character: UTF-8 cannot
 *  carry it). */
export function hasLoneSurrogate(s) {
  if (!SURROGATE.test(s)) return false;
  for (let i = 0; i < s.length; i++) {
    const u = s.charCodeAt(i);
    if (isHigh(u) && isLow(s.charCodeAt(i + 1))) i++;
    else if (isHigh(u) || isLow(u)) return true;
  }
  return false;
}

function checkIndex(i, max, what) {
  if (!Number.isSafeInteger(i) || i < 0 || i > max) throw new RangeError(`${what} ${i} is not in 0..${max}`);
}

// ---- validation and normal form -----------------------------------------------------------

/** Throws a TypeError unless `op` is a well-formed operation: an array of safe integers and
 *  strings of whole characters (what the wire may carry). Returns `op`. */
export function check(op) {
  if (!Array.isArray(op)) throw new TypeError(`operation is not an array: ${describe(op)}`);
  for (let i = 0; i < op.length; i++) {
    const c = op[i];
    if (typeof c === "number") {
      if (!Number.isSafeInteger(c)) throw new TypeError(`operation component ${i} is not an integer: ${c}`);
    } else if (typeof c === "string") {
      if (hasLoneSurrogate(c)) throw new TypeError(`operation component ${i} inserts a lone UTF-16 surrogate`);
    } else {
      throw new TypeError(`operation component ${i} is neither an integer nor a string: ${describe(c)}`);
    }
  }
  return op;
}

function describe(v) {
  try {
    return JSON.stringify(v)?.slice(0, 60) ?? String(v);
  } catch {
    return String(v);
  }
}

// Builds normalised operations: merged neighbours, no empty components, no trailing retain
// (kept aside until something follows it). Components keep their order: only what preserves
// an operation's meaning under transform is normalised.
class Builder {
  constructor() {
    this.out = [];
    this.retained = 0;
  }
  retain(n) {
    this.retained += n;
  }
  flushRetain() {
    if (this.retained > 0) this.out.push(this.retained);
    this.retained = 0;
  }
  insert(s) {
    if (s === "") return;
    this.flushRetain();
    const out = this.out;
    const last = out.length - 1;
    // Never moved before a preceding remove: [-1, "c"] and ["c", -1] tie differently against a
    // concurrent insert (ot-text-unicode's semantics, the contract's reference).
    if (typeof out[last] === "string") out[last] += s;
    else out.push(s);
  }
  remove(n) {
    if (n === 0) return;
    this.flushRetain();
    const last = this.out.length - 1;
    if (this.out[last] < 0) this.out[last] -= n;
    else this.out.push(-n);
  }
  add(c) {
    if (typeof c === "string") this.insert(c);
    else if (c > 0) this.retain(c);
    else this.remove(-c);
  }
  done() {
    return this.out;
  }
}

/** The normal form of `op` (checked first): the same components in the same order, merged. */
export function normalize(op) {
  check(op);
  const b = new Builder();
  for (const c of op) b.add(c);
  return b.done();
}

/** Code points `op` retains or removes: the least length of a document it applies to. */
export function baseLength(op) {
  let n = 0;
  for (const c of op) if (typeof c === "number") n += Math.abs(c);
  return n;
}

/** true when `op` changes nothing. */
export function isNoop(op) {
  return op.every((c) => (typeof c === "string" ? c === "" : c >= 0));
}

// ---- apply -------------------------------------------------------------------------------------

/** `text` with `op` applied. Throws a TypeError on a malformed operation and a RangeError when
 *  it retains or removes past the end of `text`. */
export function apply(text, op) {
  check(op);
  const parts = [];
  let i = 0; // UTF-16 index in `text`
  for (let k = 0; k < op.length; k++) {
    const c = op[k];
    if (typeof c === "string") {
      parts.push(c);
      continue;
    }
    const j = advance(text, i, Math.abs(c));
    if (j < 0) {
      throw new RangeError(
        `operation does not fit the text: component ${k} (${c}) runs past its end (${length(text)} code points)`,
      );
    }
    if (c > 0) parts.push(text.slice(i, j));
    i = j;
  }
  parts.push(text.slice(i));
  return parts.join("");
}

// ---- transform and compose ------------------------------------------------------------------

// Walks an operation's components and hands out pieces of at most a wanted length; past the
// last component it hands out retains (the implicit trailing retain).
class Taker {
  constructor(op) {
    this.op = op;
    this.index = 0;
    this.offset = 0; // code points of the current retain or remove already taken
    this.unit = 0; // UTF-16 units of the current insert already taken
  }
  done() {
    return this.index >= this.op.length;
  }
  peekType() {
    return this.done() ? "retain" : kind(this.op[this.index]);
  }
  // At most `n` code points (Infinity: the rest of the component); a component of kind
  // `whole` is always taken whole.
  take(n, whole) {
    if (this.done()) return n;
    const c = this.op[this.index];
    const type = kind(c);
    if (type === "insert") {
      const rest = this.unit === 0 ? c : c.slice(this.unit);
      if (type === whole || n >= rest.length) return this.next(rest); // units >= code points
      const cut = advance(rest, 0, n);
      if (cut < 0 || cut === rest.length) return this.next(rest);
      this.unit += cut;
      return rest.slice(0, cut);
    }
    const left = Math.abs(c) - this.offset;
    if (type === whole || n >= left) return this.next(c > 0 ? left : -left);
    this.offset += n;
    return c > 0 ? n : -n;
  }
  next(piece) {
    this.index++;
    this.offset = this.unit = 0;
    return piece;
  }
}

function kind(c) {
  return typeof c === "string" ? "insert" : c > 0 ? "retain" : "remove";
}

// The code points a piece covers (inserts: its length in code points).
const span = (p) => (typeof p === "string" ? length(p) : Math.abs(p));

/** `op` rewritten to apply after `other`, both made against the same document. At a tie "left"
 *  puts op's insert first ("left" is the side of the operation accepted later). */
export function transform(op, other, side) {
  if (side !== "left" && side !== "right") throw new TypeError(`side must be "left" or "right", not ${describe(side)}`);
  op = normalize(op);
  other = normalize(other);
  const out = new Builder();
  const take = new Taker(op);
  for (const c of other) {
    if (typeof c === "string") {
      // At a tie the left side's insert goes first; other's inserted text is then stepped over.
      if (side === "left" && take.peekType() === "insert") out.add(take.take(Infinity, "insert"));
      out.retain(length(c));
    } else if (c > 0) {
      for (let n = c; n > 0; ) {
        const p = take.take(n, "insert");
        out.add(p);
        if (typeof p !== "string") n -= span(p);
      }
    } else {
      for (let n = -c; n > 0; ) {
        const p = take.take(n, "insert");
        if (typeof p === "string") out.add(p); // still inserted, where other's removal was
        else n -= span(p); // other removed it: nothing for op to retain or remove
      }
    }
  }
  while (!take.done()) out.add(take.take(Infinity, "insert"));
  return out.done();
}

/** One operation with the effect of `a` followed by `b` (`b` made against a's result). */
export function compose(a, b) {
  a = normalize(a);
  b = normalize(b);
  const out = new Builder();
  const take = new Taker(a);
  for (const c of b) {
    if (typeof c === "string") {
      out.insert(c);
    } else if (c > 0) {
      for (let n = c; n > 0; ) {
        const p = take.take(n, "remove");
        out.add(p);
        if (!(typeof p === "number" && p < 0)) n -= span(p);
      }
    } else {
      for (let n = -c; n > 0; ) {
        const p = take.take(n, "remove");
        if (typeof p === "string") n -= length(p); // a inserted it, b removes it: neither remains
        else if (p > 0) {
          out.remove(p);
          n -= p;
        } else out.remove(-p); // a's removal, before the text b removes
      }
    }
  }
  while (!take.done()) out.add(take.take(Infinity, "remove"));
  return out.done();
}

/** A position (code points) moved through `op`: an insert before it shifts it right, a removal
 *  around it pulls it to the removal's start. An insert exactly at it leaves it before the
 *  inserted text ("before", the default, ot-text-unicode's rule) or moves it past ("after"). */
export function transformPosition(position, op, assoc = "before") {
  op = normalize(op); // merged neighbours, so a zero component cannot stop the walk early
  let pos = 0; // where the walk stands in the new text
  for (const c of op) {
    if (position < pos || (position === pos && assoc !== "after")) break;
    if (typeof c === "string") {
      const n = length(c);
      pos += n;
      position += n;
    } else if (c > 0) {
      pos += c;
    } else {
      position -= Math.min(-c, position - pos);
    }
  }
  return position;
}
