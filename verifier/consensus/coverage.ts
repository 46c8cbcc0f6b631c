// What this verifier could observe of an epoch. Its observation is evidence only where its
// challenges reached the edges, so before it signs one it counts, over the edges it scores (Active,
// with earning stake), the challenge slots it planned and those that produced a result:
//
//   planned  the slots of the edge's stored plan; an edge with no plan (the tick could not plan it:
//            Redis or this process was down, or the payer had no session) counts the slots a plan
//            would have had (`challenges.*` of the configuration);
//   ran      the planned slots with a recorded result, passed or failed. A failure after the retries
//            is the edge's doing and counts as evidence. A slot without a result never reached a
//            verdict on the edge: its job expired with the epoch while Redis or this process was
//            down, or it was dropped as inconclusive on the verifier's side (payment refused).
//
// coverage = ran / planned (1 when nothing was planned: no edge to score). Below
// `consensus.minCoverage` the verifier abstains: it signs no observation of the epoch, so the edges'
// scores come from the verifiers that did observe it, instead of a row of zeros for work it never
// checked. An abstention is written once, like an observation, and is final.
import type { ChallengeResult, ChallengeSpec } from "../challenges/types.ts";
import { PeerRequestError } from "../errors.ts";

/** An epoch's planned and ran challenge slots on this verifier (see the file comment). */
export interface EpochCoverage {
  planned: number;
  ran: number;
}

/** The slots a plan of `epoch` holds with `counts` (no audit in epoch 0: nothing before it to audit). */
export function plannedSlots(epoch: bigint, counts: { inference: number; latency: number; capacity: number; audit: number }): number {
  return counts.inference + counts.latency + counts.capacity + (epoch > 0n ? counts.audit : 0);
}

/** One edge's slots: its plan (or `expected` slots when it has none) and the plan's slots with a result. */
export function edgeCoverage(
  plan: readonly ChallengeSpec[] | undefined,
  results: readonly ChallengeResult[],
  expected: number,
): EpochCoverage {
  if (plan === undefined) return { planned: expected, ran: 0 };
  const ids = new Set(plan.map((s) => s.id.toLowerCase()));
  const ran = new Set(results.map((r) => r.id.toLowerCase()).filter((id) => ids.has(id)));
  return { planned: plan.length, ran: ran.size };
}

/** The fraction of the planned slots that ran, 1 when none was planned. */
export function coverageRatio(coverage: EpochCoverage): number {
  return coverage.planned === 0 ? 1 : coverage.ran / coverage.planned;
}

/** The refusal of a verifier that abstained from `epoch` (409 abstained, with its coverage). */
export function abstainedError(epoch: bigint, coverage: EpochCoverage, minCoverage: number): PeerRequestError {
  return new PeerRequestError(
    409,
    "abstained",
    `this verifier abstains from epoch ${epoch}: only ${coverage.ran} of its ${coverage.planned} planned challenges ran (below ${minCoverage}), so it observed nothing it could sign`,
    { details: { coverage } },
  );
}
