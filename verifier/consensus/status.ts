// Where this verifier stands with an ended epoch, for operators and tools (GET
// /tideway/v1/epochs/:epoch/status) instead of its logs:
//   unknown            not scored here yet
//   observed           this verifier scored the epoch and signed its observation
//   nothing_to_attest  the report of the epoch has total weight 0 (no edge had stake × quality > 0):
//                      nothing is attested or submitted for it
//   attested           this verifier signed (as leader or follower) a report with `root`
import type { Hex } from "viem";

import type { VerifierState } from "../state.ts";

export const EPOCH_STATES = ["unknown", "observed", "nothing_to_attest", "attested"] as const;
export type EpochState = (typeof EPOCH_STATES)[number];

export interface EpochStatus {
  epoch: string;
  state: EpochState;
  /** The attested report's Merkle root, null before. */
  root: Hex | null;
  /** The attested report's total weight (decimal), "0" when there is nothing to attest, null before. */
  totalWeight: string | null;
}

/** Marker name of an epoch whose report has no weight (set by the round that found it). */
export const emptyEpochMark = (epoch: bigint) => `empty-${epoch}`;

export async function epochStatus(state: Pick<VerifierState, "report" | "marked" | "observation">, epoch: bigint): Promise<EpochStatus> {
  const report = await state.report(epoch);
  if (report !== undefined)
    return { epoch: epoch.toString(), state: "attested", root: report.root as Hex, totalWeight: report.totalWeight };
  if (await state.marked(emptyEpochMark(epoch)))
    return { epoch: epoch.toString(), state: "nothing_to_attest", root: null, totalWeight: "0" };
  const observed = (await state.observation(epoch)) !== undefined;
  return { epoch: epoch.toString(), state: observed ? "observed" : "unknown", root: null, totalWeight: null };
}
