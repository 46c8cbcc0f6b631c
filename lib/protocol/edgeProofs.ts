// What an edge signs (EIP-712, in the "Tideway Edge" domain whose verifyingContract is the
// EdgeRegistry where the edge's signing key is registered) and the leaf encoding of its per-epoch
// served-usage log. Shared by the edge (which signs and commits) and the verifier (which challenges,
// recovers and audits): both sides must agree byte for byte, so every format lives here.
//
// - ServiceReceipt: signed for every request that carries a challenge nonce (header
//   {NONCE_HEADER}); binds the answer (response hash) to the verifier's fresh nonce, the request
//   bytes and the epoch, under the edge's registered key.
// - UsageRoot: the edge's commitment to one closed epoch's usage log (Merkle root and count).
// - RouterHello: the edge's answer to the router's handshake challenge.
// - Usage leaf: an OpenZeppelin StandardMerkleTree leaf over {USAGE_LEAF_ENCODING}. Two builders
//   give the same usage tree: {buildUsageTree} (the library: the reference, 27 s for 10^5 entries)
//   and {buildUsageTreeFast} (flat arrays, merkle.ts's {buildStandardTreeFromLeafHashes}), which
//   the edge uses.
//
// Erasable TypeScript only (runs under Node's type stripping, see index.ts).
import { keccak_256 } from "@noble/hashes/sha3.js";
import { StandardMerkleTree } from "@openzeppelin/merkle-tree";
import { encodeAbiParameters, getAddress, keccak256, recoverTypedDataAddress, stringToBytes } from "viem";
import type { Address, Hex, LocalAccount, TypedDataDomain } from "viem";

import { keccak256Short } from "./keccak.ts";
import { buildStandardTreeFromLeafHashes, writeWord } from "./merkle.ts";
import type { StandardTreeLayout } from "./merkle.ts";

// ---------------------------------------------------------------- constants and types

/** Name of the domain every edge signature is made in. */
export const EDGE_DOMAIN_NAME = "Tideway Edge";
export const EDGE_DOMAIN_VERSION = "1";

/** HTTP header a challenger puts its 32-byte nonce in (0x-prefixed hex, 64 digits). */
export const NONCE_HEADER = "x-tideway-nonce";

/** The nonce logged for a request that carried none. */
export const ZERO_NONCE: Hex = `0x${"00".repeat(32)}`;

/** The root committed for an epoch in which the edge served nothing. */
export const EMPTY_USAGE_ROOT: Hex = `0x${"00".repeat(32)}`;

/** `ServiceReceipt(uint256 edgeId,uint256 epoch,bytes32 nonce,bytes32 requestHash,bytes32 responseHash,uint32 promptTokens,uint32 completionTokens)`. */
export const SERVICE_RECEIPT_TYPES = {
  ServiceReceipt: [
    { name: "edgeId", type: "uint256" },
    { name: "epoch", type: "uint256" },
    { name: "nonce", type: "bytes32" },
    { name: "requestHash", type: "bytes32" },
    { name: "responseHash", type: "bytes32" },
    { name: "promptTokens", type: "uint32" },
    { name: "completionTokens", type: "uint32" },
  ],
} as const;

/** `UsageRoot(uint256 edgeId,uint256 epoch,bytes32 root,uint256 count)`. */
export const USAGE_ROOT_TYPES = {
  UsageRoot: [
    { name: "edgeId", type: "uint256" },
    { name: "epoch", type: "uint256" },
    { name: "root", type: "bytes32" },
    { name: "count", type: "uint256" },
  ],
} as const;

/** `RouterHello(uint256 edgeId,bytes32 nonce)`: the edge's answer to a router's handshake challenge. */
export const ROUTER_HELLO_TYPES = {
  RouterHello: [
    { name: "edgeId", type: "uint256" },
    { name: "nonce", type: "bytes32" },
  ],
} as const;

/**
 * StandardMerkleTree leaf encoding of a usage entry:
 * `[epoch, index, nonce, sessionId, promptTokens, completionTokens, requestHash, responseHash]`.
 */
export const USAGE_LEAF_ENCODING = ["uint256", "uint256", "bytes32", "uint256", "uint32", "uint32", "bytes32", "bytes32"] as const;

/** What the edge signs for a request that carried a nonce. */
export interface ServiceReceipt {
  edgeId: bigint;
  epoch: bigint;
  nonce: Hex;
  requestHash: Hex;
  responseHash: Hex;
  promptTokens: number;
  completionTokens: number;
}

/** One served request in the usage log of `epoch`, at position `index` (dense from 0). */
export interface UsageEntry {
  epoch: bigint;
  index: bigint;
  /** The request's challenge nonce, {ZERO_NONCE} when it carried none. */
  nonce: Hex;
  /** The paying session, 0 when the request was unpaid. */
  sessionId: bigint;
  promptTokens: number;
  completionTokens: number;
  requestHash: Hex;
  responseHash: Hex;
}

/** An edge's signed commitment to a closed epoch's usage log. */
export interface UsageCommitment {
  edgeId: bigint;
  epoch: bigint;
  /** StandardMerkleTree root, {EMPTY_USAGE_ROOT} when `count` is 0. */
  root: Hex;
  count: bigint;
  /** The edge signing key's signature of UsageRoot(edgeId, epoch, root, count). */
  signature: Hex;
}

/** The leaf values of a usage entry, in {USAGE_LEAF_ENCODING} order (what StandardMerkleTree takes). */
export type UsageLeaf = [bigint, bigint, Hex, bigint, number, number, Hex, Hex];

// ---------------------------------------------------------------- domain and hashes

/** The domain edge signatures are made in: verifyingContract is the EdgeRegistry holding the edge's key. */
export function edgeDomain(chainId: bigint | number, registry: Address): TypedDataDomain {
  return { name: EDGE_DOMAIN_NAME, version: EDGE_DOMAIN_VERSION, chainId: BigInt(chainId), verifyingContract: getAddress(registry) };
}

/** keccak256 of the exact request body bytes (as received, before any parsing). */
export function requestHash(body: Uint8Array | string): Hex {
  return keccak256(typeof body === "string" ? stringToBytes(body) : body);
}

/** keccak256(utf8(completion text)): the response hash of a chat completion (streamed or not). */
export function chatResponseHash(text: string): Hex {
  return keccak256(stringToBytes(text));
}

/** keccak256(utf8(JSON.stringify(vectors))): the response hash of an embeddings answer. */
export function embeddingsResponseHash(vectors: readonly (readonly number[])[]): Hex {
  return keccak256(stringToBytes(JSON.stringify(vectors)));
}

/** Whether `value` is a 0x-prefixed 32-byte hex string (a valid nonce header). */
export function isNonce(value: unknown): value is Hex {
  return typeof value === "string" && /^0x[0-9a-fA-F]{64}$/.test(value);
}

// ---------------------------------------------------------------- usage leaves and proofs

/** The StandardMerkleTree values of `entry`. */
export function usageLeaf(entry: UsageEntry): UsageLeaf {
  return [
    entry.epoch,
    entry.index,
    entry.nonce,
    entry.sessionId,
    entry.promptTokens,
    entry.completionTokens,
    entry.requestHash,
    entry.responseHash,
  ];
}

/** Leaf hash of `entry`: keccak256(bytes.concat(keccak256(abi.encode(...leaf)))), as StandardMerkleTree. */
export function usageLeafHash(entry: UsageEntry): Hex {
  const encoded = encodeAbiParameters(
    USAGE_LEAF_ENCODING.map((type) => ({ type })),
    usageLeaf(entry),
  );
  return keccak256(keccak256(encoded, "bytes"));
}

/** Builds the usage tree of `entries` (at least one) with @openzeppelin/merkle-tree. */
export function buildUsageTree(entries: readonly UsageEntry[]): StandardMerkleTree<UsageLeaf> {
  return StandardMerkleTree.of(entries.map(usageLeaf), [...USAGE_LEAF_ENCODING]);
}

/** A usage tree built by {buildUsageTreeFast}: leaf `i` is entry `i` of the input. */
export type FastUsageTree = StandardTreeLayout;

const MAX_UINT256 = (1n << 256n) - 1n;
const MAX_UINT32 = 0xffffffff;

/** Value of each ASCII hex digit, -1 for any other character. */
const HEX_VALUE = (() => {
  const table = new Int8Array(128).fill(-1);
  for (let c = 0; c < 10; c++) table[48 + c] = c;
  for (let c = 0; c < 6; c++) table[65 + c] = table[97 + c] = 10 + c;
  return table;
})();

/**
 * Decodes the 0x-prefixed 32-byte hex `hex` into out[offset .. offset + 32). Hand-rolled because
 * viem's hexToBytes allocates an array per call, and a large epoch decodes three per entry.
 */
function writeBytes32(out: Uint8Array, offset: number, hex: string, what: string): void {
  if (typeof hex !== "string" || hex.length !== 66 || hex[0] !== "0" || (hex[1] !== "x" && hex[1] !== "X")) {
    throw new TypeError(`${what} ${String(hex).slice(0, 20)} is not 32 bytes of 0x-prefixed hex`);
  }
  for (let i = 0; i < 32; i++) {
    const hi = HEX_VALUE[hex.charCodeAt(2 + 2 * i)] ?? -1;
    const lo = HEX_VALUE[hex.charCodeAt(3 + 2 * i)] ?? -1;
    if (hi < 0 || lo < 0) throw new TypeError(`${what} ${hex.slice(0, 20)}… is not 32 bytes of 0x-prefixed hex`);
    out[offset + i] = (hi << 4) | lo;
  }
}

function checkUsageUint256(what: string, value: bigint): void {
  if (typeof value !== "bigint" || value < 0n || value > MAX_UINT256) throw new TypeError(`${what} ${String(value)} is not a uint256`);
}

function checkUsageUint32(what: string, value: number): void {
  if (!Number.isInteger(value) || value < 0 || value > MAX_UINT32) throw new TypeError(`${what} ${value} is not a uint32`);
}

/**
 * Builds the same tree as {buildUsageTree} (same root, same leaf positions, same proofs) without
 * the library: each leaf's abi.encode (8 static words, 256 bytes) is written into one reused buffer
 * and hashed twice, then merkle.ts lays the tree out over the flat leaf hashes. The library keeps
 * every node as a hex string and ABI-encodes through generic code (2.1 s for 10^4 entries, 27 s
 * for 10^5); this takes a small fraction of that (measured numbers: edge/gpow/usageLog.ts).
 * Throws, as the library's encoder does, on a value that does not fit its type; and on an empty list.
 */
export function buildUsageTreeFast(entries: readonly UsageEntry[]): FastUsageTree {
  const n = entries.length;
  if (n === 0) throw new Error("a usage tree needs at least one entry");
  const leaves = new Uint8Array(32 * n);
  // abi.encode(uint256 epoch, uint256 index, bytes32 nonce, uint256 sessionId, uint32 promptTokens,
  // uint32 completionTokens, bytes32 requestHash, bytes32 responseHash): one word each, uint32s
  // right-aligned (their 28 leading zero bytes are never written, so they stay zero).
  const encoded = new Uint8Array(256);
  const view = new DataView(encoded.buffer);
  for (let i = 0; i < n; i++) {
    const e = entries[i];
    checkUsageUint256(`epoch of usage entry ${i}:`, e.epoch);
    checkUsageUint256(`index of usage entry ${i}:`, e.index);
    checkUsageUint256(`sessionId of usage entry ${i}:`, e.sessionId);
    checkUsageUint32(`promptTokens of usage entry ${i}:`, e.promptTokens);
    checkUsageUint32(`completionTokens of usage entry ${i}:`, e.completionTokens);
    writeWord(view, 0, e.epoch);
    writeWord(view, 32, e.index);
    writeBytes32(encoded, 64, e.nonce, `nonce of usage entry ${i}:`);
    writeWord(view, 96, e.sessionId);
    view.setUint32(128 + 28, e.promptTokens);
    view.setUint32(160 + 28, e.completionTokens);
    writeBytes32(encoded, 192, e.requestHash, `requestHash of usage entry ${i}:`);
    writeBytes32(encoded, 224, e.responseHash, `responseHash of usage entry ${i}:`);
    // 256 bytes is two sponge blocks, beyond keccak256Short; the outer hash (32 bytes) is not.
    keccak256Short(keccak_256(encoded), 0, 32, leaves, 32 * i);
  }
  return buildStandardTreeFromLeafHashes(leaves);
}

/** Whether `entry` is in the usage tree with `root`, by `proof` (checked with @openzeppelin/merkle-tree). */
export function verifyUsageProof(root: Hex, entry: UsageEntry, proof: readonly Hex[]): boolean {
  if (root.toLowerCase() === EMPTY_USAGE_ROOT) return false;
  return StandardMerkleTree.verify(root, [...USAGE_LEAF_ENCODING], usageLeaf(entry), [...proof]);
}

/**
 * The root that `proof` leads to from `entry`'s leaf, computed without the library (OpenZeppelin
 * MerkleProof.processProof: sorted pairs hashed bottom-up); what a contract would compute.
 */
export function processUsageProof(entry: UsageEntry, proof: readonly Hex[]): Hex {
  let node = usageLeafHash(entry);
  for (const sibling of proof) {
    const [a, b] = BigInt(node) <= BigInt(sibling) ? [node, sibling] : [sibling, node];
    node = keccak256(`0x${a.slice(2)}${b.slice(2)}`);
  }
  return node;
}

// ---------------------------------------------------------------- signing

/** The edge key's signature of `receipt` in `domain` ({edgeDomain}). */
export function signServiceReceipt(account: LocalAccount, domain: TypedDataDomain, receipt: ServiceReceipt): Promise<Hex> {
  return account.signTypedData({ domain, types: SERVICE_RECEIPT_TYPES, primaryType: "ServiceReceipt", message: { ...receipt } });
}

/** The edge key's signature of its usage commitment (root and count of `epoch`'s log). */
export function signUsageRoot(account: LocalAccount, domain: TypedDataDomain, root: Omit<UsageCommitment, "signature">): Promise<Hex> {
  return account.signTypedData({
    domain,
    types: USAGE_ROOT_TYPES,
    primaryType: "UsageRoot",
    message: { edgeId: root.edgeId, epoch: root.epoch, root: root.root, count: root.count },
  });
}

/** The edge key's answer to a router's handshake challenge `nonce`. */
export function signRouterHello(account: LocalAccount, domain: TypedDataDomain, hello: { edgeId: bigint; nonce: Hex }): Promise<Hex> {
  return account.signTypedData({
    domain,
    types: ROUTER_HELLO_TYPES,
    primaryType: "RouterHello",
    message: { edgeId: hello.edgeId, nonce: hello.nonce },
  });
}

// ---------------------------------------------------------------- recovery

/** The address that signed `receipt` in `domain` (compare with the edge's registered signing key). */
export function recoverServiceReceiptSigner(domain: TypedDataDomain, receipt: ServiceReceipt, signature: Hex): Promise<Address> {
  return recoverTypedDataAddress({
    domain,
    types: SERVICE_RECEIPT_TYPES,
    primaryType: "ServiceReceipt",
    message: { ...receipt },
    signature,
  });
}

/** The address that signed `commitment` in `domain`. */
export function recoverUsageRootSigner(domain: TypedDataDomain, commitment: UsageCommitment): Promise<Address> {
  const { edgeId, epoch, root, count, signature } = commitment;
  return recoverTypedDataAddress({
    domain,
    types: USAGE_ROOT_TYPES,
    primaryType: "UsageRoot",
    message: { edgeId, epoch, root, count },
    signature,
  });
}

/** The address that signed a router hello for (`edgeId`, `nonce`) in `domain`. */
export function recoverRouterHelloSigner(domain: TypedDataDomain, hello: { edgeId: bigint; nonce: Hex }, signature: Hex): Promise<Address> {
  return recoverTypedDataAddress({
    domain,
    types: ROUTER_HELLO_TYPES,
    primaryType: "RouterHello",
    message: { edgeId: hello.edgeId, nonce: hello.nonce },
    signature,
  });
}

/** Whether `signature` over `receipt` is by `signer` (case-insensitive address comparison; false on a malformed signature). */
export async function verifyServiceReceipt(
  domain: TypedDataDomain,
  receipt: ServiceReceipt,
  signature: Hex,
  signer: Address,
): Promise<boolean> {
  try {
    return (await recoverServiceReceiptSigner(domain, receipt, signature)).toLowerCase() === signer.toLowerCase();
  } catch {
    return false;
  }
}

/** Whether `commitment` is signed by `signer` (false on a malformed signature). */
export async function verifyUsageCommitment(domain: TypedDataDomain, commitment: UsageCommitment, signer: Address): Promise<boolean> {
  try {
    return (await recoverUsageRootSigner(domain, commitment)).toLowerCase() === signer.toLowerCase();
  } catch {
    return false;
  }
}
