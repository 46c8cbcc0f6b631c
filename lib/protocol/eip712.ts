// The protocol's EIP-712 typed data, with viem: what verifiers sign (epoch and fault attestations,
// in the VerifierSet's domain), what a verifier's signing key signs to prove possession
// (VerifierKeyClaim, same domain), and what a dApp signs to pay an edge (Voucher, in the
// ComputeMarket's domain). The type strings below must match the contracts' typehashes byte for
// byte: see IVerifierSet.sol, IEpochSettlement.sol and IComputeMarket.sol.
//
// Erasable TypeScript only (runs under Node's type stripping, see index.ts).
import { getAddress, hashStruct, hashTypedData, recoverTypedDataAddress } from "viem";
import type { Address, Client, Hex, LocalAccount, TypedDataDomain } from "viem";
import { readContract } from "viem/actions";

// ---------------------------------------------------------------- types

/** `EpochAttestation(uint256 epoch,bytes32 root,uint256 totalWeight)`, IEpochSettlement. */
export const EPOCH_ATTESTATION_TYPES = {
  EpochAttestation: [
    { name: "epoch", type: "uint256" },
    { name: "root", type: "bytes32" },
    { name: "totalWeight", type: "uint256" },
  ],
} as const;

/** `FaultAttestation(uint256 edgeId,uint256 epoch,uint8 kind,bytes32 evidenceHash,address reporter)`, IEpochSettlement. */
export const FAULT_ATTESTATION_TYPES = {
  FaultAttestation: [
    { name: "edgeId", type: "uint256" },
    { name: "epoch", type: "uint256" },
    { name: "kind", type: "uint8" },
    { name: "evidenceHash", type: "bytes32" },
    { name: "reporter", type: "address" },
  ],
} as const;

/** `VerifierKeyClaim(address operator,address signingKey)`, IVerifierSet. */
export const VERIFIER_KEY_CLAIM_TYPES = {
  VerifierKeyClaim: [
    { name: "operator", type: "address" },
    { name: "signingKey", type: "address" },
  ],
} as const;

/** `Voucher(address payer,uint256 edgeId,uint256 sessionId,uint256 cumulativeAmount,uint256 expiry)`, IComputeMarket. */
export const VOUCHER_TYPES = {
  Voucher: [
    { name: "payer", type: "address" },
    { name: "edgeId", type: "uint256" },
    { name: "sessionId", type: "uint256" },
    { name: "cumulativeAmount", type: "uint256" },
    { name: "expiry", type: "uint256" },
  ],
} as const;

/** {IEpochSettlement.EpochAttestation}. */
export interface EpochAttestation {
  epoch: bigint;
  root: Hex;
  totalWeight: bigint;
}

/** {IEpochSettlement.FaultAttestation}; `kind` is a {FaultKind} value; `reporter` is paid the reporter's share of the slash. */
export interface FaultAttestation {
  edgeId: bigint;
  epoch: bigint;
  kind: number;
  evidenceHash: Hex;
  reporter: Address;
}

/** {IComputeMarket.Voucher}. */
export interface Voucher {
  payer: Address;
  edgeId: bigint;
  sessionId: bigint;
  cumulativeAmount: bigint;
  expiry: bigint;
}

/** {IEpochSettlement.FaultKind}: values as the contract's enum (the ABI encodes it as uint8). */
export const FaultKind = {
  WrongAnswer: 0,
  Unresponsive: 1,
  CapacityShortfall: 2,
  AuditFailure: 3,
} as const;
export type FaultKindName = keyof typeof FaultKind;
export type FaultKindValue = (typeof FaultKind)[FaultKindName];

/** {IEpochSettlement.FaultKind} names in declaration order (index = value). */
export const FAULT_KIND_NAMES = [
  "WrongAnswer",
  "Unresponsive",
  "CapacityShortfall",
  "AuditFailure",
] as const satisfies readonly FaultKindName[];

/** Name of a FaultKind value, `Unknown(n)` when out of range. */
export function faultKindName(value: bigint | number): FaultKindName | `Unknown(${string})` {
  const i = Number(value);
  return Number.isInteger(i) && i >= 0 && i < FAULT_KIND_NAMES.length ? FAULT_KIND_NAMES[i] : `Unknown(${value})`;
}

// ---------------------------------------------------------------- domains

const VERIFIER_DOMAIN_NAME = "Tideway Verifiers";
const MARKET_DOMAIN_NAME = "Tideway ComputeMarket";
const DOMAIN_VERSION = "1";

/** The domain every attestation and verifier key claim is signed in (IVerifierSet). */
export function verifierDomain(chainId: bigint | number, verifierSet: Address): TypedDataDomain {
  return { name: VERIFIER_DOMAIN_NAME, version: DOMAIN_VERSION, chainId: BigInt(chainId), verifyingContract: getAddress(verifierSet) };
}

/** The domain vouchers are signed in (IComputeMarket). */
export function marketDomain(chainId: bigint | number, market: Address): TypedDataDomain {
  return { name: MARKET_DOMAIN_NAME, version: DOMAIN_VERSION, chainId: BigInt(chainId), verifyingContract: getAddress(market) };
}

/** ERC-5267's `eip712Domain()`. */
const EIP5267_ABI = [
  {
    type: "function",
    name: "eip712Domain",
    stateMutability: "view",
    inputs: [],
    outputs: [
      { name: "fields", type: "bytes1" },
      { name: "name", type: "string" },
      { name: "version", type: "string" },
      { name: "chainId", type: "uint256" },
      { name: "verifyingContract", type: "address" },
      { name: "salt", type: "bytes32" },
      { name: "extensions", type: "uint256[]" },
    ],
  },
] as const;

/**
 * The EIP-712 domain a contract reports through ERC-5267 `eip712Domain()`, with only the fields
 * its `fields` bitmap declares (0x01 name, 0x02 version, 0x04 chainId, 0x08 verifyingContract,
 * 0x10 salt). Throws on extensions, which EIP-712 signing cannot honour.
 */
export async function readDomain(client: Client, address: Address): Promise<TypedDataDomain> {
  const [fields, name, version, chainId, verifyingContract, salt, extensions] = await readContract(client, {
    address,
    abi: EIP5267_ABI,
    functionName: "eip712Domain",
  });
  return domainFromFields({ fields, name, version, chainId, verifyingContract, salt, extensions });
}

/** Builds the domain that an ERC-5267 answer describes (see {readDomain}). */
export function domainFromFields(answer: {
  fields: Hex;
  name: string;
  version: string;
  chainId: bigint;
  verifyingContract: Address;
  salt: Hex;
  extensions: readonly bigint[];
}): TypedDataDomain {
  const bits = Number.parseInt(answer.fields.slice(2, 4) || "0", 16);
  if (answer.extensions.length > 0 || bits >= 0x20) {
    throw new Error(
      `unsupported EIP-712 domain: fields 0x${bits.toString(16).padStart(2, "0")}, extensions [${answer.extensions.join(", ")}]`,
    );
  }
  const domain: TypedDataDomain = {};
  if (bits & 0x01) domain.name = answer.name;
  if (bits & 0x02) domain.version = answer.version;
  if (bits & 0x04) domain.chainId = answer.chainId;
  if (bits & 0x08) domain.verifyingContract = getAddress(answer.verifyingContract);
  if (bits & 0x10) domain.salt = answer.salt;
  return domain;
}

// ---------------------------------------------------------------- struct hashes and digests

/** EIP-712 struct hash of an epoch attestation (the contract's `attestationStructHash`, `checkQuorum`'s input). */
export function epochAttestationStructHash(attestation: EpochAttestation): Hex {
  return hashStruct({ types: EPOCH_ATTESTATION_TYPES, primaryType: "EpochAttestation", data: { ...attestation } });
}

/** EIP-712 struct hash of a fault attestation (the contract's `faultStructHash`). */
export function faultStructHash(fault: FaultAttestation): Hex {
  return hashStruct({ types: FAULT_ATTESTATION_TYPES, primaryType: "FaultAttestation", data: { ...fault } });
}

/** EIP-712 struct hash of a verifier key claim. */
export function verifierKeyClaimStructHash(operator: Address, signingKey: Address): Hex {
  return hashStruct({ types: VERIFIER_KEY_CLAIM_TYPES, primaryType: "VerifierKeyClaim", data: { operator, signingKey } });
}

/** EIP-712 struct hash of a voucher. */
export function voucherStructHash(voucher: Voucher): Hex {
  return hashStruct({ types: VOUCHER_TYPES, primaryType: "Voucher", data: { ...voucher } });
}

/** Digest signed for an epoch attestation in `domain` (the VerifierSet's `hashTypedData(structHash)`). */
export function epochAttestationDigest(domain: TypedDataDomain, attestation: EpochAttestation): Hex {
  return hashTypedData({ domain, types: EPOCH_ATTESTATION_TYPES, primaryType: "EpochAttestation", message: { ...attestation } });
}

/** Digest signed for a voucher in `domain` (the market's `voucherDigest`). */
export function voucherDigest(domain: TypedDataDomain, voucher: Voucher): Hex {
  return hashTypedData({ domain, types: VOUCHER_TYPES, primaryType: "Voucher", message: { ...voucher } });
}

/** Digest a verifier key signs to claim itself for `operator` (the VerifierSet's `keyClaimDigest`). */
export function verifierKeyClaimDigest(domain: TypedDataDomain, operator: Address, signingKey: Address): Hex {
  return hashTypedData({ domain, types: VERIFIER_KEY_CLAIM_TYPES, primaryType: "VerifierKeyClaim", message: { operator, signingKey } });
}

// ---------------------------------------------------------------- signing

/** A verifier's signature of an epoch attestation, in the VerifierSet's `domain`. */
export function signEpochAttestation(account: LocalAccount, domain: TypedDataDomain, attestation: EpochAttestation): Promise<Hex> {
  return account.signTypedData({ domain, types: EPOCH_ATTESTATION_TYPES, primaryType: "EpochAttestation", message: { ...attestation } });
}

/** A verifier's signature of a fault attestation, in the VerifierSet's `domain`. */
export function signFault(account: LocalAccount, domain: TypedDataDomain, fault: FaultAttestation): Promise<Hex> {
  checkFaultKind(fault.kind);
  return account.signTypedData({ domain, types: FAULT_ATTESTATION_TYPES, primaryType: "FaultAttestation", message: { ...fault } });
}

/**
 * The proof of possession by which the signing key `key` consents to be `operator`'s verifier
 * key: its signature of VerifierKeyClaim(operator, key.address) in the VerifierSet's `domain`.
 */
export function signVerifierKeyClaim(key: LocalAccount, domain: TypedDataDomain, operator: Address): Promise<Hex> {
  return key.signTypedData({
    domain,
    types: VERIFIER_KEY_CLAIM_TYPES,
    primaryType: "VerifierKeyClaim",
    message: { operator: getAddress(operator), signingKey: key.address },
  });
}

/** A payer's (or its authorized signer's) signature of a voucher, in the market's `domain`. */
export function signVoucher(account: LocalAccount, domain: TypedDataDomain, voucher: Voucher): Promise<Hex> {
  return account.signTypedData({ domain, types: VOUCHER_TYPES, primaryType: "Voucher", message: { ...voucher } });
}

// ---------------------------------------------------------------- recovery

/** The address that signed `attestation` in `domain`. */
export function recoverEpochAttestationSigner(domain: TypedDataDomain, attestation: EpochAttestation, signature: Hex): Promise<Address> {
  return recoverTypedDataAddress({
    domain,
    types: EPOCH_ATTESTATION_TYPES,
    primaryType: "EpochAttestation",
    message: { ...attestation },
    signature,
  });
}

/** The address that signed `fault` in `domain`. */
export function recoverFaultSigner(domain: TypedDataDomain, fault: FaultAttestation, signature: Hex): Promise<Address> {
  return recoverTypedDataAddress({
    domain,
    types: FAULT_ATTESTATION_TYPES,
    primaryType: "FaultAttestation",
    message: { ...fault },
    signature,
  });
}

/** The key that signed a claim for (`operator`, `signingKey`) in `domain`. */
export function recoverVerifierKeyClaimSigner(
  domain: TypedDataDomain,
  operator: Address,
  signingKey: Address,
  signature: Hex,
): Promise<Address> {
  return recoverTypedDataAddress({
    domain,
    types: VERIFIER_KEY_CLAIM_TYPES,
    primaryType: "VerifierKeyClaim",
    message: { operator, signingKey },
    signature,
  });
}

/** The address that signed `voucher` in `domain`. */
export function recoverVoucherSigner(domain: TypedDataDomain, voucher: Voucher, signature: Hex): Promise<Address> {
  return recoverTypedDataAddress({ domain, types: VOUCHER_TYPES, primaryType: "Voucher", message: { ...voucher }, signature });
}

// ---------------------------------------------------------------- quorum signatures

/** One verifier's signature, for {packQuorumSignatures}. */
export interface SignerSignature {
  signer: Address;
  signature: Hex;
}

const SIGNATURE_65 = /^0x[0-9a-fA-F]{130}$/;
const ADDRESS = /^0x[0-9a-fA-F]{40}$/;

/**
 * Packs signatures the way {IVerifierSet-checkQuorum} reads them: 65 bytes (r, s, v) each,
 * concatenated in strictly increasing order of signer address (as uint160). Throws when a
 * signer appears twice (the contract would reject it: signers must be strictly ascending) or a
 * signature is not 65 bytes. Does not check that each signature is by its signer: see
 * {signEpochAttestationQuorum} or the recover functions.
 */
export function packQuorumSignatures(entries: readonly SignerSignature[]): Hex {
  const keyed = entries.map(({ signer, signature }) => {
    if (!ADDRESS.test(signer)) throw new Error(`${signer} is not an address`);
    if (!SIGNATURE_65.test(signature)) {
      throw new Error(
        `the signature of ${signer} is not 65 bytes (${(signature.length - 2) / 2} bytes): quorum signatures are packed r, s, v`,
      );
    }
    return { key: BigInt(signer), signature };
  });
  keyed.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  for (let i = 1; i < keyed.length; i++) {
    if (keyed[i].key === keyed[i - 1].key)
      throw new Error(`duplicate signer ${getAddress(`0x${keyed[i].key.toString(16).padStart(40, "0")}`)}`);
  }
  return `0x${keyed.map((k) => k.signature.slice(2)).join("")}`;
}

/** Splits packed quorum signatures into 65-byte signatures (inverse of the concatenation). */
export function unpackQuorumSignatures(packed: Hex): Hex[] {
  const body = packed.slice(2);
  if (!/^0x[0-9a-fA-F]*$/.test(packed) || body.length % 130 !== 0) {
    throw new Error(`packed signatures must be a whole number of 65-byte signatures (got ${body.length / 2} bytes)`);
  }
  const out: Hex[] = [];
  for (let i = 0; i < body.length; i += 130) out.push(`0x${body.slice(i, i + 130)}`);
  return out;
}

/** Every verifier key in `accounts` signs `attestation`; returns the packed signatures. */
export async function signEpochAttestationQuorum(
  accounts: readonly LocalAccount[],
  domain: TypedDataDomain,
  attestation: EpochAttestation,
): Promise<Hex> {
  const entries = await Promise.all(
    accounts.map(async (account) => ({ signer: account.address, signature: await signEpochAttestation(account, domain, attestation) })),
  );
  return packQuorumSignatures(entries);
}

/** Every verifier key in `accounts` signs `fault`; returns the packed signatures. */
export async function signFaultQuorum(accounts: readonly LocalAccount[], domain: TypedDataDomain, fault: FaultAttestation): Promise<Hex> {
  const entries = await Promise.all(
    accounts.map(async (account) => ({ signer: account.address, signature: await signFault(account, domain, fault) })),
  );
  return packQuorumSignatures(entries);
}

function checkFaultKind(kind: number): void {
  if (!Number.isInteger(kind) || kind < 0 || kind >= FAULT_KIND_NAMES.length) {
    throw new Error(`unknown fault kind ${kind}: expected one of ${FAULT_KIND_NAMES.map((n, i) => `${i} ${n}`).join(", ")}`);
  }
}
