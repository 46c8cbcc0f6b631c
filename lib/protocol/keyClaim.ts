// Proof that an edge's signing key consents to serve a given operator (EdgeRegistry's
// SigningKeyClaim, EIP-712, in the registry's domain as `readDomain` reports it). The edge's key
// signs it; the operator submits it with registerEdge / rotateSigningKey. Without it anyone could
// claim (and so burn) another operator's key, since a key can be registered only once.
import { getAddress } from "viem";
import type { Address, Hex, LocalAccount, TypedDataDomain } from "viem";

/** `SigningKeyClaim(address operator,address signingKey)`, IEdgeRegistry. */
export const SIGNING_KEY_CLAIM_TYPES = {
  SigningKeyClaim: [
    { name: "operator", type: "address" },
    { name: "signingKey", type: "address" },
  ],
} as const;

/** Signs the claim by which `key` consents to serve `operator`, in the registry's `domain`. */
export function signKeyClaim(key: LocalAccount, domain: TypedDataDomain, operator: Address): Promise<Hex> {
  return key.signTypedData({
    domain,
    types: SIGNING_KEY_CLAIM_TYPES,
    primaryType: "SigningKeyClaim",
    message: { operator: getAddress(operator), signingKey: key.address },
  });
}
