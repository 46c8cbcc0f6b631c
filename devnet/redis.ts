// A scratch redis-server on a free port, for tests and benchmarks: its own data directory, AOF
// persistence with fsync every second (what a verifier is told to run), started and stopped as a
// child process. `start()` after `stop()` or `kill()` keeps the data directory, so a test can
// check that nothing was lost. Importing this file runs nothing.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

import { Redis } from "ioredis";

import { freePort } from "./readiness.ts";

export interface ScratchRedis {
  /** redis://127.0.0.1:<port> */
  url: string;
  port: number;
  dir: string;
  /** Stops the server cleanly (SHUTDOWN, which fsyncs the AOF). */
  stop(): Promise<void>;
  /** Kills the server with SIGKILL (no shutdown save). */
  kill(): Promise<void>;
  /** Starts it again on the same port and data directory. */
  start(): Promise<void>;
  /** Stops for good and removes the data directory. */
  destroy(): Promise<void>;
}

/**
 * Starts a redis-server (from the machine's PATH; `scripts/setup.sh` installs it).
 * @param options.appendonly AOF on (default) or off, to test the verifier's refusal.
 * @param options.extraArgs More `--name value` arguments (e.g. `["--maxmemory-policy", "allkeys-lru"]`).
 */
export async function startScratchRedis(options: { appendonly?: boolean; extraArgs?: string[] } = {}): Promise<ScratchRedis> {
  const dir = mkdtempSync(path.join(tmpdir(), "tideway-redis-"));
  const port = await freePort();
  const args = [
    "--port",
    String(port),
    "--bind",
    "127.0.0.1",
    "--dir",
    dir,
    "--appendonly",
    options.appendonly === false ? "no" : "yes",
    "--appendfsync",
    "everysec",
    "--save",
    "",
    "--maxmemory-policy",
    "noeviction",
    "--protected-mode",
    "no",
    ...(options.extraArgs ?? []),
  ];
  let child: ChildProcess | undefined;

  async function waitReady(): Promise<void> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const client = new Redis({ port, host: "127.0.0.1", lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      client.on("error", () => undefined); // refused while starting: retried below
      try {
        await client.connect();
        // LOADING while the AOF replays: wait until the server answers commands.
        await client.ping();
        client.disconnect();
        return;
      } catch {
        client.disconnect();
        if (Date.now() > deadline) throw new Error(`redis-server on port ${port} did not come up within 10 s`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  async function start(): Promise<void> {
    child = spawn("redis-server", args, { stdio: "ignore" });
    child.once("error", (err) => {
      throw new Error(
        `cannot start redis-server (${err.message}): run \`npm test\` once, which installs it, or apt-get install redis-server`,
      );
    });
    await waitReady();
  }

  function exited(): Promise<void> {
    const c = child;
    if (c === undefined || c.exitCode !== null || c.signalCode !== null) return Promise.resolve();
    return new Promise((resolve) => c.once("exit", () => resolve()));
  }

  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    dir,
    async stop() {
      const done = exited();
      const client = new Redis({ port, host: "127.0.0.1", maxRetriesPerRequest: 0 });
      client.on("error", () => undefined);
      // SHUTDOWN closes the connection instead of answering.
      await client.call("SHUTDOWN").catch(() => undefined);
      client.disconnect();
      await done;
    },
    async kill() {
      const done = exited();
      child?.kill("SIGKILL");
      await done;
    },
    start,
    async destroy() {
      const done = exited();
      child?.kill("SIGKILL");
      await done;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
