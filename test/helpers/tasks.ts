// Shared pieces of the task tests: every address of a `deployProtocol` deployment as the tasks
// take them, IO that records what a task prints, and the error a task fails with. Importing this
// file runs nothing.
import type { TaskAddresses, TaskIO } from "../../scripts/tasks/actions/common.js";
import type { deployProtocol } from "./protocol.js";

type Env = Awaited<ReturnType<typeof deployProtocol>>;

/** The addresses of every contract `deployProtocol` deployed. */
export async function taskAddresses(env: Env): Promise<TaskAddresses> {
  const [token, registry, staking, verifierSet, settlement, market] = await Promise.all(
    [env.token, env.registry, env.staking, env.verifierSet, env.settlement, env.market].map((c) => c.getAddress()),
  );
  return { token, registry, staking, verifierSet, settlement, market };
}

/** IO that records what a task prints (`out` for its log, `err` for its errors). */
export function capture(addresses: TaskAddresses, env?: Record<string, string | undefined>) {
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
