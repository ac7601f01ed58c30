// A tiny event emitter: on(event, fn) returns the function that removes the listener.
// A listener that throws must not break the client's bookkeeping, so its error is rethrown
// on a fresh microtask (reported like any uncaught error) and the other listeners still run.
export class Emitter {
  #listeners = new Map();

  on(event, fn) {
    if (typeof fn !== "function") throw new TypeError("listener must be a function");
    let set = this.#listeners.get(event);
    if (!set) this.#listeners.set(event, (set = new Set()));
    // A wrapper, so that one function added twice is two listeners, each removed on its own.
    const entry = (arg) => fn(arg);
    set.add(entry);
    return () => {
      set.delete(entry);
    };
  }

  _emit(event, arg) {
    const set = this.#listeners.get(event);
    if (!set) return;
    for (const fn of [...set]) {
      try {
        fn(arg);
      } catch (err) {
        queueMicrotask(() => {
          throw err;
        });
      }
    }
  }
}
