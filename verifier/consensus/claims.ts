// Claiming a final epoch's rewards: every edge's leaf of the report this verifier signed, batched
// into claimMany transactions. Permissionless: the epoch's leader claims first, the others after
// `claims.fallbackDelayMs` plus their rank among the active verifiers times `claims.fallbackStepMs`
// (and a jitter), so that fallback claimers do not fire together; each batch is re-read on-chain
// just before it is sent and carries only the leaves still unclaimed.
import { encodeFunctionData } from "viem";

import { readInBatches } from "../../lib/chain/batchRead.ts";
import { TidewayError } from "../../lib/errors.ts";
import { epochSettlementAbi } from "../../lib/protocol/abis.ts";
import type { EpochAttestation } from "../../lib/protocol/eip712.ts";
import { buildEpochTreeFast } from "../../lib/protocol/merkle.ts";
import type { EdgeResult } from "../../lib/protocol/merkle.ts";
import { TxWouldRevertError } from "../chain/sender/index.ts";
import type { VerifierConfig } from "../config.ts";
import type { VerifierContext } from "../context.ts";
import type { StoredReport } from "../state.ts";

/**
 * Reverts of claimMany that no retry can change: the epoch's claims (or the staking credit window)
 * have closed, or the leaves do not verify against the settled attestation.
 */
export const FINAL_CLAIM_REVERTS: ReadonlySet<string> = new Set([
  "SettlementClaimsClosed",
  "StakingCreditWindowClosed",
  "SettlementAlreadyClaimed",
  "SettlementInvalidProof",
  "SettlementWrongAttestation",
]);

/** A claim of the epoch can never succeed (see FINAL_CLAIM_REVERTS): retrying only wastes gas and logs. */
export class ClaimNeverSucceedsError extends TidewayError {
  override name = "ClaimNeverSucceedsError";
  readonly epoch: bigint;
  readonly reason: string;
  constructor(epoch: bigint, reason: string, options?: { cause?: unknown }) {
    super("claim_never_succeeds", `the rewards of epoch ${epoch} can never be claimed: ${reason}`, options);
    this.epoch = epoch;
    this.reason = reason;
  }
}

export type ClaimOutcome = { status: "claimed"; claimed: number; edges: number } | { status: "closed" } | { status: "not-ours" };

/**
 * How long this verifier waits before claiming an epoch it did not lead: the leader at once, the
 * others `fallbackDelayMs + rank × fallbackStepMs` plus a jitter below `fallbackJitterMs`, where
 * `rank` is the verifier's place (0-based) among the active verifiers other than the leader.
 */
export function claimDelayMs(claims: VerifierConfig["claims"], rank: number | "leader", random: () => number = Math.random): number {
  if (rank === "leader") return 0;
  return claims.fallbackDelayMs + rank * claims.fallbackStepMs + Math.floor(random() * claims.fallbackJitterMs);
}

/** The stored report's leaves and tree (rebuilt: cheap next to a claim's gas). */
function reportTree(report: StoredReport) {
  const epoch = BigInt(report.epoch);
  const results: EdgeResult[] = report.results.map((r) => ({
    edgeId: BigInt(r.edgeId),
    stake: BigInt(r.stake),
    quality: BigInt(r.quality),
  }));
  const tree = buildEpochTreeFast(epoch, results);
  if (tree.root !== report.root) throw new Error(`the stored report of epoch ${epoch} rebuilds root ${tree.root}, not ${report.root}`);
  return { epoch, results, tree };
}

/**
 * Claims every unclaimed edge reward of a final epoch with claimMany, `claims.batchSize` claims a
 * transaction. An epoch whose claims have closed is skipped (counted, logged once at warn); a
 * revert that no retry can change throws {ClaimNeverSucceedsError}.
 */
export async function claimEpoch(ctx: VerifierContext, epoch: bigint): Promise<ClaimOutcome> {
  const report = await ctx.state.report(epoch);
  if (report === undefined) return { status: "not-ours" };
  const settlement = { address: ctx.addresses.settlement, abi: epochSettlementAbi } as const;
  const [final, open, record, commitment] = await Promise.all([
    ctx.client.readContract({ ...settlement, functionName: "isFinal", args: [epoch] }),
    ctx.client.readContract({ ...settlement, functionName: "claimsOpen", args: [epoch] }),
    ctx.client.readContract({ ...settlement, functionName: "epochRecord", args: [epoch] }),
    ctx.client.readContract({ ...settlement, functionName: "commitmentOf", args: [report.root, BigInt(report.totalWeight)] }),
  ]);
  if (!final) throw new Error(`epoch ${epoch} is not final yet`);
  if (!open) {
    ctx.metrics.claimsSkipped.inc({ reason: "closed" });
    ctx.logger.warn({ epoch: epoch.toString() }, "the epoch's claims have closed: its rewards are not claimed");
    return { status: "closed" };
  }
  if (record.commitment !== commitment) {
    ctx.logger.error(
      { epoch: epoch.toString(), root: report.root },
      "the epoch settled with another attestation than the one this verifier signed: not claiming",
    );
    return { status: "not-ours" };
  }
  const { tree, results } = reportTree(report);
  const attestation: EpochAttestation = { epoch, root: report.root, totalWeight: BigInt(report.totalWeight) };
  const unclaimed = async (leaves: EdgeResult[]) => {
    const claimed = await readInBatches(
      ctx.client,
      leaves.map((r) => ({ ...settlement, functionName: "claimed", args: [epoch, r.edgeId] })),
    );
    return leaves.filter((_r, i) => !claimed[i]);
  };
  const pending = await unclaimed(results);
  let count = 0;
  for (let start = 0; start < pending.length; start += ctx.config.claims.batchSize) {
    // Read again just before sending: another verifier may have claimed some of these meanwhile.
    const batch = await unclaimed(pending.slice(start, start + ctx.config.claims.batchSize));
    if (batch.length === 0) continue;
    let outcome: Awaited<ReturnType<typeof ctx.sender.send>>;
    try {
      outcome = await ctx.sender.send({
        key: `claim-${epoch}-${batch[0]!.edgeId}-${batch.length}`,
        isDone: async () => (await unclaimed(batch)).length === 0,
        build: async () => ({
          to: ctx.addresses.settlement,
          data: encodeFunctionData({
            abi: epochSettlementAbi,
            functionName: "claimMany",
            args: [attestation, (await unclaimed(batch)).map((r) => tree.claim(r.edgeId))],
          }),
        }),
      });
    } catch (err) {
      if (err instanceof TxWouldRevertError && err.errorName !== undefined && FINAL_CLAIM_REVERTS.has(err.errorName)) {
        ctx.metrics.claimsSkipped.inc({ reason: err.errorName });
        throw new ClaimNeverSucceedsError(epoch, err.reason, { cause: err });
      }
      throw err;
    }
    ctx.metrics.submissions.inc({ action: "claimMany", result: outcome.status });
    if (outcome.status === "reverted") throw new Error(`claimMany for epoch ${epoch} reverted (${outcome.hash})`);
    if (outcome.status === "confirmed") count += batch.length;
  }
  ctx.logger.info({ epoch: epoch.toString(), claimed: count, edges: results.length }, "epoch rewards claimed");
  return { status: "claimed", claimed: count, edges: results.length };
}
