// A busy machine for benchmarks to run beside: processes that spin on the CPU and one that writes
// and fsyncs files in a loop (as a database or a log shipper next to the edge would). Each load is
// a child process of its own (`node bench/contention.ts cpu|disk`), so it competes with the
// measured processes for cores and for the disk's flush queue, not for their event loops.
//
//   const load = await startContention({ cpu: 2, disk: 1 });
//   try { ...measure... } finally { await load.stop(); }
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, fsyncSync, mkdtempSync, openSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

/** Options of {startContention}. */
export interface ContentionOptions {
  /** Processes that spin on the CPU. */
  cpu: number;
  /** Processes that write 1 MiB and fsync it, in a loop. */
  disk: number;
}

/** The running load. */
export interface Contention {
  /** Kills every load process and removes their files. */
  stop(): Promise<void>;
}

/** Starts the load processes; resolves once every one of them runs. */
export async function startContention(options: ContentionOptions): Promise<Contention> {
  const dir = mkdtempSync(path.join(tmpdir(), "tideway-contention-"));
  const kinds = [...Array<string>(options.cpu).fill("cpu"), ...Array<string>(options.disk).fill("disk")];
  const children: ChildProcess[] = kinds.map((kind) =>
    spawn(process.execPath, [import.meta.filename, kind, dir], { stdio: ["ignore", "pipe", "inherit"] }),
  );
  await Promise.all(
    children.map(
      (child) =>
        new Promise<void>((resolve, reject) => {
          child.stdout!.once("data", () => resolve());
          child.once("exit", (code, signal) => reject(new Error(`a load process exited before it started (${signal ?? code})`)));
        }),
    ),
  );
  return {
    async stop() {
      await Promise.all(
        children.map(
          (child) =>
            new Promise<void>((resolve) => {
              child.removeAllListeners("exit");
              if (child.exitCode !== null || child.signalCode !== null) return resolve();
              child.once("exit", () => resolve());
              child.kill("SIGKILL");
            }),
        ),
      );
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function spinCpu(): never {
  process.stdout.write("running\n");
  let x = 0;
  for (;;) x = Math.sqrt(x + Math.random());
}

function churnDisk(dir: string): never {
  process.stdout.write("running\n");
  const block = Buffer.alloc(1 << 20, 0x5a);
  for (let i = 0; ; i = (i + 1) % 8) {
    const fd = openSync(path.join(dir, `block-${process.pid}-${i}`), "w");
    writeSync(fd, block);
    fsyncSync(fd);
    closeSync(fd);
  }
}

if (process.argv[1] === import.meta.filename) {
  const [kind, dir] = process.argv.slice(2);
  if (kind === "cpu") spinCpu();
  else if (kind === "disk" && dir !== undefined) churnDisk(dir);
  else {
    console.error("usage: node bench/contention.ts cpu | disk <dir>");
    process.exit(2);
  }
}
