// Claiming a final epoch's rewards: every edge's leaf of the report this verifier signed, batched
// into claimMany transactions. Permissionless: the epoch's leader claims first, the others after
// `claims.fallbackDelayMs`, and leaves someone else claimed are skipped.
import { encodeFunctionData } from "viem";

import { epochSettlementAbi } from "../../lib/protocol/abis.ts";
import type { EpochAttestation } from "../../lib/protocol/eip712.ts";
import { buildEpochTreeFast } from "../../lib/protocol/merkle.ts";
import type { EdgeResult } from "../../lib/protocol/merkle.ts";
import type { VerifierContext } from "../context.ts";
import type { StoredReport } from "../state.ts";

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
 * transaction. Returns how many edges this call claimed.
 */
export async function claimEpoch(ctx: VerifierContext, epoch: bigint): Promise<number> {
  const report = await ctx.state.report(epoch);
  if (report === undefined) return 0;
  const settlement = { address: ctx.addresses.settlement, abi: epochSettlementAbi } as const;
  const [final, record, commitment] = await Promise.all([
    ctx.client.readContract({ ...settlement, functionName: "isFinal", args: [epoch] }),
    ctx.client.readContract({ ...settlement, functionName: "epochRecord", args: [epoch] }),
    ctx.client.readContract({ ...settlement, functionName: "commitmentOf", args: [report.root, BigInt(report.totalWeight)] }),
  ]);
  if (!final) throw new Error(`epoch ${epoch} is not final yet`);
  if (record.commitment !== commitment) {
    ctx.logger.error(
      { epoch: epoch.toString(), root: report.root },
      "the epoch settled with another attestation than the one this verifier signed: not claiming",
    );
    return 0;
  }
  const { tree, results } = reportTree(report);
  const attestation: EpochAttestation = { epoch, root: report.root, totalWeight: BigInt(report.totalWeight) };
  const claimedNow = await Promise.all(
    results.map((r) => ctx.client.readContract({ ...settlement, functionName: "claimed", args: [epoch, r.edgeId] })),
  );
  const pending = results.filter((_r, i) => !claimedNow[i]);
  let count = 0;
  for (let start = 0; start < pending.length; start += ctx.config.claims.batchSize) {
    const batch = pending.slice(start, start + ctx.config.claims.batchSize);
    const claims = batch.map((r) => tree.claim(r.edgeId));
    const outcome = await ctx.sender.send({
      key: `claim-${epoch}-${batch[0]!.edgeId}-${batch.length}`,
      isDone: async () =>
        (
          await Promise.all(batch.map((r) => ctx.client.readContract({ ...settlement, functionName: "claimed", args: [epoch, r.edgeId] })))
        ).every(Boolean),
      build: async () => ({
        to: ctx.addresses.settlement,
        data: encodeFunctionData({ abi: epochSettlementAbi, functionName: "claimMany", args: [attestation, claims] }),
      }),
    });
    ctx.metrics.submissions.inc({ action: "claimMany", result: outcome.status });
    if (outcome.status === "reverted") throw new Error(`claimMany for epoch ${epoch} reverted (${outcome.hash})`);
    if (outcome.status === "confirmed") count += batch.length;
  }
  ctx.logger.info({ epoch: epoch.toString(), claimed: count, edges: results.length }, "epoch rewards claimed");
  return count;
}
