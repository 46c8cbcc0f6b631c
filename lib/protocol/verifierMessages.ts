// What verifiers sign for one another during the quorum attestation of an epoch (OCR-style), in
// the VerifierSet's EIP-712 domain ("Tideway Verifiers", {verifierDomain}). None of it goes
// on-chain; only the EpochAttestation the quorum agrees on does.
//
// - EpochObservation(uint256 epoch,bytes32 resultsHash,uint256 count): a verifier's scores of every
//   edge for a closed epoch, committed to by {observationResultsHash} over `count` results.
// - AttestationRequest(uint256 epoch,uint256 round,bytes32 root,uint256 totalWeight): what the
//   leader of (epoch, round) signs when it asks its peers to sign the EpochAttestation
//   (epoch, root, totalWeight), so that a peer can tell the request comes from that round's leader.
//
// The viem-based functions here are the reference and are enough for a handful of messages; the
// verifier checks many signatures with fastTypedData.ts's native codec (same digests, tested).
// This module does not load the native addon (it is exported by index.ts).
//
// Erasable TypeScript only (runs under Node's type stripping, see index.ts).
import { keccak_256 } from "@noble/hashes/sha3.js";
import { hashTypedData, recoverTypedDataAddress } from "viem";
import type { Address, Hex, LocalAccount, TypedDataDomain } from "viem";

import { QUALITY_ONE, writeWord } from "./merkle.ts";

// ---------------------------------------------------------------- types

/** `EpochObservation(uint256 epoch,bytes32 resultsHash,uint256 count)`. */
export const EPOCH_OBSERVATION_TYPES = {
  EpochObservation: [
    { name: "epoch", type: "uint256" },
    { name: "resultsHash", type: "bytes32" },
    { name: "count", type: "uint256" },
  ],
} as const;

/** `AttestationRequest(uint256 epoch,uint256 round,bytes32 root,uint256 totalWeight)`. */
export const ATTESTATION_REQUEST_TYPES = {
  AttestationRequest: [
    { name: "epoch", type: "uint256" },
    { name: "round", type: "uint256" },
    { name: "root", type: "bytes32" },
    { name: "totalWeight", type: "uint256" },
  ],
} as const;

/** One verifier's observation of one edge in an epoch (what becomes a leaf after the median). */
export interface EdgeObservation {
  edgeId: bigint;
  /** The edge's earning stake for the epoch (`EdgeStaking.edgeStake(edgeId).earning`), wei. */
  stake: bigint;
  /** Quality in [0, QUALITY_ONE]. */
  quality: bigint;
}

/** The signed message of an observation: {observationResultsHash} of its results and their number. */
export interface EpochObservation {
  epoch: bigint;
  resultsHash: Hex;
  count: bigint;
}

/** The message a round's leader signs when it asks peers to sign (epoch, root, totalWeight). */
export interface AttestationRequest {
  epoch: bigint;
  round: bigint;
  root: Hex;
  totalWeight: bigint;
}

const MAX_UINT256 = (1n << 256n) - 1n;

// ---------------------------------------------------------------- results hash

/** Compares two observations by edge id, ascending. */
function compareByEdgeId(a: { edgeId: bigint }, b: { edgeId: bigint }): number {
  return a.edgeId < b.edgeId ? -1 : a.edgeId > b.edgeId ? 1 : 0;
}

/**
 * `results` sorted by edge id ascending (the input itself when already sorted, a sorted copy
 * otherwise; the input is never reordered). Throws on a duplicate edge id, a value that is not a
 * uint256 or a quality above QUALITY_ONE.
 */
export function sortObservations<T extends EdgeObservation>(results: readonly T[]): readonly T[] {
  let sorted = true;
  for (let i = 0; i < results.length; i++) {
    const r = results[i];
    checkObservation(r);
    if (i > 0 && results[i - 1].edgeId >= r.edgeId) sorted = false;
  }
  const out = sorted ? results : [...results].sort(compareByEdgeId);
  for (let i = 1; i < out.length; i++) {
    if (out[i].edgeId === out[i - 1].edgeId) throw new Error(`duplicate edge id ${out[i].edgeId} in an observation`);
  }
  return out;
}

function checkObservation(r: EdgeObservation): void {
  if (r === null || typeof r !== "object") throw new TypeError("an edge observation must be an object { edgeId, stake, quality }");
  for (const field of ["edgeId", "stake", "quality"] as const) {
    const v = r[field];
    if (typeof v !== "bigint" || v < 0n || v > MAX_UINT256)
      throw new RangeError(`${field} ${String(v)} of edge ${String(r.edgeId)} is not a uint256 bigint`);
  }
  if (r.quality > QUALITY_ONE) throw new RangeError(`quality of edge ${r.edgeId} is ${r.quality}, above QUALITY_ONE (${QUALITY_ONE})`);
}

/**
 * keccak256 of the concatenation, sorted by edgeId ascending, of abi.encode(uint256 edgeId,
 * uint256 stake, uint256 quality) (96 bytes per result); keccak256 of nothing for no results. The
 * order of `results` does not matter. Throws on a duplicate edge id, a quality above QUALITY_ONE
 * or a value that is not a uint256.
 */
export function observationResultsHash(results: readonly EdgeObservation[]): Hex {
  const sorted = sortObservations(results);
  const hasher = keccak_256.create();
  // Absorbed in chunks of up to 1,024 results through one buffer (no buffer per result).
  const CHUNK = 1_024;
  const buffer = new Uint8Array(96 * Math.min(CHUNK, Math.max(1, sorted.length)));
  const view = new DataView(buffer.buffer);
  for (let start = 0; start < sorted.length; start += CHUNK) {
    const end = Math.min(sorted.length, start + CHUNK);
    for (let i = start; i < end; i++) {
      const r = sorted[i];
      const o = 96 * (i - start);
      writeWord(view, o, r.edgeId);
      writeWord(view, o + 32, r.stake);
      writeWord(view, o + 64, r.quality);
    }
    hasher.update(buffer.subarray(0, 96 * (end - start)));
  }
  return `0x${Buffer.from(hasher.digest()).toString("hex")}`;
}

/** The EpochObservation message that commits to `results` for `epoch`. */
export function epochObservation(epoch: bigint, results: readonly EdgeObservation[]): EpochObservation {
  return { epoch, resultsHash: observationResultsHash(results), count: BigInt(results.length) };
}

// ---------------------------------------------------------------- hashes, signatures (viem)

/** The digest a verifier signs for an observation message in the VerifierSet's `domain`. */
export function epochObservationDigest(domain: TypedDataDomain, message: EpochObservation): Hex {
  return hashTypedData({ domain, types: EPOCH_OBSERVATION_TYPES, primaryType: "EpochObservation", message: { ...message } });
}

/** A verifier key's signature of an observation message. */
export function signEpochObservation(account: LocalAccount, domain: TypedDataDomain, message: EpochObservation): Promise<Hex> {
  return account.signTypedData({ domain, types: EPOCH_OBSERVATION_TYPES, primaryType: "EpochObservation", message: { ...message } });
}

/** The address that signed an observation message (viem: laxer than OZ about v and s). */
export function recoverEpochObservationSigner(domain: TypedDataDomain, message: EpochObservation, signature: Hex): Promise<Address> {
  return recoverTypedDataAddress({
    domain,
    types: EPOCH_OBSERVATION_TYPES,
    primaryType: "EpochObservation",
    message: { ...message },
    signature,
  });
}

/** The digest a leader signs for an attestation request in the VerifierSet's `domain`. */
export function attestationRequestDigest(domain: TypedDataDomain, request: AttestationRequest): Hex {
  return hashTypedData({ domain, types: ATTESTATION_REQUEST_TYPES, primaryType: "AttestationRequest", message: { ...request } });
}

/** A leader's signature of an attestation request. */
export function signAttestationRequest(account: LocalAccount, domain: TypedDataDomain, request: AttestationRequest): Promise<Hex> {
  return account.signTypedData({ domain, types: ATTESTATION_REQUEST_TYPES, primaryType: "AttestationRequest", message: { ...request } });
}

/** The address that signed an attestation request (viem: laxer than OZ about v and s). */
export function recoverAttestationRequestSigner(domain: TypedDataDomain, request: AttestationRequest, signature: Hex): Promise<Address> {
  return recoverTypedDataAddress({
    domain,
    types: ATTESTATION_REQUEST_TYPES,
    primaryType: "AttestationRequest",
    message: { ...request },
    signature,
  });
}
