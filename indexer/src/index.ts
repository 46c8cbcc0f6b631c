// Registers one handler for every event of every protocol contract: each log is recorded in the
// `event` table, then the handler of its kind (if any) updates the tables built from it.
import { replaceBigInts } from "ponder";
import { ponder } from "ponder:registry";
import { event as eventTable } from "ponder:schema";

import config from "../ponder.config.ts";
import { edgeHandlers } from "../handlers/edges.ts";
import { governanceHandlers } from "../handlers/governance.ts";
import { marketHandlers } from "../handlers/market.ts";
import { settlementHandlers } from "../handlers/settlement.ts";
import { type Handler, type Handlers, logId } from "../handlers/types.ts";

const handlers: Handlers = { ...edgeHandlers, ...settlementHandlers, ...marketHandlers, ...governanceHandlers };

type AnyArgs = Parameters<Handler<keyof Handlers>>[0];

for (const [contract, { abi }] of Object.entries(config.contracts)) {
  for (const item of abi) {
    if (item.type !== "event") continue;
    const name = `${contract}:${item.name}` as keyof Handlers;
    const specific = handlers[name] as ((args: AnyArgs) => Promise<void>) | undefined;
    ponder.on(name, async (args: AnyArgs) => {
      const { event, context } = args;
      await context.db
        .insert(eventTable)
        .values({
          id: logId(event),
          contract,
          name: item.name,
          blockNumber: event.block.number,
          blockHash: event.block.hash,
          timestamp: event.block.timestamp,
          transactionHash: event.transaction.hash,
          logIndex: event.log.logIndex,
          // JSON has no big integers: amounts are kept as decimal strings.
          args: replaceBigInts(event.args as Record<string, unknown>, String),
        })
        .onConflictDoNothing();
      await specific?.(args);
    });
  }
}
