// Shared pieces of the task tests: every address of a `deployProtocol` deployment as the tasks
// take them, IO that records what a task prints, and the error a task fails with. Importing this
// file runs nothing.
import type { Address } from "viem";

import type { TaskAddresses, TaskIO } from "../../scripts/tasks/actions/common.ts";
import type { deployProtocol } from "./protocol.ts";

type Env = Awaited<ReturnType<typeof deployProtocol>>;

/** The addresses of every contract `deployProtocol` deployed. */
export async function taskAddresses(env: Env): Promise<TaskAddresses> {
  const [token, registry, staking, verifierSet, settlement, market] = await Promise.all(
    [env.token, env.registry, env.staking, env.verifierSet, env.settlement, env.market].map(async (c) => (await c.getAddress()) as Address),
  );
  return { token, registry, staking, verifierSet, settlement, market };
}

/** IO that records what a task prints (`out` for its log, `err` for its errors). */
export function capture(addresses: Partial<TaskAddresses>, env?: Record<string, string | undefined>) {
  const out: string[] = [];
  const err: string[] = [];
  const io: TaskIO = { addresses, log: (l) => out.push(l), error: (l) => err.push(l), ...(env === undefined ? {} : { env }) };
  return { io, out, err };
}

/** The error `promise` rejects with (fails the test if it resolves). */
export async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (e) {
    return e as Error;
  }
  throw new Error("expected the task to fail");
}

/** A unix time as the tasks print it (`2026-12-07 06:31:00 UTC`), computed here independently. */
export function utc(timestamp: bigint): string {
  return new Date(Number(timestamp) * 1000)
    .toISOString()
    .replace("T", " ")
    .replace(/\.\d+Z$/, " UTC");
}

/** `in 3 h 59 min` for a gap of at least an hour, `in 4 min 10 s` for less. */
export function inWords(seconds: bigint): string {
  return seconds >= 3_600n ? `in ${seconds / 3_600n} h ${(seconds % 3_600n) / 60n} min` : `in ${seconds / 60n} min ${seconds % 60n} s`;
}
