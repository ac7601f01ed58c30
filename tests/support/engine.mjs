// A real engine for the Node tests (tests/browser, tests/reference): the built binary on a free
// loopback port with the caller's --data directory, and bounded waits. Nothing sleeps to
// synchronise.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

export const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

export function engineBinary() {
  const binary = process.env.TROUPE_BINARY || path.join(repo, "build", "troupe");
  if (!existsSync(binary)) throw new Error(`no engine at ${binary}: build it, or set TROUPE_BINARY`);
  return binary;
}

/** `promise`, or a rejection with `message` (a string or a function making one) after `ms`. */
export function within(promise, ms, message) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(typeof message === "function" ? message() : message)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Starts the engine: `--host 127.0.0.1 --port <port or 0> --data <data>` plus `args`. Resolves
 * once it logs "listening on 127.0.0.1:PORT" with {port, url, log, stop}; stop() sends SIGTERM
 * (SIGKILL after 15 s) and resolves with the exit.
 */
export async function startEngine({ port = 0, data, args = [] } = {}) {
  if (!data) throw new Error("startEngine needs a fresh --data directory");
  // The engine reads TROUPE_* from the environment too: none of the caller's may leak in.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("TROUPE_")));
  const child = spawn(engineBinary(), ["--host", "127.0.0.1", "--port", String(port), "--data", data, ...args], {
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const log = [];
  const exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (s) => log.push(s));
  const lines = createInterface({ input: child.stdout });
  const listening = new Promise((resolve, reject) => {
    lines.on("line", (line) => {
      log.push(line + "\n");
      const m = /listening on 127\.0\.0\.1:(\d+)/.exec(line);
      if (m) resolve(Number(m[1]));
    });
    exited.then(({ code, signal }) =>
      reject(new Error(`the engine exited (${code ?? signal}) before listening:\n${log.join("")}`)),
    );
  });
  let actualPort;
  try {
    actualPort = await within(listening, 15000, () => `the engine did not listen within 15 s:\n${log.join("")}`);
  } catch (err) {
    child.kill("SIGKILL");
    await exited;
    throw err;
  }
  return {
    port: actualPort,
    url: `http://127.0.0.1:${actualPort}`,
    log,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return exited;
      child.kill("SIGTERM");
      try {
        return await within(exited, 15000, "the engine did not stop within 15 s of SIGTERM");
      } catch (err) {
        child.kill("SIGKILL");
        await exited;
        throw err;
      }
    },
  };
}
