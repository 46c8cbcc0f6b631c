// The native EIP-712 codecs of the verifier-to-verifier messages, one per VerifierSet domain
// (building one hashes its type strings and domain: done once, not per message).
import type { TypedDataDomain } from "viem";

import { FAULT_ATTESTATION_TYPES } from "../lib/protocol/eip712.ts";
import { createTypedDataCodec } from "../lib/protocol/fastTypedData.ts";
import { ATTESTATION_REQUEST_TYPES } from "../lib/protocol/verifierMessages.ts";
import { domainKey } from "./consensus/observation.ts";

const make = {
  request: (domain: TypedDataDomain) =>
    createTypedDataCodec({ domain, types: ATTESTATION_REQUEST_TYPES, primaryType: "AttestationRequest" }),
  fault: (domain: TypedDataDomain) => createTypedDataCodec({ domain, types: FAULT_ATTESTATION_TYPES, primaryType: "FaultAttestation" }),
};
const cache = new Map<string, unknown>();

function cached<K extends keyof typeof make>(kind: K, domain: TypedDataDomain): ReturnType<(typeof make)[K]> {
  const key = `${kind}:${domainKey(domain)}`;
  let codec = cache.get(key) as ReturnType<(typeof make)[K]> | undefined;
  if (codec === undefined) {
    codec = make[kind](domain) as ReturnType<(typeof make)[K]>;
    cache.set(key, codec);
  }
  return codec;
}

/** AttestationRequest(epoch, round, root, totalWeight): what a leader signs when it asks for signatures. */
export const requestCodec = (domain: TypedDataDomain) => cached("request", domain);
/** FaultAttestation(edgeId, epoch, kind, evidenceHash, reporter). */
export const faultCodec = (domain: TypedDataDomain) => cached("fault", domain);
