// How `npm start` ends: on Ctrl-C, SIGTERM, the exit of the process that started it, an
// unexpected error or a failed setup step, it stops the network once, in reverse start order,
// then exits.
import type { Service, Supervisor } from "./supervisor.ts";

export interface LifecycleOptions {
  supervisor: Supervisor;
  say: (message: string) => void;
  /** Runs once, before any service is stopped (stop what feeds the services). */
  beforeStop?: () => void;
  /** Runs before each running service is stopped, after its "stopping" line. */
  beforeServiceStop?: (service: Service) => Promise<void>;
}

export interface Lifecycle {
  /** Stops the network and exits with `code`; later calls wait for the first one's exit. */
  shutdown(reason: string, code?: number): Promise<never>;
  /** Runs a setup step; on failure, says what failed and stops the network in order. */
  must<T>(what: string, run: () => Promise<T>): Promise<T>;
  /** Says `message` as a failure, then stops the network (exit code 1). */
  fail(message: string): Promise<never>;
}

/** Installs the signal, parent-exit and uncaught-error handlers of this process. */
export function createLifecycle(options: LifecycleOptions): Lifecycle {
  const { supervisor, say } = options;
  let stopping = false;
  async function shutdown(reason: string, code = 0): Promise<never> {
    if (!stopping) {
      stopping = true;
      say(`${reason}: stopping the network`);
      options.beforeStop?.();
      await supervisor.stopAll(async (service) => {
        if (!service.running()) return;
        say(`  stopping ${service.name}${service.name.startsWith("edge") ? " (it drains its requests and redeems its vouchers)" : ""}`);
        await options.beforeServiceStop?.(service);
      });
      say("everything stopped; bye");
      process.exit(code);
    }
    return new Promise<never>(() => undefined); // the first shutdown exits
  }
  // While stopping, what fails in the setup (it runs on until it needs a stopped service) is no news.
  const fail = (message: string) => {
    if (!stopping) console.error(`[start] ✗ ${message}`);
    return shutdown("setup failed", 1);
  };
  process.on("SIGINT", () => void shutdown("SIGINT received"));
  process.on("SIGTERM", () => void shutdown("SIGTERM received"));
  // `npm start` runs under `sh -c`, which dies on npm's SIGTERM without passing it on.
  const parentPid = process.ppid;
  setInterval(() => process.ppid !== parentPid && void shutdown("the process that started this one has exited"), 1_000).unref();
  process.on("uncaughtException", (err) => void fail(`unexpected error: ${err.stack ?? err.message}`));
  process.on("unhandledRejection", (err) => void fail(`unexpected error: ${(err as Error)?.stack ?? String(err)}`));
  async function must<T>(what: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (err) {
      return fail(`${what} failed: ${(err as Error).message}`);
    }
  }
  return { shutdown, must, fail };
}
