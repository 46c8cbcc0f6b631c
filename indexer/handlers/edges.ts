// Edges, their stake and its history. Amounts that the contracts derive (stake after slashes,
// positions from shares, status) are read from the contracts at the event's block rather than
// recomputed here, so the rows equal what a client reading the chain at that block sees.
import { eq } from "ponder";
import { commissionChange, edge, edgeEpochReward, jail, position, rewardClaim, slash, unbonding, unjail } from "ponder:schema";

import { type AnyContext, contract, type Handlers, logId } from "./types.ts";

/** Re-reads what the contracts say about edge `id` at `block` into its row. */
async function refreshEdge(context: AnyContext, id: bigint, block: bigint): Promise<void> {
  const registry = contract(context.contracts.EdgeRegistry);
  const staking = contract(context.contracts.EdgeStaking);
  const at = { blockNumber: block } as const;
  const read = context.client;
  const [record, status, selfBond, [active, earning, unbondingSlashable], epoch] = await Promise.all([
    read.readContract({ ...registry, functionName: "edge", args: [id], ...at }),
    read.readContract({ ...staking, functionName: "edgeStatus", args: [id], ...at }),
    read.readContract({ ...staking, functionName: "selfBond", args: [id], ...at }),
    read.readContract({ ...staking, functionName: "edgeStake", args: [id], ...at }),
    read.readContract({ ...staking, functionName: "currentEpoch", ...at }),
  ]);
  const commissionBps = await read.readContract({ ...staking, functionName: "commissionAt", args: [id, epoch], ...at });
  await context.db.update(edge, { id }).set({
    operator: record.operator,
    signingKey: record.signingKey,
    profileHash: record.profileHash,
    registryState: record.state,
    status,
    selfBond,
    activeStake: active,
    earningStake: earning,
    unbondingSlashable,
    commissionBps,
    updatedBlock: block,
  });
}

/** Re-reads `account`'s position in edge `id` at `block`. */
async function refreshPosition(context: AnyContext, id: bigint, account: `0x${string}`, block: bigint): Promise<void> {
  const staking = contract(context.contracts.EdgeStaking);
  const [[earning, warmingUp, activationEpoch, rewards], row] = await Promise.all([
    context.client.readContract({ ...staking, functionName: "position", args: [id, account], blockNumber: block }),
    context.db.find(edge, { id }),
  ]);
  const values = { earning, warmingUp, activationEpoch, rewards, updatedBlock: block };
  await context.db
    .insert(position)
    .values({ edgeId: id, account, isOperator: row?.operator.toLowerCase() === account.toLowerCase(), ...values })
    .onConflictDoUpdate(values);
}

/** After a slash or a reward every position and unbonding entry of the edge is worth something else. */
async function refreshAllOfEdge(context: AnyContext, id: bigint, block: bigint): Promise<void> {
  const positions = await context.db.sql.select().from(position).where(eq(position.edgeId, id));
  for (const p of positions) await refreshPosition(context, id, p.account, block);
  const entries = await context.db.sql.select().from(unbonding).where(eq(unbonding.edgeId, id));
  for (const u of entries) {
    if (u.withdrawn !== null) continue;
    const [amount] = await context.client.readContract({
      ...contract(context.contracts.EdgeStaking),
      functionName: "unbonding",
      args: [id, u.account, u.index],
      blockNumber: block,
    });
    await context.db.update(unbonding, { edgeId: id, account: u.account, index: u.index }).set({ amount });
  }
}

export const edgeHandlers: Handlers = {
  "EdgeRegistry:EdgeRegistered": async ({ event, context }) => {
    const { edgeId, operator, signingKey, profile } = event.args;
    await context.db
      .insert(edge)
      .values({
        id: edgeId,
        operator,
        signingKey,
        endpoint: profile.endpoint,
        region: profile.region,
        capacity: profile.capacity,
        models: [...profile.models],
        metadataURI: profile.metadataURI,
        registryState: 0,
        status: 0,
        selfBond: 0n,
        activeStake: 0n,
        earningStake: 0n,
        unbondingSlashable: 0n,
        commissionBps: 0n,
        slashCount: 0,
        totalSlashed: 0n,
        registeredBlock: event.block.number,
        registeredAt: event.block.timestamp,
        updatedBlock: event.block.number,
      })
      .onConflictDoNothing();
    await refreshEdge(context, edgeId, event.block.number);
  },
  "EdgeRegistry:EdgeProfileUpdated": async ({ event, context }) => {
    const { edgeId, profile } = event.args;
    await context.db.update(edge, { id: edgeId }).set({
      endpoint: profile.endpoint,
      region: profile.region,
      capacity: profile.capacity,
      models: [...profile.models],
      metadataURI: profile.metadataURI,
    });
    await refreshEdge(context, edgeId, event.block.number);
  },
  "EdgeRegistry:EdgePaused": async ({ event, context }) => refreshEdge(context, event.args.edgeId, event.block.number),
  "EdgeRegistry:EdgeResumed": async ({ event, context }) => refreshEdge(context, event.args.edgeId, event.block.number),
  "EdgeRegistry:EdgeDeregistered": async ({ event, context }) => refreshEdge(context, event.args.edgeId, event.block.number),
  "EdgeRegistry:SigningKeyRotated": async ({ event, context }) => refreshEdge(context, event.args.edgeId, event.block.number),

  "EdgeStaking:Bonded": async ({ event, context }) => {
    await refreshEdge(context, event.args.edgeId, event.block.number);
    await refreshPosition(context, event.args.edgeId, event.args.account, event.block.number);
  },
  "EdgeStaking:Unbonded": async ({ event, context }) => {
    const { edgeId, account, index, amount, shares, withdrawableAt } = event.args;
    await context.db
      .insert(unbonding)
      .values({ edgeId, account, index, amount, shares, withdrawableAt, block: event.block.number })
      .onConflictDoNothing();
    await refreshEdge(context, edgeId, event.block.number);
    await refreshPosition(context, edgeId, account, event.block.number);
  },
  "EdgeStaking:Withdrawn": async ({ event, context }) => {
    const { edgeId, account, index, amount } = event.args;
    await context.db.update(unbonding, { edgeId, account, index }).set({ withdrawn: amount, amount: 0n });
    await refreshEdge(context, edgeId, event.block.number);
  },
  "EdgeStaking:CommissionChangeScheduled": async ({ event, context }) => {
    const { edgeId, currentBps, newBps, effectiveEpoch } = event.args;
    await context.db
      .insert(commissionChange)
      .values({ id: logId(event), edgeId, currentBps, newBps, effectiveEpoch, block: event.block.number })
      .onConflictDoNothing();
    await context.db.update(edge, { id: edgeId }).set({ pendingCommissionBps: newBps, commissionEffectiveEpoch: effectiveEpoch });
    await refreshEdge(context, edgeId, event.block.number);
  },
  "EdgeStaking:Slashed": async ({ event, context }) => {
    const { edgeId, faultEpoch, reporter, fractionBps, total, burned, reporterReward } = event.args;
    await context.db
      .insert(slash)
      .values({
        id: logId(event),
        edgeId,
        faultEpoch,
        reporter,
        fractionBps,
        total,
        burned,
        reporterReward,
        block: event.block.number,
        timestamp: event.block.timestamp,
      })
      .onConflictDoNothing();
    await context.db
      .update(edge, { id: edgeId })
      .set((row) => ({ slashCount: row.slashCount + 1, totalSlashed: row.totalSlashed + total }));
    await refreshEdge(context, edgeId, event.block.number);
    await refreshAllOfEdge(context, edgeId, event.block.number);
  },
  // Emitted right after its Slashed, in the same transaction.
  "EdgeStaking:SlashDistributed": async ({ event, context }) => {
    const { operatorFirstLoss, fromPool, fromUnbonding } = event.args;
    const id = `${event.transaction.hash}:${event.log.logIndex - 1}`;
    if (await context.db.find(slash, { id })) await context.db.update(slash, { id }).set({ operatorFirstLoss, fromPool, fromUnbonding });
  },
  "EdgeStaking:Jailed": async ({ event, context }) => {
    const { edgeId, faultEpoch, jailedUntil } = event.args;
    await context.db
      .insert(jail)
      .values({ id: logId(event), edgeId, faultEpoch, jailedUntil, block: event.block.number, timestamp: event.block.timestamp })
      .onConflictDoNothing();
    await context.db.update(edge, { id: edgeId }).set({ jailedUntil });
    await refreshEdge(context, edgeId, event.block.number);
  },
  "EdgeStaking:Unjailed": async ({ event, context }) => {
    const { edgeId, epoch } = event.args;
    await context.db
      .insert(unjail)
      .values({ id: logId(event), edgeId, epoch, block: event.block.number })
      .onConflictDoNothing();
    await refreshEdge(context, edgeId, event.block.number);
  },
  "EdgeStaking:RewardCredited": async ({ event, context }) => {
    const { edgeId, epoch, amount, commission } = event.args;
    await context.db
      .insert(edgeEpochReward)
      .values({ edgeId, epoch, credited: amount, commission, block: event.block.number })
      .onConflictDoUpdate({ credited: amount, commission });
    await refreshAllOfEdge(context, edgeId, event.block.number);
  },
  "EdgeStaking:RewardDeclined": async ({ event, context }) => {
    const { edgeId, epoch, amount, reason } = event.args;
    await context.db
      .insert(edgeEpochReward)
      .values({ edgeId, epoch, declined: amount, declineReason: reason, block: event.block.number })
      .onConflictDoUpdate({ declined: amount, declineReason: reason });
  },
  "EdgeStaking:RewardsClaimed": async ({ event, context }) => {
    const { edgeId, account, to, amount } = event.args;
    await context.db
      .insert(rewardClaim)
      .values({ id: logId(event), edgeId, account, to, amount, block: event.block.number })
      .onConflictDoNothing();
    await refreshPosition(context, edgeId, account, event.block.number);
  },
};
