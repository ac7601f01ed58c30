// Exponential backoff with jitter for reconnects. The n-th delay has a base of
// min(maxMs, initialMs * factor^n); a share `jitter` of it is random, so with the default
// 0.5 ("equal jitter") it is drawn from [base/2, base]. A crowd of clients cut at once does
// not come back at once, and none waits longer than maxMs.
export class Backoff {
  #attempt = 0;

  constructor({ initialMs = 250, maxMs = 10000, factor = 2, jitter = 0.5 } = {}, random = Math.random) {
    this.initialMs = Math.max(1, initialMs);
    this.maxMs = Math.max(this.initialMs, maxMs);
    this.factor = Math.max(1, factor);
    this.jitter = Math.min(1, Math.max(0, jitter));
    this.random = random;
  }

  get attempt() {
    return this.#attempt;
  }

  /** The next delay in ms; counts an attempt. */
  next() {
    const exp = Math.min(this.#attempt, 64);
    const base = Math.min(this.maxMs, this.initialMs * this.factor ** exp);
    this.#attempt++;
    const delay = base * (1 - this.jitter) + base * this.jitter * this.random();
    return Math.max(1, Math.round(delay));
  }

  reset() {
    this.#attempt = 0;
  }
}
