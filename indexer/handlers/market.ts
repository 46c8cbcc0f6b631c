// The compute market: escrows, sessions and redemptions.
import { escrow, redemption, session } from "ponder:schema";

import { type AnyContext, contract, type Handlers, logId } from "./types.ts";

/** Re-reads `payer`'s escrow at `block`; `add` accumulates the running totals the contract does not keep. */
async function refreshEscrow(
  context: AnyContext,
  payer: `0x${string}`,
  block: bigint,
  add: { deposited?: bigint; withdrawn?: bigint; redeemed?: bigint } = {},
): Promise<void> {
  const e = await context.client.readContract({
    ...contract(context.contracts.ComputeMarket),
    functionName: "escrow",
    args: [payer],
    blockNumber: block,
  });
  const state = {
    balance: e.balance,
    thawing: e.thawing,
    thawEndsAt: e.thawEndsAt === 0 ? null : BigInt(e.thawEndsAt),
    updatedBlock: block,
  };
  await context.db
    .insert(escrow)
    .values({ payer, ...state, deposited: add.deposited ?? 0n, withdrawn: add.withdrawn ?? 0n, redeemed: add.redeemed ?? 0n })
    .onConflictDoUpdate((row) => ({
      ...state,
      deposited: row.deposited + (add.deposited ?? 0n),
      withdrawn: row.withdrawn + (add.withdrawn ?? 0n),
      redeemed: row.redeemed + (add.redeemed ?? 0n),
    }));
}

export const marketHandlers: Handlers = {
  "ComputeMarket:Deposited": async ({ event, context }) =>
    refreshEscrow(context, event.args.payer, event.block.number, { deposited: event.args.amount }),
  "ComputeMarket:ThawStarted": async ({ event, context }) => refreshEscrow(context, event.args.payer, event.block.number),
  "ComputeMarket:Withdrawn": async ({ event, context }) =>
    refreshEscrow(context, event.args.payer, event.block.number, { withdrawn: event.args.amount }),
  "ComputeMarket:SessionOpened": async ({ event, context }) => {
    const { sessionId, payer, model, budget, expiry } = event.args;
    await context.db
      .insert(session)
      .values({ id: sessionId, payer, model, budget, expiry, closed: false, paid: 0n, fees: 0n, openedBlock: event.block.number })
      .onConflictDoNothing();
  },
  "ComputeMarket:SessionClosed": async ({ event, context }) => {
    await context.db.update(session, { id: event.args.sessionId }).set({ closed: true });
  },
  "ComputeMarket:Redeemed": async ({ event, context }) => {
    const { sessionId, edgeId, payer, operator, cumulativeAmount, paid, fee } = event.args;
    await context.db
      .insert(redemption)
      .values({ id: logId(event), sessionId, edgeId, payer, operator, cumulativeAmount, paid, fee, block: event.block.number })
      .onConflictDoNothing();
    if (await context.db.find(session, { id: sessionId })) {
      await context.db.update(session, { id: sessionId }).set((row) => ({ paid: row.paid + paid, fees: row.fees + fee }));
    }
    await refreshEscrow(context, payer, event.block.number, { redeemed: paid + fee });
  },
};
