// A process supervisor for the local network: it starts services, waits until they answer,
// restarts one that crashes, and stops them all in reverse start order.
//
// Contract:
// - `start(spec)` spawns `spec.command` in its own process group (a terminal's Ctrl-C reaches the
//   composition only, which then stops everything in order), its stdout and stderr appended to
//   `spec.logFile`, and resolves once `spec.ready` answers true. It rejects with a
//   {ServiceStartError} carrying the end of the log when the process exits or does not become ready
//   within `readyTimeoutMs`.
// - A service that exits while the supervisor is not stopping it is restarted after a backoff
//   (doubling from `restart.initialDelayMs` up to `restart.maxDelayMs`), at most
//   `restart.maxRestarts` times in a row; a service that stayed up for `restart.resetAfterMs` starts
//   counting afresh. Whatever the crashed process left in its group is killed first. Each step is
//   reported through `onEvent`; the other services keep running.
// - `stopAll()` stops the services one at a time, last started first: `stopSignal` (SIGTERM) to the
//   whole group, SIGKILL after `stopTimeoutMs`.
// - No child outlives the composition: `killAllNow()` runs on the process's `exit` event, and a
//   watchdog process (devnet/watchdog.ts) that the supervisor feeds through a pipe kills the groups
//   when that pipe closes, which also covers a parent killed with SIGKILL.
//
// Usage:
//   const supervisor = createSupervisor({ onEvent: (e) => console.log(describeEvent(e)) });
//   await supervisor.start({ name: "Redis", command: "redis-server", args: ["--port", "6390"],
//     logFile: "cache/redis.log", ready: redisReady("127.0.0.1", 6390) });
//   …
//   await supervisor.stopAll();
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, readFileSync } from "node:fs";
import type { Socket } from "node:net";
import path from "node:path";

import { TidewayError } from "../lib/errors.ts";
import { waitUntil } from "./readiness.ts";

const WATCHDOG = path.join(import.meta.dirname, "watchdog.ts");

export interface RestartPolicy {
  /** Restarts in a row before giving up (default 5). */
  maxRestarts?: number;
  /** First backoff (default 1 s), doubled on each crash in a row. */
  initialDelayMs?: number;
  /** Longest backoff (default 30 s). */
  maxDelayMs?: number;
  /** A service up this long counts its crashes afresh (default 60 s). */
  resetAfterMs?: number;
}

export interface ServiceSpec {
  name: string;
  command: string;
  args: readonly string[];
  /** Added to the supervisor's environment. */
  env?: Record<string, string>;
  cwd?: string;
  /** Where stdout and stderr go (truncated on the first start unless `appendLog`, appended to on restarts). */
  logFile: string;
  appendLog?: boolean;
  /** Resolves true once the service answers (default: as soon as it is spawned). */
  ready?: () => Promise<boolean>;
  /** Default 60 s. */
  readyTimeoutMs?: number;
  /** `false`: a crash is reported and the service stays down. */
  restart?: RestartPolicy | false;
  /** Default SIGTERM. */
  stopSignal?: NodeJS.Signals;
  /** SIGKILL after this long (default 10 s). */
  stopTimeoutMs?: number;
}

export type SupervisorEvent =
  | { type: "exited"; name: string; code: number | null; signal: NodeJS.Signals | null; restartInMs?: number }
  | { type: "restarted"; name: string; pid: number; restarts: number }
  | { type: "restart-failed"; name: string; error: string }
  | { type: "gave-up"; name: string; restarts: number }
  | { type: "killed-after-timeout"; name: string; timeoutMs: number };

export interface Service {
  readonly name: string;
  readonly spec: ServiceSpec;
  /** The current process's pid (it leads its own group). */
  readonly pid: number | undefined;
  /** Restarts so far. */
  readonly restarts: number;
  running(): boolean;
  /** Stops it (and its group) with `signal` (default: its `stopSignal`) and keeps it down. */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /**
   * Starts a service that `stop` left down, or that the supervisor gave up on (log appended, crash
   * count afresh), supervised again; resolves once ready, rejects like `start` when it does not come up
   * (and leaves it down: call it again later).
   */
  resume(): Promise<void>;
}

export interface Supervisor {
  start(spec: ServiceSpec): Promise<Service>;
  /** The services, in start order. */
  services(): readonly Service[];
  /** Stops every service, last started first; `beforeStop` runs before each one is stopped. */
  stopAll(beforeStop?: (service: Service) => Promise<void>): Promise<void>;
  /** SIGKILLs every group at once (synchronous: usable in an `exit` handler). */
  killAllNow(): void;
}

export interface SupervisorOptions {
  onEvent?: (event: SupervisorEvent) => void;
  /** Environment of every child (default: this process's). */
  env?: NodeJS.ProcessEnv;
  /** How long the watchdog waits between SIGTERM and SIGKILL once the parent is gone (default 5 s). */
  orphanGraceMs?: number;
}

/** A service that exited or did not answer while starting. */
export class ServiceStartError extends TidewayError {
  override name = "ServiceStartError";
  constructor(service: string, problem: string, logFile: string) {
    super("service_not_started", `${service} ${problem}. Last lines of ${logFile}:\n${tailOf(logFile, 20)}`);
  }
}

/** The last `lines` lines of a log file. */
export function tailOf(file: string, lines: number): string {
  if (!existsSync(file)) return "(no log)";
  return readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
}

/** One line for a supervisor event. */
export function describeEvent(e: SupervisorEvent): string {
  switch (e.type) {
    case "exited":
      return `${e.name} exited (${e.signal ?? `code ${e.code}`})${e.restartInMs === undefined ? "" : `: restarting it in ${e.restartInMs / 1000} s`}`;
    case "restarted":
      return `${e.name} restarted (pid ${e.pid}, restart #${e.restarts})`;
    case "restart-failed":
      return `${e.name} did not come back: ${e.error.split("\n")[0]}`;
    case "gave-up":
      return `${e.name} crashed ${e.restarts + 1} times in a row: left stopped (see its log)`;
    case "killed-after-timeout":
      return `${e.name} did not stop within ${e.timeoutMs / 1000} s: killed`;
  }
}

function groupAlive(pid: number): boolean {
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    return false;
  }
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    /* gone */
  }
}

const exited = (child: ChildProcess) => child.exitCode !== null || child.signalCode !== null;

export function createSupervisor(options: SupervisorOptions = {}): Supervisor {
  const started: ManagedService[] = [];
  let stopping = false;
  let watchdog: ChildProcess | undefined;

  function tellWatchdog(line: string): void {
    if (watchdog === undefined) {
      watchdog = spawn(process.execPath, [WATCHDOG, String(options.orphanGraceMs ?? 5_000)], {
        stdio: ["pipe", "ignore", "ignore"],
        detached: true,
      });
      watchdog.unref();
      (watchdog.stdin as unknown as Socket).unref();
      watchdog.stdin!.on("error", () => undefined);
    }
    watchdog.stdin!.write(`${line}\n`);
  }

  const onExit = () => supervisor.killAllNow();
  process.on("exit", onExit);

  class ManagedService implements Service {
    readonly name: string;
    readonly spec: ServiceSpec;
    child: ChildProcess | undefined;
    restarts = 0;
    /** Crashes in a row. */
    crashes = 0;
    upSince = 0;
    wanted = true;
    /** Restarts apply once the first start has succeeded; a failing first start is the caller's. */
    everReady = false;
    restartTimer: NodeJS.Timeout | undefined;

    constructor(spec: ServiceSpec) {
      this.name = spec.name;
      this.spec = spec;
    }

    get pid(): number | undefined {
      return this.child?.pid;
    }

    running(): boolean {
      return this.child !== undefined && !exited(this.child);
    }

    spawnChild(append: boolean): ChildProcess {
      mkdirSync(path.dirname(this.spec.logFile), { recursive: true });
      const fd = openSync(this.spec.logFile, append ? "a" : "w");
      const child = spawn(this.spec.command, [...this.spec.args], {
        cwd: this.spec.cwd,
        env: { ...(options.env ?? process.env), ...this.spec.env },
        stdio: ["ignore", fd, fd],
        detached: true,
      });
      closeSync(fd);
      child.on("error", () => undefined); // reported through "exit" or the readiness wait
      if (child.pid !== undefined) tellWatchdog(`+${child.pid}`);
      child.once("exit", (code, signal) => this.onChildExit(child, code, signal));
      this.child = child;
      this.upSince = Date.now();
      return child;
    }

    async waitReady(child: ChildProcess): Promise<void> {
      const ready = this.spec.ready ?? (async () => true);
      const timeoutMs = this.spec.readyTimeoutMs ?? 60_000;
      const outcome = await waitUntil(async () => exited(child) || child.pid === undefined || (await ready()), timeoutMs);
      if (child.pid === undefined) throw new ServiceStartError(this.name, `could not be started (${this.spec.command})`, this.spec.logFile);
      if (exited(child))
        throw new ServiceStartError(
          this.name,
          `exited while starting (${child.signalCode ?? `code ${child.exitCode}`})`,
          this.spec.logFile,
        );
      if (!outcome) {
        signalGroup(child.pid, "SIGKILL");
        throw new ServiceStartError(this.name, `did not answer within ${timeoutMs / 1000} s`, this.spec.logFile);
      }
    }

    onChildExit(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
      const pid = child.pid!;
      // Whatever the process left in its group goes with it.
      if (groupAlive(pid)) signalGroup(pid, "SIGKILL");
      tellWatchdog(`-${pid}`);
      if (stopping || !this.wanted || !this.everReady || child !== this.child) return;
      const policy = this.spec.restart;
      if (policy === false) {
        options.onEvent?.({ type: "exited", name: this.name, code, signal });
        return;
      }
      if (Date.now() - this.upSince >= (policy?.resetAfterMs ?? 60_000)) this.crashes = 0;
      if (this.crashes >= (policy?.maxRestarts ?? 5)) {
        options.onEvent?.({ type: "exited", name: this.name, code, signal });
        options.onEvent?.({ type: "gave-up", name: this.name, restarts: this.crashes });
        return;
      }
      const delay = Math.min((policy?.initialDelayMs ?? 1_000) * 2 ** this.crashes, policy?.maxDelayMs ?? 30_000);
      this.crashes += 1;
      options.onEvent?.({ type: "exited", name: this.name, code, signal, restartInMs: delay });
      this.restartTimer = setTimeout(() => void this.restart(), delay);
    }

    async restart(): Promise<void> {
      this.restartTimer = undefined;
      if (stopping || !this.wanted) return;
      const child = this.spawnChild(true);
      try {
        await this.waitReady(child);
        this.restarts += 1;
        options.onEvent?.({ type: "restarted", name: this.name, pid: child.pid!, restarts: this.restarts });
      } catch (err) {
        if (stopping || !this.wanted) return;
        // An exit while starting has already scheduled the next attempt; a hang has not.
        options.onEvent?.({ type: "restart-failed", name: this.name, error: (err as Error).message });
      }
    }

    async resume(): Promise<void> {
      if (stopping) throw new Error(`the supervisor is stopping: ${this.name} not resumed`);
      if (this.running()) return;
      // A restart the supervisor has scheduled is this one.
      if (this.restartTimer !== undefined) clearTimeout(this.restartTimer);
      this.restartTimer = undefined;
      this.wanted = true;
      this.crashes = 0;
      // Like a first start: an exit while starting is the caller's to handle, not a crash to restart.
      this.everReady = false;
      const child = this.spawnChild(true);
      try {
        await this.waitReady(child);
      } catch (err) {
        this.wanted = false;
        throw err;
      } finally {
        this.everReady = true;
      }
      this.restarts += 1;
      options.onEvent?.({ type: "restarted", name: this.name, pid: child.pid!, restarts: this.restarts });
    }

    async stop(signal?: NodeJS.Signals): Promise<void> {
      this.wanted = false;
      if (this.restartTimer !== undefined) clearTimeout(this.restartTimer);
      const child = this.child;
      if (child === undefined || child.pid === undefined) return;
      const pid = child.pid;
      if (exited(child)) {
        if (groupAlive(pid)) signalGroup(pid, "SIGKILL");
        return;
      }
      const timeoutMs = this.spec.stopTimeoutMs ?? 10_000;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          options.onEvent?.({ type: "killed-after-timeout", name: this.name, timeoutMs });
          signalGroup(pid, "SIGKILL");
        }, timeoutMs);
        child.once("exit", () => {
          clearTimeout(timer);
          resolve();
        });
        signalGroup(pid, signal ?? this.spec.stopSignal ?? "SIGTERM");
      });
    }
  }

  const supervisor: Supervisor = {
    async start(spec) {
      if (stopping) throw new Error(`the supervisor is stopping: ${spec.name} not started`);
      const service = new ManagedService(spec);
      started.push(service);
      const child = service.spawnChild(spec.appendLog === true);
      try {
        await service.waitReady(child);
        service.everReady = true;
      } catch (err) {
        service.wanted = false;
        throw err;
      }
      return service;
    },
    services: () => [...started],
    async stopAll(beforeStop) {
      stopping = true;
      for (const service of [...started].reverse()) {
        await beforeStop?.(service).catch(() => undefined);
        await service.stop();
      }
      process.off("exit", onExit);
      watchdog?.stdin?.end();
    },
    killAllNow() {
      stopping = true;
      for (const service of started) if (service.pid !== undefined) signalGroup(service.pid, "SIGKILL");
    },
  };
  return supervisor;
}
