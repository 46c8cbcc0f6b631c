// Where this verifier stands with an ended epoch, for operators and tools (GET
// /tideway/v1/epochs/:epoch/status) instead of its logs:
//   unknown            not scored here yet
//   observed           this verifier scored the epoch and signed its observation
//   abstained          too few of its challenges of the epoch ran (consensus/coverage.ts): it signed no
//                      observation, the verifiers that observed the epoch decide
//   skipped            a round this verifier led found that so many verifiers abstained that no quorum of
//                      observations can exist: nothing is attested, no edge is scored
//   nothing_to_attest  the report of the epoch has total weight 0 (no edge had stake × quality > 0):
//                      nothing is attested or submitted for it
//   attested           this verifier signed (as leader or follower) a report with `root`
import type { Hex } from "viem";

import type { VerifierState } from "../state.ts";
import type { EpochCoverage } from "./coverage.ts";

export const EPOCH_STATES = ["unknown", "observed", "abstained", "skipped", "nothing_to_attest", "attested"] as const;
export type EpochState = (typeof EPOCH_STATES)[number];

export interface EpochStatus {
  epoch: string;
  state: EpochState;
  /** The attested report's Merkle root, null before. */
  root: Hex | null;
  /** The attested report's total weight (decimal), "0" when there is nothing to attest, null before. */
  totalWeight: string | null;
  /** This verifier's planned and ran challenge slots of the epoch, once it scored it (null before). */
  coverage: EpochCoverage | null;
}

/** Marker name of an epoch whose report has no weight (set by the round that found it). */
export const emptyEpochMark = (epoch: bigint) => `empty-${epoch}`;

/** Marker name of an epoch too few verifiers observed for a quorum (set by the round that found it). */
export const skippedEpochMark = (epoch: bigint) => `skipped-${epoch}`;

export async function epochStatus(state: Pick<VerifierState, "report" | "marked" | "observation">, epoch: bigint): Promise<EpochStatus> {
  const recorded = (await state.observation(epoch)) as { abstained?: boolean; coverage?: EpochCoverage } | undefined;
  const base = { epoch: epoch.toString(), coverage: recorded?.coverage ?? null };
  const report = await state.report(epoch);
  if (report !== undefined) return { ...base, state: "attested", root: report.root as Hex, totalWeight: report.totalWeight };
  if (await state.marked(emptyEpochMark(epoch))) return { ...base, state: "nothing_to_attest", root: null, totalWeight: "0" };
  if (await state.marked(skippedEpochMark(epoch))) return { ...base, state: "skipped", root: null, totalWeight: null };
  const own = recorded === undefined ? "unknown" : recorded.abstained === true ? "abstained" : "observed";
  return { ...base, state: own, root: null, totalWeight: null };
}
