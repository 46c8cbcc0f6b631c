// The shape of an event handler: Ponder's typed arguments for one `Contract:Event`.
import type { EventNames, IndexingFunctionArgs } from "ponder:registry";

export type Handler<N extends EventNames> = (args: IndexingFunctionArgs<N>) => Promise<void>;

/** Handlers by event name; an event without one is still recorded in the `event` table. */
export type Handlers = { [N in EventNames]?: Handler<N> };

/** Any handler's context (the database and the chain client are the same for every event). */
export type AnyContext = IndexingFunctionArgs["context"];

/** A row id unique to one log, the same on every replay of its block. */
export const logId = (event: { transaction: { hash: string }; log: { logIndex: number } }): string =>
  `${event.transaction.hash}:${event.log.logIndex}`;

/** What viem's readContract needs of one of `context.contracts`. */
export const contract = <T extends { abi: unknown; address?: unknown }>(c: T): { abi: T["abi"]; address: `0x${string}` } => ({
  abi: c.abi,
  address: c.address as `0x${string}`,
});
