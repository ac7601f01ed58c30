// troupe-client: the public entry point (types in ../index.d.ts).
export { Client } from "./client.js";
export { Room } from "./room.js";
export { TroupeError } from "./errors.js";
export { TextDocument } from "./document.js";
export * as ot from "./ot.js";
