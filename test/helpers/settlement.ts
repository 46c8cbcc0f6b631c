// Fixtures for the settlement and verifier-set tests: verifiers registered and approved, epoch
// trees and EIP-712 types from lib/protocol (the module the services use), attestations signed
// by verifier keys through ethers wallets. Importing this file runs nothing.
import { StandardMerkleTree } from "@openzeppelin/merkle-tree";
import type { BaseWallet, TypedDataDomain, TypedDataField } from "ethers";

import {
  buildEpochTree,
  EPOCH_ATTESTATION_TYPES as EPOCH_ATTESTATION,
  FAULT_ATTESTATION_TYPES as FAULT_ATTESTATION,
  packQuorumSignatures,
  VERIFIER_KEY_CLAIM_TYPES as VERIFIER_KEY_CLAIM,
} from "../../lib/protocol/index.ts";
import { type Connection, type deployProtocol, keyClaimDomain, MIN_SELF_BOND, profile, signKeyClaim, TOKEN } from "./protocol.ts";

export type Env = Awaited<ReturnType<typeof deployProtocol>>;

export const QUALITY_ONE = 1_000_000n;
export const RATE_ONE = 10n ** 9n;
export const YEAR = 365n * 86_400n;

// lib/protocol's types are viem's readonly consts; ethers' signTypedData wants mutable arrays.
const forEthers = (types: object) => types as Record<string, TypedDataField[]>;
export const EPOCH_ATTESTATION_TYPES = forEthers(EPOCH_ATTESTATION);
export const FAULT_ATTESTATION_TYPES = forEthers(FAULT_ATTESTATION);
export const VERIFIER_KEY_CLAIM_TYPES = forEthers(VERIFIER_KEY_CLAIM);

export interface Attestation {
  epoch: bigint;
  root: string;
  totalWeight: bigint;
}
export interface Fault {
  edgeId: bigint;
  epoch: bigint;
  kind: number;
  evidenceHash: string;
  reporter: string;
}
export interface EdgeResult {
  edgeId: bigint;
  stake: bigint;
  quality: bigint;
}

/** Deterministic verifier keys, so that their address order is stable across runs. */
export function verifierKey(conn: Connection, index: number): BaseWallet {
  return new conn.ethers.Wallet(conn.ethers.id(`tideway-test-verifier-${index}`));
}

export async function verifierDomain(env: Pick<Env, "verifierSet">): Promise<TypedDataDomain> {
  return keyClaimDomain(env.verifierSet);
}

/**
 * Registers a verifier with signing key `key` through a fresh operator account, funded and bonding
 * the set's minimum, with the key's EIP-712 claim; approves it unless `approve` is false (the
 * deployer is the set's admin). Returns the operator.
 */
export async function registerVerifier(
  conn: Connection,
  env: Pick<Env, "admin" | "token" | "verifierSet">,
  key: BaseWallet,
  endpoint: string,
  approve = true,
) {
  const { ethers } = conn;
  const { minBond } = await env.verifierSet.parameters();
  const operator = ethers.Wallet.createRandom().connect(ethers.provider);
  await env.admin.sendTransaction({ to: operator.address, value: ethers.parseEther("1") });
  await env.token.transfer(operator.address, minBond);
  await env.token.connect(operator).approve(await env.verifierSet.getAddress(), minBond);
  const claim = await key.signTypedData(await verifierDomain(env), VERIFIER_KEY_CLAIM_TYPES, {
    operator: operator.address,
    signingKey: key.address,
  });
  await env.verifierSet.connect(operator).register(key.address, endpoint, minBond, claim);
  if (approve) await env.verifierSet.approve(await env.verifierSet.verifierCount());
  return operator;
}

/** Registers `count` verifiers (operators: fresh funded accounts) and approves them. */
export async function registerVerifiers(conn: Connection, env: Env, count: number) {
  const domain = await verifierDomain(env);
  const keys: BaseWallet[] = [];
  const operators = [];
  for (let i = 0; i < count; i++) {
    const key = verifierKey(conn, i);
    operators.push(await registerVerifier(conn, env, key, `http://127.0.0.1:${9100 + i}`));
    keys.push(key);
  }
  return { keys, operators, domain };
}

/** Signatures by `keys` over `attestation`, packed in increasing signer order as the contract wants. */
export async function signAttestation(domain: TypedDataDomain, keys: BaseWallet[], attestation: Attestation): Promise<string> {
  const signed = await Promise.all(
    keys.map(async (k) => ({ signer: k.address, sig: await k.signTypedData(domain, EPOCH_ATTESTATION_TYPES, attestation) })),
  );
  return packSorted(signed);
}

export async function signFault(domain: TypedDataDomain, keys: BaseWallet[], fault: Fault): Promise<string> {
  const signed = await Promise.all(
    keys.map(async (k) => ({ signer: k.address, sig: await k.signTypedData(domain, FAULT_ATTESTATION_TYPES, fault) })),
  );
  return packSorted(signed);
}

function packSorted(signed: { signer: string; sig: string }[]): string {
  return packQuorumSignatures(signed.map((s) => ({ signer: s.signer as `0x${string}`, signature: s.sig as `0x${string}` })));
}

/** The epoch's results tree (lib/protocol's StandardMerkleTree builder, the contract's leaf encoding). */
export function buildTree(epoch: bigint, results: EdgeResult[]) {
  if (results.some((r) => r.quality > QUALITY_ONE)) return buildMalformedTree(epoch, results);
  const tree = buildEpochTree(epoch, results);
  return { root: tree.root as string, totalWeight: tree.totalWeight, claimOf: (edgeId: bigint) => tree.claim(edgeId) };
}

/** A tree that lib/protocol rightly refuses to build (quality above 1), as a faulty quorum could sign. */
function buildMalformedTree(epoch: bigint, results: EdgeResult[]) {
  const tree = StandardMerkleTree.of(
    results.map((r) => [epoch, r.edgeId, r.stake, r.quality]),
    ["uint256", "uint256", "uint256", "uint256"],
  );
  const claimOf = (edgeId: bigint) => {
    for (const [i, v] of tree.entries()) {
      if (BigInt(v[1]) === edgeId) return { edgeId, stake: BigInt(v[2]), quality: BigInt(v[3]), proof: tree.getProof(i) };
    }
    throw new Error(`edge ${edgeId} not in the tree`);
  };
  return { root: tree.root, totalWeight: results.reduce((sum, r) => sum + r.stake * r.quality, 0n), claimOf };
}

/** Registers an edge for a fresh operator (allowlisted) with `selfBond` staked; returns its id. */
export async function addEdge(conn: Connection, env: Env, selfBond = MIN_SELF_BOND) {
  const { ethers } = conn;
  const operator = ethers.Wallet.createRandom().connect(ethers.provider);
  await env.admin.sendTransaction({ to: operator.address, value: ethers.parseEther("1") });
  await env.token.transfer(operator.address, selfBond);
  await env.token.connect(operator).approve(await env.staking.getAddress(), selfBond);
  await env.registry.setOperatorAllowlisted(operator.address, true);
  const key = ethers.Wallet.createRandom();
  await env.registry.connect(operator).registerEdge(key.address, profile(), await signKeyClaim(env.registry, operator.address, key));
  const edgeId = await env.registry.edgeCount();
  await env.staking.connect(operator).stake(edgeId, selfBond);
  return { edgeId, operator, key };
}

export { TOKEN };
