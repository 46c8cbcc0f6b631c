// Proof that an edge's signing key consents to serve a given operator (EdgeRegistry's
// SigningKeyClaim, EIP-712). The edge's key signs it; the operator submits it with
// registerEdge / rotateSigningKey. Without it anyone could claim (and so burn) another
// operator's key, since a key can be registered only once.
import type { TypedDataDomain, TypedDataField } from "ethers";
import { Wallet } from "ethers";

/** The EIP-712 types of EdgeRegistry's SigningKeyClaim (must match the contract's typehash). */
export const SIGNING_KEY_CLAIM_TYPES: Record<string, TypedDataField[]> = {
  SigningKeyClaim: [
    { name: "operator", type: "address" },
    { name: "signingKey", type: "address" },
  ],
};

/** The name of the environment variable that can hold an edge signing key for the tasks. */
export const EDGE_SIGNING_KEY_ENV = "TIDEWAY_EDGE_SIGNING_KEY";

/** Reads the registry's EIP-712 domain (name, version, chain id, verifying contract). */
export async function keyClaimDomain(registry: {
  eip712Domain(): Promise<[string, string, string, bigint, string, string, bigint[]]>;
}): Promise<TypedDataDomain> {
  const [, name, version, chainId, verifyingContract] = await registry.eip712Domain();
  return { name, version, chainId, verifyingContract };
}

/** Signs the claim `signingKey` gives `operator` with the signing key's wallet. */
export async function signKeyClaim(domain: TypedDataDomain, operator: string, key: Wallet): Promise<string> {
  return key.signTypedData(domain, SIGNING_KEY_CLAIM_TYPES, { operator, signingKey: key.address });
}
