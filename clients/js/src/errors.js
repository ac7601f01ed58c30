// A failed request or a refused connection. `code` is one of the wire contract's error codes
// ("forbidden", "rate_limited", …) or one of the client's own: "timeout" (no reply in time),
// "disconnected" (the connection dropped before the reply), "closed" (the client was closed,
// or the engine ended the connection for good), "protocol_error" (the engine sent something
// this client could not read).
export class TroupeError extends Error {
  constructor(code, reason = "") {
    super(reason ? `${code}: ${reason}` : String(code));
    this.name = "TroupeError";
    this.code = String(code);
    this.reason = String(reason ?? "");
  }
}
