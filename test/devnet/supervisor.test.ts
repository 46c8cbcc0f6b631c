// The devnet's process supervisor against real processes: readiness, restarts after a crash,
// stops in reverse start order (whole process groups), and no child left behind when the parent
// dies, even by SIGKILL.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

import { expect } from "chai";

import { freePort, httpReady, waitUntil } from "../../devnet/readiness.ts";
import { createSupervisor, type Supervisor, type SupervisorEvent, ServiceStartError } from "../../devnet/supervisor.ts";

const SUPERVISOR = path.resolve(import.meta.dirname, "../../devnet/supervisor.ts");

/** A Node program that serves GET /health with 200 on `port`, after `delayMs`. */
const httpServer = (port: number, delayMs = 0) =>
  `setTimeout(() => require("node:http").createServer((q, s) => s.end("ok")).listen(${port}, "127.0.0.1"), ${delayMs});`;

/** Whether `pid` runs (a zombie waiting for a parent to reap it does not). */
function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

describe("devnet supervisor", function () {
  this.timeout(60_000);
  let dir: string;
  let supervisor: Supervisor;
  let events: SupervisorEvent[];

  beforeEach(function () {
    dir = mkdtempSync(path.join(tmpdir(), "tideway-supervisor-"));
    events = [];
    supervisor = createSupervisor({ onEvent: (e) => events.push(e) });
  });

  afterEach(async function () {
    await supervisor.stopAll();
  });

  it("resolves start() only once the service answers its readiness check", async function () {
    const port = await freePort();
    const service = await supervisor.start({
      name: "slow server",
      command: process.execPath,
      args: ["-e", httpServer(port, 1_500)],
      logFile: path.join(dir, "slow.log"),
      ready: httpReady(`http://127.0.0.1:${port}/health`),
    });
    expect(service.running()).to.equal(true);
    expect((await fetch(`http://127.0.0.1:${port}/health`)).status).to.equal(200);
  });

  it("rejects start() with the end of the log when the service exits while starting", async function () {
    const start = supervisor.start({
      name: "broken",
      command: process.execPath,
      args: ["-e", `console.error("cannot read the configuration"); process.exit(3)`],
      logFile: path.join(dir, "broken.log"),
      ready: async () => false,
    });
    const err = await start.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(ServiceStartError);
    expect((err as Error).message)
      .to.include("exited while starting (code 3)")
      .and.include("cannot read the configuration");
    expect(events).to.deep.equal([]); // a failed first start is not restarted
  });

  it("restarts a service killed with SIGKILL, the others untouched", async function () {
    const [portA, portB] = [await freePort(), await freePort()];
    const a = await supervisor.start({
      name: "a",
      command: process.execPath,
      args: ["-e", httpServer(portA)],
      logFile: path.join(dir, "a.log"),
      ready: httpReady(`http://127.0.0.1:${portA}/`),
      restart: { initialDelayMs: 200 },
    });
    const b = await supervisor.start({
      name: "b",
      command: process.execPath,
      args: ["-e", httpServer(portB)],
      logFile: path.join(dir, "b.log"),
      ready: httpReady(`http://127.0.0.1:${portB}/`),
    });
    const [pidA, pidB] = [a.pid!, b.pid!];
    process.kill(pidA, "SIGKILL");
    expect(await waitUntil(async () => events.some((e) => e.type === "restarted"), 10_000)).to.equal(true);
    expect(events.map((e) => e.type)).to.deep.equal(["exited", "restarted"]);
    expect(events[0]).to.include({ name: "a", signal: "SIGKILL", restartInMs: 200 });
    expect(a.pid).to.not.equal(pidA);
    expect(a.restarts).to.equal(1);
    expect(await httpReady(`http://127.0.0.1:${portA}/`)()).to.equal(true);
    expect(b.pid).to.equal(pidB);
    expect(b.running()).to.equal(true);
  });

  it("keeps a stopped service down, then resume() starts it again under supervision", async function () {
    const port = await freePort();
    const service = await supervisor.start({
      name: "outage",
      command: process.execPath,
      args: ["-e", httpServer(port)],
      logFile: path.join(dir, "outage.log"),
      ready: httpReady(`http://127.0.0.1:${port}/`),
      restart: { initialDelayMs: 100 },
    });
    await service.stop("SIGKILL");
    await new Promise((r) => setTimeout(r, 500));
    expect(service.running()).to.equal(false);
    expect(events).to.deep.equal([]); // a stopped service is not restarted
    await service.resume();
    expect(service.running()).to.equal(true);
    expect(await httpReady(`http://127.0.0.1:${port}/`)()).to.equal(true);
    expect(events.map((e) => e.type)).to.deep.equal(["restarted"]);
    // Supervised again: a crash after the resume is restarted.
    const pid = service.pid!;
    process.kill(pid, "SIGKILL");
    expect(await waitUntil(async () => events.filter((e) => e.type === "restarted").length === 2, 10_000)).to.equal(true);
    expect(service.pid).to.not.equal(pid);
  });

  it("gives up on a service that keeps crashing, and resume() starts it again", async function () {
    const port = await freePort();
    // Up once, then every later start exits at once (the marker file exists).
    const marker = path.join(dir, "started-once");
    const program = `const fs = require("node:fs"); if (fs.existsSync(${JSON.stringify(marker)})) process.exit(1); fs.writeFileSync(${JSON.stringify(marker)}, ""); ${httpServer(port)}`;
    const service = await supervisor.start({
      name: "flaky",
      command: process.execPath,
      args: ["-e", program],
      logFile: path.join(dir, "flaky.log"),
      ready: httpReady(`http://127.0.0.1:${port}/`),
      restart: { maxRestarts: 2, initialDelayMs: 50 },
    });
    process.kill(service.pid!, "SIGKILL");
    expect(await waitUntil(async () => events.some((e) => e.type === "gave-up"), 10_000)).to.equal(true);
    expect(events.filter((e) => e.type === "exited").map((e) => (e as { restartInMs?: number }).restartInMs)).to.deep.equal([
      50,
      100,
      undefined,
    ]);
    // Left down; resume() while the cause remains rejects and leaves it down, with no restart of its own.
    await new Promise((r) => setTimeout(r, 300));
    expect(service.running()).to.equal(false);
    const failed = await service.resume().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(failed).to.be.instanceOf(ServiceStartError);
    const exits = events.length;
    await new Promise((r) => setTimeout(r, 300));
    expect(service.running()).to.equal(false);
    expect(events).to.have.length(exits);
    // Once the cause is gone, resume() brings it back.
    rmSync(marker);
    await service.resume();
    expect(await httpReady(`http://127.0.0.1:${port}/`)()).to.equal(true);
  });

  it("stops services last started first, each whole process group", async function () {
    const order = path.join(dir, "order");
    // Each writes its name when it gets SIGTERM, and has a grandchild in its group.
    const program = (name: string) =>
      `const cp = require("node:child_process"); const g = cp.spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], { stdio: "ignore" }); console.log("grandchild " + g.pid);` +
      `process.on("SIGTERM", () => { require("node:fs").appendFileSync(${JSON.stringify(order)}, "${name}\\n"); setTimeout(() => process.exit(0), 100); }); setInterval(() => {}, 1000);`;
    const grandchildren: number[] = [];
    for (const name of ["first", "second", "third"]) {
      const log = path.join(dir, `${name}.log`);
      await supervisor.start({
        name,
        command: process.execPath,
        args: ["-e", program(name)],
        logFile: log,
        ready: async () => /grandchild (\d+)/.test(readFileSync(log, "utf8")),
      });
      grandchildren.push(Number(/grandchild (\d+)/.exec(readFileSync(log, "utf8"))![1]));
    }
    await supervisor.stopAll();
    expect(readFileSync(order, "utf8").trim().split("\n")).to.deep.equal(["third", "second", "first"]);
    expect(await waitUntil(async () => grandchildren.every((pid) => !alive(pid)), 5_000)).to.equal(true);
  });

  it("SIGKILLs a service that ignores SIGTERM after its stop timeout", async function () {
    const service = await supervisor.start({
      name: "stubborn",
      command: process.execPath,
      args: ["-e", `process.on("SIGTERM", () => {}); console.log("ready"); setInterval(() => {}, 1000);`],
      logFile: path.join(dir, "stubborn.log"),
      ready: async () => readFileSync(path.join(dir, "stubborn.log"), "utf8").includes("ready"),
      stopTimeoutMs: 500,
    });
    const pid = service.pid!;
    await service.stop();
    expect(alive(pid)).to.equal(false);
    expect(events).to.deep.equal([{ type: "killed-after-timeout", name: "stubborn", timeoutMs: 500 }]);
  });

  it("leaves no child behind when the process that supervises it is killed with SIGKILL, stopping them last started first", async function () {
    const order = path.join(dir, "order");
    const child = (name: string) =>
      `process.on("SIGTERM", () => { require("node:fs").appendFileSync(${JSON.stringify(order)}, "${name}\\n"); setTimeout(() => process.exit(0), 200); }); setInterval(() => {}, 1000);`;
    const parentProgram =
      `import { createSupervisor } from ${JSON.stringify(SUPERVISOR)};` +
      `const s = createSupervisor({ orphanGraceMs: 2000 });` +
      `const pids = [];` +
      `for (const name of ["first", "second"]) pids.push((await s.start({ name, command: process.execPath, args: ["-e", ${JSON.stringify(child("NAME"))}.replace("NAME", name)], logFile: ${JSON.stringify(path.join(dir, "orphan.log"))} })).pid);` +
      `console.log("children " + pids.join(" ")); setInterval(() => {}, 1000);`;
    const parent = spawn(process.execPath, ["--input-type=module", "-e", parentProgram], { stdio: ["ignore", "pipe", "inherit"] });
    const children = await new Promise<number[]>((resolve, reject) => {
      parent.stdout.on("data", (d: Buffer) => {
        const m = /children (\d+) (\d+)/.exec(d.toString());
        if (m !== null) resolve([Number(m[1]), Number(m[2])]);
      });
      parent.once("exit", () => reject(new Error("the parent exited before starting its children")));
    });
    await new Promise((r) => setTimeout(r, 300)); // their SIGTERM handlers are installed
    expect(children.every(alive)).to.equal(true);
    parent.kill("SIGKILL");
    expect(await waitUntil(async () => !children.some(alive), 10_000)).to.equal(
      true,
      `children ${children.join(", ")} outlived their parent`,
    );
    expect(readFileSync(order, "utf8").trim().split("\n")).to.deep.equal(["second", "first"]);
  });
});
