// Troupe's JavaScript client: types of the public API (src/index.js).
// Positions and lengths in this API are UTF-16 code units (what JavaScript strings,
// <textarea> selections and DOM ranges use); the client converts to and from the wire
// contract's Unicode code points.

// ---- connection -----------------------------------------------------------------------------

export type ConnectionState = "connecting" | "connected" | "reconnecting" | "closed";

export interface BackoffOptions {
  /** First delay before reconnecting, ms (default 250). */
  initialMs?: number;
  /** Largest delay, ms (default 10000). */
  maxMs?: number;
  /** Growth per attempt (default 2). */
  factor?: number;
  /** Share of each delay that is random, 0..1 (default 0.5: "equal jitter"). */
  jitter?: number;
}

export interface ClientOptions {
  /** The engine's WebSocket URL, e.g. "ws://localhost:8080/ws". */
  url: string;
  /** A connection token (HS256 JWT minted by your backend), or a function that returns a
   *  fresh one for each (re)connect. */
  token?: string | (() => string | Promise<string>);
  /** Without a secret on the engine: the user id and display name to connect as. */
  user?: string;
  name?: string;
  /** The WebSocket class to use (default: globalThis.WebSocket). */
  WebSocket?: { new (url: string): WebSocket };
  backoff?: BackoffOptions;
  /** A request without a reply within this many ms fails with code "timeout" (default 10000). */
  requestTimeoutMs?: number;
  /** Random numbers in [0, 1) for jitter and keys (default Math.random); for tests. */
  random?: () => number;
}

export interface StateEvent {
  state: ConnectionState;
  /** The close code and reason of the connection that ended (on "reconnecting", "closed"). */
  code?: number;
  reason?: string;
  /** When the next attempt is made (on "reconnecting"). */
  retryInMs?: number;
}

/** A failed request: `code` is the contract's error code ("forbidden", "rate_limited", …) or
 *  one of the client's own: "timeout", "disconnected", "closed", "protocol_error" (on the
 *  "error" event: something from the engine this client could not read). */
export class TroupeError extends Error {
  constructor(code: string, reason?: string);
  readonly code: string;
  readonly reason: string;
}

export class Client {
  constructor(options: ClientOptions);
  /** "closed" before connect() and after close(). */
  readonly state: ConnectionState;
  /** The connection's id and the user id, once connected. */
  readonly clientId: string | undefined;
  readonly user: string | undefined;

  /** Connects (and keeps reconnecting with exponential backoff and jitter until close()).
   *  Resolves once connected the first time; rejects if the engine refuses (bad token), or with
   *  "closed" if close() comes first or the engine ends the connection for good (a disconnect
   *  with reconnect: false, close codes 4403, 4429, 4400, 1003, 1009). Requests and subscribe()
   *  calls made before it wait for the connection. */
  connect(): Promise<void>;
  /** Closes for good: pending requests fail with "closed". */
  close(): void;
  /** Round trip to the engine, ms. */
  ping(): Promise<number>;
  /** Calls `method` (1..64 of A-Z a-z 0-9 _ - : . @) of the application's backend (the
   *  engine's --backend): the reply's data (null when none); rejects with a TroupeError whose
   *  code is the backend's own, "unavailable", "not_found" (no backend) or "rate_limited". */
  rpc(method: string, data?: unknown): Promise<unknown>;

  /** The room `name` (one object per name). */
  room(name: string): Room;
  /** The text document of room `name` (one object per name). */
  document(name: string): TextDocument;

  on(event: "state", listener: (event: StateEvent) => void): () => void;
  /** Errors not tied to a request (a push the client could not read, a refused token…). */
  on(event: "error", listener: (error: TroupeError) => void): () => void;
}

// ---- rooms: messages ---------------------------------------------------------------------

export interface Message {
  room: string;
  seq: number;
  user: string;
  data: unknown;
  /** Server time, ms since the Unix epoch. */
  ts: number;
  key?: string;
}

/** initial: first subscription, `messages` is the newest kept history.
 *  recovered: resubscribed after a reconnect with nothing lost; the missed messages came
 *  through "message" events, in order, before this event.
 *  rebuilt: the missed messages could not be recovered (history too short, new epoch):
 *  `messages` is the newest kept history, and the view must be rebuilt from it. */
export type SubscribeKind = "initial" | "recovered" | "rebuilt";

export interface SubscribedEvent {
  kind: SubscribeKind;
  seq: number;
  epoch: string;
  messages: Message[];
}

export interface HistoryReply {
  seq: number;
  epoch: string;
  messages: Message[];
}

export class Room {
  readonly name: string;
  /** The newest seq delivered in order, and the log's epoch (after subscribe). */
  readonly seq: number;
  readonly epoch: string | undefined;
  /** True from subscribe() resolving until unsubscribe(), reconnections included. */
  readonly subscribed: boolean;

  /** Subscribes; after a reconnect the client resubscribes with `since` by itself. */
  subscribe(): Promise<SubscribedEvent>;
  unsubscribe(): Promise<void>;
  /** Publishes `data` (anything MessagePack can carry). Every publish carries a key (`key`,
   *  else a generated one), so one resent after a reconnect is applied once. Resolves with
   *  the seq it got. */
  publish(data: unknown, options?: { key?: string }): Promise<{ seq: number }>;
  /** Messages after `since`, at most `limit`. */
  history(since: number, limit?: number): Promise<HistoryReply>;

  /** Presence: who is here. Updated from replies and diffs; refetched on a pseq gap. */
  readonly presence: PresenceView;
  /** Sets this connection's presence state (any object, at most 1 KiB encoded); set again
   *  after a reconnect. */
  setState(state: Record<string, unknown>): Promise<void>;
  /** Says this user is typing or stopped. Call typing(true) on each keystroke: on:true goes out
   *  at once, then at most every 3 s while the calls go on; 6 s after the last call it lapses by
   *  itself. Ignored while the room is not subscribed (typing is ephemeral). */
  typing(on: boolean): void;
  /** Users typing now (not this connection). */
  readonly typingUsers: TypingUser[];

  /** Messages in seq order, each once; gaps are filled from history before delivery. */
  on(event: "message", listener: (message: Message) => void): () => void;
  on(event: "subscribed", listener: (event: SubscribedEvent) => void): () => void;
  on(event: "presence", listener: (view: PresenceView) => void): () => void;
  on(event: "typing", listener: (users: TypingUser[]) => void): () => void;
}

// ---- presence ------------------------------------------------------------------------------

export interface Member {
  client: string;
  user: string;
  name?: string;
  info?: unknown;
  state?: Record<string, unknown>;
}

export interface UserPresence {
  user: string;
  name?: string;
  /** One per connection (tab) of this user. */
  connections: Member[];
}

export interface PresenceView {
  readonly pseq: number;
  /** One entry per connection. */
  readonly members: Member[];
  /** Grouped by user, in order of arrival: who is online, in how many tabs. */
  byUser(): UserPresence[];
  /** By connection id: whose cursor is where. */
  byClient(): Map<string, Member>;
}

export interface TypingUser {
  user: string;
  client: string;
  name?: string;
}

// ---- documents -------------------------------------------------------------------------------

/** A change to the text in UTF-16 code units: at `index`, `remove` units were removed and
 *  `insert` inserted. */
export interface Splice {
  index: number;
  remove: number;
  insert: string;
}

export interface ChangeEvent {
  text: string;
  rev: number;
  /** true for others' edits, false for this client's own. */
  remote: boolean;
  /** What changed, in order, in UTF-16 positions of the text before each splice. Move a
   *  selection or caret through them with `TextDocument.transformIndex`. */
  splices: Splice[];
}

/** opened: first open; recovered: reopened after a reconnect with nothing lost;
 *  rebuilt: the document had to be fetched again (its log no longer reached back, or a new
 *  epoch). `dropped` is true when local edits could not be kept (the user should be told). */
export interface DocumentStateEvent {
  kind: "opened" | "recovered" | "rebuilt";
  rev: number;
  dropped: boolean;
}

export interface RemoteCursor {
  client: string;
  user: string;
  name?: string;
  /** In UTF-16 code units of the current local text. */
  position: number;
  anchor?: number;
}

export class TextDocument {
  readonly room: string;
  /** The local text (the engine's text plus this client's pending edits). */
  readonly text: string;
  /** The last revision the engine acknowledged or pushed. */
  readonly rev: number;
  readonly epoch: string | undefined;
  /** True while local edits wait for the engine's ack. */
  readonly pending: boolean;
  /** From the first `opened` until close(), reconnections included (edits made meanwhile are
   *  sent after the reopen). Editing a document that is not open throws ("closed"). */
  readonly isOpen: boolean;

  /** Opens (joins presence); after a reconnect reopens with `since` by itself. */
  open(): Promise<DocumentStateEvent>;
  close(): Promise<void>;

  /** Local edits, UTF-16 positions. One operation is in flight at a time; the rest are
   *  composed into a buffer, and remote operations are transformed over both. */
  insert(index: number, text: string): void;
  remove(index: number, length: number): void;
  replace(index: number, length: number, text: string): void;
  /** Replaces the whole text with `next` as one edit (common prefix and suffix kept): what an
   *  <textarea> input handler needs. */
  setText(next: string): void;

  /** Publishes this client's cursor (UTF-16 positions in the local text) as presence state
   *  `{cursor: {rev, pos, anchor?}}`: once nothing is pending, throttled. Ignored until open. */
  setCursor(position: number, anchor?: number): void;
  /** Others' cursors, in UTF-16 positions of the local text. */
  readonly cursors: RemoteCursor[];

  /** Where `index` (UTF-16) goes through `splices` (`assoc` "after": a caret at an insertion
   *  point moves past it). */
  static transformIndex(index: number, splices: Splice[], assoc?: "before" | "after"): number;

  /** Resolves when nothing local is waiting for the engine. */
  whenSynced(): Promise<void>;

  on(event: "change", listener: (event: ChangeEvent) => void): () => void;
  on(event: "state", listener: (event: DocumentStateEvent) => void): () => void;
  on(event: "cursors", listener: (cursors: RemoteCursor[]) => void): () => void;
  on(event: "error", listener: (error: TroupeError) => void): () => void;
}

// ---- the OT library (code points, as on the wire) ------------------------------------------

/** A component: n > 0 retains n code points, a string inserts it, n < 0 removes -n. */
export type Component = number | string;
export type Operation = Component[];

export namespace ot {
  function normalize(op: Operation): Operation;
  function apply(text: string, op: Operation): string;
  /** `op` transformed over the concurrent `other` (both made against one document). At a tie
   *  (both insert at one place) "left" puts op's insert first: by the contract's rule the op
   *  accepted later goes first, so a client transforms its pending ops over an incoming one
   *  with "left" and the incoming one over them with "right". */
  function transform(op: Operation, other: Operation, side: "left" | "right"): Operation;
  function compose(a: Operation, b: Operation): Operation;
  function transformPosition(position: number, op: Operation, assoc?: "before" | "after"): number;
  /** Code points in `text`. */
  function length(text: string): number;
  /** UTF-16 index -> code point index in `text`, and back. */
  function toCodePoints(text: string, utf16Index: number): number;
  /** With `fromUtf16`: the UTF-16 index reached by stepping `codePointIndex` code points from it. */
  function toUtf16(text: string, codePointIndex: number, fromUtf16?: number): number;
  /** Throws a TypeError unless `op` is well-formed (safe integers, strings without lone
   *  surrogates); returns it. apply, normalize, transform and compose check their inputs. */
  function check(op: unknown): Operation;
  /** Code points `op` retains or removes: the least length of a text it applies to. */
  function baseLength(op: Operation): number;
  /** True when `op` changes nothing. */
  function isNoop(op: Operation): boolean;
  function hasLoneSurrogate(text: string): boolean;
}
