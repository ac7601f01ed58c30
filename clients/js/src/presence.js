// A room's presence list: one entry per connection, from a snapshot (`subscribed`, `opened`
// or `presence` reply) and then each `pdiff` in pseq order. A diff further ahead than
// pseq + 1 means one was missed: later diffs are held back, the list is fetched again, and
// the held diffs past its pseq are applied. Shared by the Room and the room's document.

const num = (x) => (typeof x === "bigint" ? Number(x) : x);

function toEntry(e) {
  return { ...e, client: String(e.client), user: String(e.user) };
}

function entries(list) {
  return Array.isArray(list) ? list.filter((e) => e && e.client != null && e.user != null).map(toEntry) : [];
}

export class PresenceView {
  #client;
  #room;
  #onChange; // (leftClientIds) => void
  #pseq = 0;
  #members = [];
  #live = false; // a snapshot was taken on this connection
  #fetching = false; // a hole was seen: waiting for a `presence` reply
  #asked = false; // that request is on its way
  #held = new Map(); // pseq -> diff, while fetching
  #gen = 0; // stale fetch replies check it

  constructor(client, room, onChange) {
    this.#client = client;
    this.#room = room;
    this.#onChange = onChange;
    client._route(room, "pdiff", (d) => this.#onDiff(d));
  }

  get pseq() {
    return this.#pseq;
  }

  /** One entry per connection, in order of arrival. */
  get members() {
    return this.#members;
  }

  /** Grouped by user, users in order of their first connection's arrival. */
  byUser() {
    const groups = new Map();
    for (const m of this.#members) {
      let g = groups.get(m.user);
      if (!g) groups.set(m.user, (g = { user: m.user, name: m.name, connections: [] }));
      else if (g.name === undefined) g.name = m.name;
      g.connections.push(m);
    }
    return [...groups.values()];
  }

  byClient() {
    return new Map(this.#members.map((m) => [m.client, m]));
  }

  /** The list as a snapshot at `pseq` left it (a `subscribed` or `opened` reply). */
  _reset(pseq, members) {
    pseq = Number(num(pseq) ?? 0);
    // Two holds on one room (subscription and document) each bring a snapshot: one older than
    // the diffs already applied says nothing new.
    if (this.#live && !this.#fetching && pseq < this.#pseq) return;
    this.#live = true;
    this.#adopt(pseq, entries(members));
  }

  _disconnected() {
    // The list is kept on screen until the next snapshot replaces it (no flicker).
    this.#live = false;
    this.#fetching = false;
    this.#asked = false;
    this.#held.clear();
    this.#gen++;
  }

  #onDiff(d) {
    if (!this.#live) return;
    const pseq = Number(num(d.pseq));
    if (this.#fetching) {
      if (pseq > this.#pseq) this.#held.set(pseq, d);
      if (!this.#asked) this.#fetch(); // the last fetch failed: try again
      return;
    }
    if (pseq <= this.#pseq) return; // old or repeated
    if (pseq !== this.#pseq + 1) {
      this.#held.set(pseq, d);
      this.#fetch();
      return;
    }
    const before = this.#members;
    const consistent = this.#apply(d);
    const empty = !(Array.isArray(d.joins) && d.joins.length) && !(Array.isArray(d.leaves) && d.leaves.length);
    if (!empty) this.#changed(before); // an empty diff (e.g. the one after our own arrival) changes nothing
    if (!consistent) this.#fetch(); // the diff does not fit our list: fetch it again
  }

  // Applies one diff. An entry in leaves and joins is a change of state: it keeps its place.
  // A new connection of a user whose old one leaves in the same diff (a reconnect within the
  // grace period) takes the old one's place, so a view by user does not reorder.
  #apply(d) {
    const joins = new Map(entries(d.joins).map((e) => [e.client, e]));
    const leaves = new Map(entries(d.leaves).map((e) => [e.client, e]));
    const present = new Set(this.#members.map((m) => m.client));
    let consistent = true;
    for (const c of leaves.keys()) if (!present.has(c)) consistent = false; // never saw it
    const out = [];
    for (const m of this.#members) {
      if (leaves.has(m.client)) {
        let next = joins.get(m.client);
        if (!next) {
          for (const j of joins.values()) {
            if (j.user === m.user && !present.has(j.client)) {
              next = j;
              break;
            }
          }
        }
        if (next) {
          out.push(next);
          joins.delete(next.client);
        }
      } else if (joins.has(m.client)) {
        consistent = false; // joins, but we have it already
        out.push(joins.get(m.client));
        joins.delete(m.client);
      } else {
        out.push(m);
      }
    }
    for (const j of joins.values()) out.push(j);
    this.#members = out;
    this.#pseq = Number(num(d.pseq));
    return consistent;
  }

  #fetch() {
    this.#fetching = true;
    this.#asked = true;
    const gen = this.#gen;
    this.#client._call(
      { t: "presence", room: this.#room },
      (reply) => {
        if (gen !== this.#gen || !this.#fetching) return;
        this.#asked = false;
        this.#adopt(Number(num(reply.pseq)), entries(reply.members));
      },
      () => {
        if (gen !== this.#gen) return;
        this.#asked = false; // asked again with the next diff; a reconnect rebuilds it anyway
      },
    );
  }

  // Takes a whole list at `pseq`, then the held diffs that follow it.
  #adopt(pseq, members) {
    const before = this.#members;
    this.#members = members;
    this.#pseq = pseq;
    this.#fetching = false;
    this.#asked = false;
    let consistent = true;
    for (const p of [...this.#held.keys()].sort((a, b) => a - b)) {
      const d = this.#held.get(p);
      this.#held.delete(p);
      if (p <= this.#pseq) continue;
      if (p !== this.#pseq + 1) {
        this.#held.set(p, d); // still a hole
        consistent = false;
        continue;
      }
      if (!this.#apply(d)) consistent = false;
    }
    this.#changed(before);
    if (!consistent) this.#fetch();
  }

  #changed(before) {
    const now = new Set(this.#members.map((m) => m.client));
    const left = before.filter((m) => !now.has(m.client)).map((m) => m.client);
    this.#onChange(left);
  }
}
