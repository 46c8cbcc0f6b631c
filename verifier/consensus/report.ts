// The report of an epoch, computed deterministically from a set of signed observations (OCR style,
// see the verifier design): the leader computes it to propose an EpochAttestation, and every peer
// recomputes it from the same observations before it signs.
//
// Per edge, the leaf's stake and quality are the LOWER median (element ⌊(m-1)/2⌋ of the m values
// sorted ascending; stake and quality separately) over ALL m observations, an observation that
// lacks the edge counting as (0, 0). So an edge is in the tree only when a strict majority of the
// observations (⌊m/2⌋ + 1 of them) report it with a non-zero stake and a non-zero quality, and while
// fewer than half of the observations are wrong each median stays between the smallest and the
// largest of the others. Edges whose stake × quality is 0 are left out of the tree; totalWeight is
// Σ stake × quality; when it is 0 there is nothing to attest (the settlement rejects a zero weight).
//
// The input is a SET: the observations are processed in signer order, so any permutation gives the
// same report. Anything wrong with one observation is an error naming it ({ReportError}) rather than
// being skipped, so two honest verifiers given the same set either both get the same report or both
// refuse it; the leader filters what it gathered with {verifyObservation} before building.
import type { Address, Hex, TypedDataDomain } from "viem";

import { TidewayError } from "../../lib/errors.ts";
import { createTypedDataCodec } from "../../lib/protocol/fastTypedData.ts";
import type { TypedDataCodec } from "../../lib/protocol/fastTypedData.ts";
import { EPOCH_ATTESTATION_TYPES } from "../../lib/protocol/eip712.ts";
import type { EpochAttestation } from "../../lib/protocol/eip712.ts";
import { buildEpochTreeFast } from "../../lib/protocol/merkle.ts";
import type { EdgeResult, FastEpochTree } from "../../lib/protocol/merkle.ts";
import { sortObservations } from "../../lib/protocol/verifierMessages.ts";
import type { EdgeObservation } from "../../lib/protocol/verifierMessages.ts";

import { domainKey, InvalidObservationError, observationCodec, verifyObservation } from "./observation.ts";
import type { SignedObservation } from "./observation.ts";

/** What {buildReport} takes. */
export interface ReportInput {
  epoch: bigint;
  /** The signed observations (a set: order does not matter). */
  observations: readonly SignedObservation[];
  /** How many distinct valid signers are needed (VerifierSet.quorum()). */
  quorum: number;
  /** Signing keys of the active verifiers when the epoch is attested. */
  activeSigners: readonly Address[];
  /** The VerifierSet's EIP-712 domain ({verifierDomain}). */
  domain: TypedDataDomain;
}

/** An epoch's report. */
export interface EpochReport {
  /** What to sign and submit; null when the total weight is 0 (nothing to attest). */
  attestation: EpochAttestation | null;
  /** The leaves: every edge with stake × quality > 0, sorted by edge id ascending. */
  results: EdgeResult[];
  /** The results tree (undefined when there are no leaves). */
  tree: FastEpochTree | undefined;
  /** The signers of the observations used, ascending (as uint160), checksummed. */
  signers: Address[];
}

/** Why a set of observations gives no report. */
export type ReportProblem =
  | "bad_input" // the epoch, quorum or active signers themselves are malformed
  | "duplicate_signer" // two observations by one signer
  | "wrong_epoch" // an observation of another epoch
  | "inactive_signer" // an observation by a key that is not an active verifier
  | "invalid_observation" // malformed results, a signature OZ rejects, or one that recovers another key
  | "below_quorum"; // fewer observations than the quorum

/** A set of observations from which no report may be built; `signer` names the culprit when there is one. */
export class ReportError extends TidewayError {
  override name = "ReportError";
  readonly problem: ReportProblem;
  readonly signer: Address | undefined;
  constructor(problem: ReportProblem, signer: Address | undefined, message: string, options?: ErrorOptions) {
    super(problem, message, options);
    this.problem = problem;
    this.signer = signer;
  }
}

/** Checks every observation of `input` (see the file comment) and returns them in signer order, with their sorted results. */
export function checkObservations(input: ReportInput): { signers: Address[]; sorted: (readonly EdgeObservation[])[] } {
  const { epoch, observations, quorum, activeSigners, domain } = input;
  if (typeof epoch !== "bigint" || epoch < 0n)
    throw new ReportError("bad_input", undefined, `epoch ${String(epoch)} is not a uint256 bigint`);
  if (!Number.isSafeInteger(quorum) || quorum < 1)
    throw new ReportError("bad_input", undefined, `quorum must be a positive integer, got ${String(quorum)}`);
  if (!Array.isArray(observations)) throw new ReportError("bad_input", undefined, "observations must be an array");
  const active = new Set<string>();
  for (const s of activeSigners) {
    if (typeof s !== "string" || !/^0x[0-9a-fA-F]{40}$/.test(s))
      throw new ReportError("bad_input", undefined, `active signer ${String(s)} is not an address`);
    active.add(s.toLowerCase());
  }
  // Signer order (uint160 ascending = lower-case hex order), then the cheap checks, then signatures.
  const ordered = observations.map((o) => {
    if (o === null || typeof o !== "object" || typeof o.signer !== "string" || !/^0x[0-9a-fA-F]{40}$/.test(o.signer)) {
      throw new ReportError("invalid_observation", undefined, `an observation has no valid signer address (${String(o?.signer)})`);
    }
    return { key: o.signer.toLowerCase(), o };
  });
  ordered.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  for (let i = 1; i < ordered.length; i++) {
    if (ordered[i].key === ordered[i - 1].key)
      throw new ReportError("duplicate_signer", ordered[i].o.signer, `two observations by ${ordered[i].o.signer}`);
  }
  for (const { key, o } of ordered) {
    if (o.epoch !== epoch)
      throw new ReportError("wrong_epoch", o.signer, `the observation of ${o.signer} is of epoch ${String(o.epoch)}, not ${epoch}`);
    if (!active.has(key)) throw new ReportError("inactive_signer", o.signer, `${o.signer} is not an active verifier signing key`);
  }
  if (ordered.length < quorum) {
    throw new ReportError(
      "below_quorum",
      undefined,
      `${ordered.length} observation(s) from distinct active verifiers, quorum is ${quorum}`,
    );
  }
  const codec = observationCodec(domain);
  const signers: Address[] = [];
  const sorted: (readonly EdgeObservation[])[] = [];
  for (const { o } of ordered) {
    try {
      // Sorted once here (o.results itself when already sorted); verifyObservation then only checks the order.
      let results: readonly EdgeObservation[];
      try {
        results = sortObservations(o.results);
      } catch (err) {
        throw new InvalidObservationError("results", o.signer, `the observation of ${o.signer} is malformed: ${(err as Error).message}`, {
          cause: err,
        });
      }
      signers.push(verifyObservation(codec, { ...o, results: results as EdgeObservation[] }));
      sorted.push(results);
    } catch (err) {
      if (err instanceof InvalidObservationError) throw new ReportError("invalid_observation", o.signer, err.message, { cause: err });
      throw err;
    }
  }
  return { signers, sorted };
}

/** The lower median of `values` (sorts it in place). */
function lowerMedian(values: bigint[]): bigint {
  values.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return values[(values.length - 1) >> 1];
}

/**
 * The per-edge lower medians over `lists` (each sorted by edge id, no duplicates): every edge
 * present in some list, an absent edge counting as (0, 0); only edges with stake × quality > 0
 * are returned, ascending by edge id.
 */
export function medianResults(lists: readonly (readonly EdgeObservation[])[]): EdgeResult[] {
  const m = lists.length;
  if (m === 0) return [];
  const heads = new Array<number>(m).fill(0);
  const stakes = new Array<bigint>(m);
  const qualities = new Array<bigint>(m);
  const out: EdgeResult[] = [];
  for (;;) {
    // The smallest edge id at the heads (an m-way merge; m is a handful of verifiers).
    let next: bigint | undefined;
    for (let j = 0; j < m; j++) {
      const h = heads[j];
      if (h < lists[j].length && (next === undefined || lists[j][h].edgeId < next)) next = lists[j][h].edgeId;
    }
    if (next === undefined) return out;
    for (let j = 0; j < m; j++) {
      const h = heads[j];
      const list = lists[j];
      if (h < list.length && list[h].edgeId === next) {
        stakes[j] = list[h].stake;
        qualities[j] = list[h].quality;
        heads[j] = h + 1;
      } else {
        stakes[j] = 0n;
        qualities[j] = 0n;
      }
    }
    const stake = lowerMedian(stakes);
    const quality = lowerMedian(qualities);
    if (stake !== 0n && quality !== 0n) out.push({ edgeId: next, stake, quality });
  }
}

/**
 * The report of `input.epoch` from `input.observations` (see the file comment). Throws
 * {ReportError} naming the problem (and the signer, when one observation is at fault).
 */
export function buildReport(input: ReportInput): EpochReport {
  const { signers, sorted } = checkObservations(input);
  const results = medianResults(sorted);
  if (results.length === 0) return { attestation: null, results, tree: undefined, signers };
  const tree = buildEpochTreeFast(input.epoch, results);
  return { attestation: tree.attestation, results, tree, signers };
}

// ---------------------------------------------------------------- attestation signing

const attestationCodecs = new Map<string, TypedDataCodec<EpochAttestation>>();

/** The native codec of EpochAttestation in the VerifierSet's `domain` (created once per domain). */
export function attestationCodec(domain: TypedDataDomain): TypedDataCodec<EpochAttestation> {
  const key = domainKey(domain);
  let codec = attestationCodecs.get(key);
  if (codec === undefined) {
    codec = createTypedDataCodec({ domain, types: EPOCH_ATTESTATION_TYPES, primaryType: "EpochAttestation" });
    attestationCodecs.set(key, codec);
  }
  return codec;
}

/** A verifier key's signature of `attestation` (native; identical to {signEpochAttestation}'s). */
export function signAttestation(privateKey: Hex, domain: TypedDataDomain, attestation: EpochAttestation): Hex {
  return attestationCodec(domain).sign(privateKey, attestation);
}
