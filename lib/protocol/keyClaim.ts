// Proof that an edge's signing key consents to serve a given operator (EdgeRegistry's
// SigningKeyClaim, EIP-712). The edge's key signs it; the operator submits it with
// registerEdge / rotateSigningKey. Without it anyone could claim (and so burn) another
// operator's key, since a key can be registered only once.
import type { BaseWallet, TypedDataDomain, TypedDataField } from "ethers";

/** The EIP-712 types of EdgeRegistry's SigningKeyClaim (must match the contract's typehash). */
export const SIGNING_KEY_CLAIM_TYPES: Record<string, TypedDataField[]> = {
  SigningKeyClaim: [
    { name: "operator", type: "address" },
    { name: "signingKey", type: "address" },
  ],
};

/** The name of the environment variable that can hold an edge signing key for the tasks. */
export const EDGE_SIGNING_KEY_ENV = "TIDEWAY_EDGE_SIGNING_KEY";

/** The registry's EIP-712 domain as it reports it (ERC-5267): only the fields it declares. */
export async function keyClaimDomain(registry: {
  eip712Domain(): Promise<[string, string, string, bigint, string, string, bigint[]]>;
}): Promise<TypedDataDomain> {
  const [fields, name, version, chainId, verifyingContract, salt] = await registry.eip712Domain();
  const bits = Number(fields);
  const domain: TypedDataDomain = {};
  if (bits & 0x01) domain.name = name;
  if (bits & 0x02) domain.version = version;
  if (bits & 0x04) domain.chainId = chainId;
  if (bits & 0x08) domain.verifyingContract = verifyingContract;
  if (bits & 0x10) domain.salt = salt;
  return domain;
}

/** Signs the claim by which `key` consents to serve `operator`, in the registry's `domain`. */
export async function signKeyClaim(domain: TypedDataDomain, operator: string, key: BaseWallet): Promise<string> {
  return key.signTypedData(domain, SIGNING_KEY_CLAIM_TYPES, { operator, signingKey: key.address });
}
