// The epoch results tree that verifiers attest and edges claim against (IEpochSettlement): an
// OpenZeppelin StandardMerkleTree with one leaf per edge,
//   keccak256(bytes.concat(keccak256(abi.encode(uint256 epoch, uint256 edgeId, uint256 stake, uint256 quality))))
// and totalWeight = Σ stake × quality.
//
// Two builders give the same tree (same root, same proofs):
// - {buildEpochTree} uses `@openzeppelin/merkle-tree` itself: the reference, for ordinary sizes;
// - {buildEpochTreeFast} is hand-rolled for large trees. The library keeps every node as a hex
//   string, ABI-encodes through generic code and sorts with BigInt conversions, which takes minutes
//   and gigabytes for a million leaves. The fast builder hashes in place with
//   keccak.ts (no allocation per hash) and reproduces the library's
//   layout exactly (see `makeMerkleTree` and `MerkleTreeImpl.prepare` in
//   node_modules/@openzeppelin/merkle-tree/dist) over one flat Uint8Array: leaves sorted by hash
//   ascending, the i-th sorted leaf at node (2n-2-i), node k = keccak256(sort(child 2k+1, child 2k+2)).
//   The gas benchmark (a real 2^20-leaf tree) and the verifier service need it.
//   The tree part (sort, layout, node hashes, proofs) does not depend on the leaf encoding and is
//   exported as {buildStandardTreeFromLeafHashes}: edgeProofs.ts builds the edge's usage tree with it.
//
// Erasable TypeScript only (runs under Node's type stripping, see index.ts).
import { StandardMerkleTree } from "@openzeppelin/merkle-tree";
import { bytesToHex, encodeAbiParameters, keccak256 } from "viem";
import type { Hex } from "viem";

import type { EpochAttestation } from "./eip712.ts";
import { keccak256Short } from "./keccak.ts";

/** Quality of a perfect edge (IEpochSettlement: quality ∈ [0, QUALITY_ONE]). */
export const QUALITY_ONE = 1_000_000n;

/** StandardMerkleTree leaf encoding of `[epoch, edgeId, stake, quality]`. */
export const EPOCH_LEAF_ENCODING = ["uint256", "uint256", "uint256", "uint256"] as const;

/** The settlement takes totalWeight as a uint256 (and computes stake × quality in uint256). */
export const MAX_TOTAL_WEIGHT = (1n << 256n) - 1n;

const MAX_UINT256 = (1n << 256n) - 1n;

/** One edge's result in an epoch. */
export interface EdgeResult {
  edgeId: bigint;
  /** Earning stake during the epoch, wei. */
  stake: bigint;
  /** Verified quality, 0..QUALITY_ONE. */
  quality: bigint;
}

/** {IEpochSettlement.Claim}: what `claim(epoch, claim)` takes. */
export interface EpochClaim extends EdgeResult {
  proof: Hex[];
}

/** An epoch's results tree (either builder). */
export interface EpochTree {
  readonly epoch: bigint;
  readonly root: Hex;
  /** Σ stake × quality. */
  readonly totalWeight: bigint;
  /** Number of leaves (edges). */
  readonly size: number;
  /** What verifiers sign and `claim` takes back: { epoch, root, totalWeight }. */
  readonly attestation: EpochAttestation;
  /** The result of `edgeId` (throws if the edge is not in the tree). */
  result(edgeId: bigint): EdgeResult;
  /** The leaf hash of `edgeId`, as `IEpochSettlement.leafHash` computes it. */
  leafHash(edgeId: bigint): Hex;
  /** The Merkle proof of `edgeId`'s leaf, bottom-up (OpenZeppelin MerkleProof order). */
  proof(edgeId: bigint): Hex[];
  /** `edgeId`'s claim: its result and proof. */
  claim(edgeId: bigint): EpochClaim;
}

/** The leaf of `result` in `epoch`'s tree. */
export function epochLeafHash(epoch: bigint, result: EdgeResult): Hex {
  const encoded = encodeAbiParameters(
    EPOCH_LEAF_ENCODING.map((type) => ({ type })),
    [epoch, result.edgeId, result.stake, result.quality],
  );
  return keccak256(keccak256(encoded, "bytes"));
}

function checkUint256(what: string, value: bigint): void {
  if (typeof value !== "bigint" || value < 0n || value > MAX_UINT256) throw new Error(`${what} ${value} is not a uint256`);
}

/** Validates one result; returns its weight (stake × quality). */
function checkResult(r: EdgeResult): bigint {
  checkUint256("edgeId", r.edgeId);
  checkUint256(`stake of edge ${r.edgeId}:`, r.stake);
  checkUint256(`quality of edge ${r.edgeId}:`, r.quality);
  if (r.quality > QUALITY_ONE) throw new Error(`quality of edge ${r.edgeId} is ${r.quality}, above QUALITY_ONE (${QUALITY_ONE})`);
  return r.stake * r.quality;
}

function checkTotalWeight(totalWeight: bigint): void {
  if (totalWeight > MAX_TOTAL_WEIGHT) throw new Error(`total weight ${totalWeight} does not fit a uint256`);
}

/** Map key of an edge id: a number when exact (faster), the bigint otherwise. */
function idKey(edgeId: bigint): number | bigint {
  return edgeId <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(edgeId) : edgeId;
}

// ---------------------------------------------------------------- reference builder

/** An epoch tree built by `@openzeppelin/merkle-tree`; `tree` is the library's object. */
export interface LibraryEpochTree extends EpochTree {
  readonly tree: StandardMerkleTree<bigint[]>;
}

/**
 * Builds `epoch`'s tree with `@openzeppelin/merkle-tree` (StandardMerkleTree.of, leaves sorted).
 * Throws on an empty list, a duplicate edge id, a quality above QUALITY_ONE, a value that is not a
 * uint256 or a total weight above uint256. For large trees use {buildEpochTreeFast}.
 */
export function buildEpochTree(epoch: bigint, results: readonly EdgeResult[]): LibraryEpochTree {
  checkUint256("epoch", epoch);
  if (results.length === 0) throw new Error("an epoch tree needs at least one result");
  const index = new Map<number | bigint, number>();
  let totalWeight = 0n;
  results.forEach((r, i) => {
    totalWeight += checkResult(r);
    const key = idKey(r.edgeId);
    if (index.has(key)) throw new Error(`duplicate edge id ${r.edgeId}`);
    index.set(key, i);
  });
  checkTotalWeight(totalWeight);
  const tree = StandardMerkleTree.of(
    results.map((r) => [epoch, r.edgeId, r.stake, r.quality]),
    [...EPOCH_LEAF_ENCODING],
  );
  const at = (edgeId: bigint): number => {
    const i = index.get(idKey(edgeId));
    if (i === undefined) throw new Error(`edge ${edgeId} is not in the tree of epoch ${epoch}`);
    return i;
  };
  const result = (edgeId: bigint): EdgeResult => {
    const { stake, quality } = results[at(edgeId)];
    return { edgeId, stake, quality };
  };
  const proof = (edgeId: bigint): Hex[] => tree.getProof(at(edgeId)) as Hex[];
  return {
    epoch,
    root: tree.root as Hex,
    totalWeight,
    size: results.length,
    attestation: { epoch, root: tree.root as Hex, totalWeight },
    tree,
    result,
    leafHash: (edgeId) => tree.leafHash(tree.at(at(edgeId)) as bigint[]) as Hex,
    proof,
    claim: (edgeId) => ({ ...result(edgeId), proof: proof(edgeId) }),
  };
}

// ---------------------------------------------------------------- generic fast tree

/**
 * A StandardMerkleTree's node array, held flat: what {buildStandardTreeFromLeafHashes} returns.
 * Indices `i` are positions in the input (the library's "value index").
 */
export interface StandardTreeLayout {
  /** Node 0, as the library's `tree.root`. */
  readonly root: Hex;
  /** Number of leaves. */
  readonly size: number;
  /** Every node, 32 bytes each, in the library's order (node 0 is the root, 2n-1 nodes). */
  readonly nodes: Uint8Array;
  /** Tree index of every leaf, in input order (what {treeIndexOf} reads). */
  readonly treeIndices: Uint32Array;
  /** Tree index (node number in the library's layout) of the `i`-th leaf. */
  treeIndexOf(i: number): number;
  /** Proof of the `i`-th leaf, bottom-up, as the library's `getProof(i)`. */
  proofAt(i: number): Hex[];
  /** Hash of the `i`-th leaf. */
  leafHashAt(i: number): Hex;
}

/**
 * Builds the tree that `@openzeppelin/merkle-tree` builds over leaves with these hashes
 * (StandardMerkleTree with `sortLeaves: true`, the default): the leaf hashes sorted ascending
 * (ties kept in input order, as the library's stable sort does), the i-th sorted leaf at node
 * (2n-2-i), node k = keccak256(sort(node 2k+1, node 2k+2)). Whatever the leaf encoding, only the
 * hashes matter from here on, so every fast builder (epoch results, usage log) shares this.
 *
 * @param leafHashes n ≥ 1 leaf hashes, 32 bytes each, in input order (read, not kept).
 */
export function buildStandardTreeFromLeafHashes(leafHashes: Uint8Array): StandardTreeLayout {
  if (leafHashes.length % 32 !== 0) throw new Error(`leaf hashes take 32 bytes each, got ${leafHashes.length} bytes`);
  const n = leafHashes.length / 32;
  if (n === 0) throw new Error("a Merkle tree needs at least one leaf");
  if (n > 0x7fffffff / 2) throw new Error(`too many leaves (${n})`);

  // 1. Sort leaf indices by hash, ascending (the library's `sortLeaves`). The first 4 bytes decide
  // almost every comparison; equal hashes keep their input order (the library's sort is stable).
  const head = new Uint32Array(n);
  const leavesView = new DataView(leafHashes.buffer, leafHashes.byteOffset, leafHashes.byteLength);
  for (let i = 0; i < n; i++) head[i] = leavesView.getUint32(32 * i);
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  order.sort((a, b) => (head[a] !== head[b] ? (head[a] < head[b] ? -1 : 1) : compareWords(leafHashes, 32 * a, 32 * b) || a - b));

  // 2. The library's array layout: 2n-1 nodes, the i-th sorted leaf at node (2n-2-i), node k
  // the hash of its children 2k+1 and 2k+2, smaller first.
  const size = 2 * n - 1;
  const nodes = new Uint8Array(32 * size);
  const treeIndex = new Uint32Array(n);
  for (let s = 0; s < n; s++) {
    const node = size - 1 - s;
    const leaf = order[s];
    nodes.set(leafHashes.subarray(32 * leaf, 32 * leaf + 32), 32 * node);
    treeIndex[leaf] = node;
  }
  const pair = new Uint8Array(64);
  for (let k = size - 1 - n; k >= 0; k--) {
    const l = 32 * (2 * k + 1);
    const r = l + 32;
    if (compareWords(nodes, l, r) <= 0) {
      pair.set(nodes.subarray(l, l + 32), 0);
      pair.set(nodes.subarray(r, r + 32), 32);
    } else {
      pair.set(nodes.subarray(r, r + 32), 0);
      pair.set(nodes.subarray(l, l + 32), 32);
    }
    keccak256Short(pair, 0, 64, nodes, 32 * k);
  }

  return standardTreeLayout(nodes, treeIndex);
}

/**
 * The layout over `nodes` and `treeIndices` as {buildStandardTreeFromLeafHashes} made them (e.g. in
 * a worker thread, the arrays then transferred here); both are kept, not copied, and not checked.
 */
export function standardTreeLayout(nodes: Uint8Array, treeIndices: Uint32Array): StandardTreeLayout {
  const n = treeIndices.length;
  const nodeHex = (k: number): Hex => bytesToHex(nodes.subarray(32 * k, 32 * k + 32));
  const checkIndex = (i: number): void => {
    if (!Number.isInteger(i) || i < 0 || i >= n) throw new Error(`leaf index ${i} out of range [0, ${n})`);
  };
  return {
    root: nodeHex(0),
    size: n,
    nodes,
    treeIndices,
    treeIndexOf: (i) => {
      checkIndex(i);
      return treeIndices[i];
    },
    proofAt: (i) => {
      checkIndex(i);
      const proof: Hex[] = [];
      // As the library's getProof: sibling of k is k+1 when k is odd, k-1 when even.
      for (let k = treeIndices[i]; k > 0; k = (k - 1) >> 1) proof.push(nodeHex(k % 2 === 1 ? k + 1 : k - 1));
      return proof;
    },
    leafHashAt: (i) => {
      checkIndex(i);
      return nodeHex(treeIndices[i]);
    },
  };
}

// ---------------------------------------------------------------- fast builder

/** Results given by index instead of as an array (e.g. generated on the fly). */
export interface ResultSource {
  readonly length: number;
  get(index: number): EdgeResult;
}

/** An epoch tree built by {buildEpochTreeFast}. */
export interface FastEpochTree extends EpochTree {
  /** Tree index (node number in the library's layout) of the `index`-th result. */
  treeIndexOf(index: number): number;
  /** Proof of the `index`-th result (in input order). */
  proofAt(index: number): Hex[];
  /** Leaf hash of the `index`-th result. */
  leafHashAt(index: number): Hex;
  /** Every node, 32 bytes each, in the library's order (node 0 is the root). */
  readonly nodes: Uint8Array;
}

/**
 * Writes `value` (a uint256, not checked here) as a 32-byte big-endian word at `offset` of `view`:
 * the ABI encoding of a static uint word, without allocating.
 */
export function writeWord(view: DataView, offset: number, value: bigint): void {
  if (value <= 0xffffffffffffffffn) {
    view.setBigUint64(offset, 0n);
    view.setBigUint64(offset + 8, 0n);
    view.setBigUint64(offset + 16, 0n);
    view.setBigUint64(offset + 24, value);
    return;
  }
  let v = value;
  for (let limb = 3; limb >= 0; limb--) {
    view.setBigUint64(offset + limb * 8, v & 0xffffffffffffffffn);
    v >>= 64n;
  }
}

/** Compares the 32-byte words at `a` and `b` of `buf` as unsigned big-endian integers. */
function compareWords(buf: Uint8Array, a: number, b: number): number {
  for (let i = 0; i < 32; i++) {
    const d = buf[a + i] - buf[b + i];
    if (d !== 0) return d;
  }
  return 0;
}

/**
 * Builds the same tree as {buildEpochTree} (same root, same proofs) without the library: flat
 * typed arrays hashed in place (keccak.ts). 2^20 leaves take seconds and a few hundred
 * MiB instead of minutes and gigabytes. Same validation as {buildEpochTree}.
 */
export function buildEpochTreeFast(epoch: bigint, results: readonly EdgeResult[] | ResultSource): FastEpochTree {
  checkUint256("epoch", epoch);
  const source: ResultSource = Array.isArray(results)
    ? { length: results.length, get: (i) => (results as readonly EdgeResult[])[i] }
    : (results as ResultSource);
  const n = source.length;
  if (n === 0) throw new Error("an epoch tree needs at least one result");
  if (n > 0x7fffffff / 2) throw new Error(`too many results (${n})`);

  // 1. Leaf hashes, in input order. Duplicate ids are found with one Map of ids.
  const leaves = new Uint8Array(32 * n);
  const encoded = new Uint8Array(128);
  const view = new DataView(encoded.buffer);
  const inner = new Uint8Array(32);
  writeWord(view, 0, epoch);
  const index = new Map<number | bigint, number>();
  let totalWeight = 0n;
  for (let i = 0; i < n; i++) {
    const r = source.get(i);
    totalWeight += checkResult(r);
    const key = idKey(r.edgeId);
    if (index.has(key)) throw new Error(`duplicate edge id ${r.edgeId}`);
    index.set(key, i);
    writeWord(view, 32, r.edgeId);
    writeWord(view, 64, r.stake);
    writeWord(view, 96, r.quality);
    keccak256Short(encoded, 0, 128, inner, 0);
    keccak256Short(inner, 0, 32, leaves, 32 * i);
  }
  checkTotalWeight(totalWeight);

  // 2. The tree over those leaves, in the library's layout.
  const tree = buildStandardTreeFromLeafHashes(leaves);

  const at = (edgeId: bigint): number => {
    const i = index.get(idKey(edgeId));
    if (i === undefined) throw new Error(`edge ${edgeId} is not in the tree of epoch ${epoch}`);
    return i;
  };
  const result = (edgeId: bigint): EdgeResult => {
    const { stake, quality } = source.get(at(edgeId));
    return { edgeId, stake, quality };
  };
  return {
    epoch,
    root: tree.root,
    totalWeight,
    size: n,
    attestation: { epoch, root: tree.root, totalWeight },
    nodes: tree.nodes,
    result,
    leafHash: (edgeId) => tree.leafHashAt(at(edgeId)),
    proof: (edgeId) => tree.proofAt(at(edgeId)),
    claim: (edgeId) => ({ ...result(edgeId), proof: tree.proofAt(at(edgeId)) }),
    treeIndexOf: tree.treeIndexOf,
    proofAt: tree.proofAt,
    leafHashAt: tree.leafHashAt,
  };
}

/** Computes the root that `proof` leads to from `leaf` (OpenZeppelin MerkleProof.processProof). */
export function processEpochProof(leaf: Hex, proof: readonly Hex[]): Hex {
  let node = leaf;
  for (const sibling of proof) {
    const [a, b] = BigInt(node) <= BigInt(sibling) ? [node, sibling] : [sibling, node];
    node = keccak256(`0x${a.slice(2)}${b.slice(2)}`);
  }
  return node;
}

/** Whether `claim` is in the tree of `epoch` with root `root`. */
export function verifyEpochClaim(root: Hex, epoch: bigint, claim: EpochClaim): boolean {
  return processEpochProof(epochLeafHash(epoch, claim), claim.proof).toLowerCase() === root.toLowerCase();
}
