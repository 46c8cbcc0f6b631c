// Epochs from attestation to claims, the faults the verifiers attested, and the verifier set.
import { edgeEpochReward, epoch, fault, verifier } from "ponder:schema";

import { type AnyContext, contract, type Handlers, logId } from "./types.ts";

const blank = { frozen: false, resolved: false, funded: false, claims: 0, claimedReward: 0n } as const;

/** Re-reads verifier `id` at `block` into its row. */
async function refreshVerifier(context: AnyContext, id: bigint, block: bigint): Promise<void> {
  const v = await context.client.readContract({
    ...contract(context.contracts.VerifierSet),
    functionName: "verifier",
    args: [id],
    blockNumber: block,
  });
  const values = {
    operator: v.operator,
    signingKey: v.signingKey,
    status: v.status,
    bond: v.bond,
    endpoint: v.endpoint,
    exitableAt: BigInt(v.exitableAt),
    updatedBlock: block,
  };
  await context.db
    .insert(verifier)
    .values({ id, slashedTotal: 0n, ...values })
    .onConflictDoUpdate(values);
}

/** Any verifier event: the VerifierSet's record is the truth. */
const byId = async ({ event, context }: { event: { args: { verifierId: bigint }; block: { number: bigint } }; context: AnyContext }) =>
  refreshVerifier(context, event.args.verifierId, event.block.number);

export const settlementHandlers: Handlers = {
  "EpochSettlement:EpochSubmitted": async ({ event, context }) => {
    const { epoch: id, root, totalWeight, finalAt } = event.args;
    const values = { root, totalWeight, finalAt, submittedBlock: event.block.number, submittedAt: event.block.timestamp };
    await context.db
      .insert(epoch)
      .values({ epoch: id, ...blank, ...values })
      .onConflictDoUpdate(values);
  },
  "EpochSettlement:EpochFrozen": async ({ event, context }) => {
    const { epoch: id, conflictingRoot } = event.args;
    await context.db
      .insert(epoch)
      .values({ epoch: id, ...blank, frozen: true, conflictingRoot })
      .onConflictDoUpdate({ frozen: true, conflictingRoot });
  },
  "EpochSettlement:EpochResolved": async ({ event, context }) => {
    const { epoch: id, root, totalWeight } = event.args;
    const values = { resolved: true, root, totalWeight, finalAt: event.block.timestamp };
    await context.db
      .insert(epoch)
      .values({ epoch: id, ...blank, ...values })
      .onConflictDoUpdate(values);
  },
  "EpochSettlement:EpochFunded": async ({ event, context }) => {
    const { epoch: id, emission, inflation, bondingRate } = event.args;
    const values = { funded: true, emission, inflation, bondingRate };
    await context.db
      .insert(epoch)
      .values({ epoch: id, ...blank, ...values })
      .onConflictDoUpdate(values);
  },
  "EpochSettlement:RewardClaimed": async ({ event, context }) => {
    const { epoch: id, edgeId, reward, credited } = event.args;
    await context.db
      .insert(epoch)
      .values({ epoch: id, ...blank, claims: 1, claimedReward: reward })
      .onConflictDoUpdate((row) => ({ claims: row.claims + 1, claimedReward: row.claimedReward + reward }));
    await context.db
      .insert(edgeEpochReward)
      .values({ edgeId, epoch: id, reward, credited, block: event.block.number })
      .onConflictDoUpdate({ reward, credited });
  },
  "EpochSettlement:FaultReported": async ({ event, context }) => {
    const { edgeId, epoch: faultEpoch, kind, evidenceHash, reporter, slashed } = event.args;
    await context.db
      .insert(fault)
      .values({ id: logId(event), edgeId, epoch: faultEpoch, kind, evidenceHash, reporter, slashed, block: event.block.number })
      .onConflictDoNothing();
  },

  "VerifierSet:VerifierRegistered": byId,
  "VerifierSet:VerifierApproved": byId,
  "VerifierSet:VerifierBondIncreased": byId,
  "VerifierSet:VerifierBondWithdrawn": byId,
  "VerifierSet:VerifierEndpointChanged": byId,
  "VerifierSet:VerifierExitRequested": byId,
  "VerifierSet:VerifierKeyRotated": byId,
  "VerifierSet:VerifierRemoved": byId,
  "VerifierSet:VerifierSlashed": async ({ event, context }) => {
    await refreshVerifier(context, event.args.verifierId, event.block.number);
    await context.db.update(verifier, { id: event.args.verifierId }).set((row) => ({ slashedTotal: row.slashedTotal + event.args.amount }));
  },
};
