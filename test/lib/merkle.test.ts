// lib/protocol/merkle.ts: the epoch results tree. Leaf hashes and small roots are recomputed by
// hand with ethers (an independent keccak and ABI encoder); the fast builder is compared with the
// OpenZeppelin library on random trees of several sizes, roots and every proof.
import { StandardMerkleTree } from "@openzeppelin/merkle-tree";
import { expect } from "chai";
import { AbiCoder, concat, keccak256 as ethersKeccak, toBeHex } from "ethers";
import type { Hex } from "viem";

import {
  buildEpochTree,
  buildEpochTreeFast,
  epochLeafHash,
  EPOCH_LEAF_ENCODING,
  MAX_TOTAL_WEIGHT,
  processEpochProof,
  QUALITY_ONE,
  verifyEpochClaim,
  type EdgeResult,
} from "../../lib/protocol/index.ts";
import { buildLargeEpochTree, syntheticResult } from "../../bench/fixtures.ts";

const coder = AbiCoder.defaultAbiCoder();

/** keccak256(bytes.concat(keccak256(abi.encode(epoch, edgeId, stake, quality)))), with ethers. */
function handLeaf(epoch: bigint, r: EdgeResult): string {
  return ethersKeccak(ethersKeccak(coder.encode(["uint256", "uint256", "uint256", "uint256"], [epoch, r.edgeId, r.stake, r.quality])));
}

/** OpenZeppelin's commutative node hash, with ethers. */
function handNode(a: string, b: string): string {
  return BigInt(a) <= BigInt(b) ? ethersKeccak(concat([a, b])) : ethersKeccak(concat([b, a]));
}

/** Deterministic pseudo-random uint256 below `bound` (seeded, so failures reproduce). */
function rand(seed: string, bound: bigint): bigint {
  return BigInt(ethersKeccak(new TextEncoder().encode(seed))) % bound;
}

/** `n` random results with distinct ids; stakes span small and > 2^64 values. */
function randomResults(n: number, seed: string): EdgeResult[] {
  const used = new Set<bigint>();
  const out: EdgeResult[] = [];
  for (let i = 0; out.length < n; i++) {
    const edgeId = 1n + rand(`${seed}/id/${i}`, i % 3 === 0 ? 1n << 200n : 100_000n);
    if (used.has(edgeId)) continue;
    used.add(edgeId);
    const stake = i % 4 === 0 ? rand(`${seed}/stake/${i}`, 1000n) : rand(`${seed}/stake/${i}`, 10n ** 27n);
    out.push({ edgeId, stake, quality: rand(`${seed}/q/${i}`, QUALITY_ONE + 1n) });
  }
  return out;
}

const EPOCH = 42n;

describe("lib/protocol merkle", () => {
  describe("epochLeafHash", () => {
    it("hashes the abi-encoded (epoch, edgeId, stake, quality) twice with keccak256", () => {
      const r = { edgeId: 7n, stake: 1_234n * 10n ** 18n, quality: 999_999n };
      expect(epochLeafHash(EPOCH, r)).to.equal(handLeaf(EPOCH, r));
    });

    it("equals the library's StandardMerkleTree leaf hash", () => {
      const r = { edgeId: (1n << 255n) + 3n, stake: 0n, quality: QUALITY_ONE };
      const tree = StandardMerkleTree.of([[EPOCH, r.edgeId, r.stake, r.quality]], [...EPOCH_LEAF_ENCODING]);
      expect(epochLeafHash(EPOCH, r)).to.equal(tree.root);
      expect(epochLeafHash(EPOCH, r)).to.equal(handLeaf(EPOCH, r));
    });

    it("binds the epoch: the same result in another epoch is another leaf", () => {
      const r = { edgeId: 1n, stake: 10n, quality: 5n };
      expect(epochLeafHash(EPOCH, r)).to.not.equal(epochLeafHash(EPOCH + 1n, r));
    });
  });

  describe("buildEpochTree", () => {
    it("uses the leaf itself as the root of a one-edge tree, with an empty proof", () => {
      const r = { edgeId: 3n, stake: 5n * 10n ** 18n, quality: 500_000n };
      const tree = buildEpochTree(EPOCH, [r]);
      expect(tree.root).to.equal(handLeaf(EPOCH, r));
      expect(tree.proof(3n)).to.deep.equal([]);
      expect(tree.totalWeight).to.equal(r.stake * r.quality);
      expect(tree.attestation).to.deep.equal({ epoch: EPOCH, root: tree.root, totalWeight: tree.totalWeight });
    });

    it("hashes two leaves smaller first, each proof being the other leaf", () => {
      const a = { edgeId: 1n, stake: 100n, quality: 1n };
      const b = { edgeId: 2n, stake: 200n, quality: 2n };
      const tree = buildEpochTree(EPOCH, [a, b]);
      const [la, lb] = [handLeaf(EPOCH, a), handLeaf(EPOCH, b)];
      expect(tree.root).to.equal(handNode(la, lb));
      expect(tree.proof(1n)).to.deep.equal([lb]);
      expect(tree.proof(2n)).to.deep.equal([la]);
      expect(tree.totalWeight).to.equal(100n + 400n);
    });

    it("lays out three leaves as OpenZeppelin does: the two smallest paired, the largest next to the root", () => {
      const results = [
        { edgeId: 10n, stake: 1n, quality: 1n },
        { edgeId: 11n, stake: 2n, quality: 2n },
        { edgeId: 12n, stake: 3n, quality: 3n },
      ];
      const leaves = results.map((r) => handLeaf(EPOCH, r));
      const sorted = [...leaves].sort((x, y) => (BigInt(x) < BigInt(y) ? -1 : 1));
      // nodes: [root, H(s0,s1), s2, s1, s0]
      const inner = handNode(sorted[0], sorted[1]);
      const tree = buildEpochTree(EPOCH, results);
      expect(tree.root).to.equal(handNode(inner, sorted[2]));
      const largest = results[leaves.indexOf(sorted[2])].edgeId;
      const smallest = results[leaves.indexOf(sorted[0])].edgeId;
      expect(tree.proof(largest)).to.deep.equal([inner]);
      expect(tree.proof(smallest)).to.deep.equal([sorted[1], sorted[2]]);
      expect(tree.totalWeight).to.equal(1n + 4n + 9n);
    });

    it("gives proofs that the library's StandardMerkleTree.verify accepts, and claims with the edge's values", () => {
      const results = randomResults(25, "verify");
      const tree = buildEpochTree(EPOCH, results);
      for (const r of results) {
        const proof = tree.proof(r.edgeId);
        expect(StandardMerkleTree.verify(tree.root, [...EPOCH_LEAF_ENCODING], [EPOCH, r.edgeId, r.stake, r.quality], proof)).to.equal(true);
        expect(tree.claim(r.edgeId)).to.deep.equal({ ...r, proof });
        expect(tree.leafHash(r.edgeId)).to.equal(handLeaf(EPOCH, r));
      }
      expect(tree.totalWeight).to.equal(results.reduce((s, r) => s + r.stake * r.quality, 0n));
      expect(tree.size).to.equal(25);
    });

    it("rejects duplicate edge ids", () => {
      const r = { edgeId: 5n, stake: 1n, quality: 1n };
      expect(() => buildEpochTree(EPOCH, [r, { ...r, stake: 2n }])).to.throw("duplicate edge id 5");
    });

    it("accepts quality QUALITY_ONE and rejects anything above", () => {
      expect(buildEpochTree(EPOCH, [{ edgeId: 1n, stake: 1n, quality: QUALITY_ONE }]).totalWeight).to.equal(QUALITY_ONE);
      expect(() => buildEpochTree(EPOCH, [{ edgeId: 1n, stake: 1n, quality: QUALITY_ONE + 1n }])).to.throw("above QUALITY_ONE");
    });

    it("rejects an empty list, negative values, a total weight beyond uint256, and unknown edges", () => {
      expect(() => buildEpochTree(EPOCH, [])).to.throw("at least one result");
      expect(() => buildEpochTree(EPOCH, [{ edgeId: 1n, stake: -1n, quality: 1n }])).to.throw("not a uint256");
      expect(() => buildEpochTree(-1n, [{ edgeId: 1n, stake: 1n, quality: 1n }])).to.throw("not a uint256");
      // MAX_TOTAL_WEIGHT / QUALITY_ONE + 1 at full quality is one stake unit too many.
      const stake = MAX_TOTAL_WEIGHT / QUALITY_ONE + 1n;
      expect(() => buildEpochTree(EPOCH, [{ edgeId: 1n, stake, quality: QUALITY_ONE }])).to.throw("does not fit a uint256");
      expect(buildEpochTree(EPOCH, [{ edgeId: 1n, stake: stake - 1n, quality: QUALITY_ONE }]).totalWeight).to.be.at.most(MAX_TOTAL_WEIGHT);
      expect(() => buildEpochTree(EPOCH, [{ edgeId: 1n, stake: 1n, quality: 1n }]).proof(2n)).to.throw("edge 2 is not in the tree");
    });
  });

  describe("buildEpochTreeFast", () => {
    for (const n of [1, 2, 3, 4, 5, 7, 100, 1000]) {
      it(`builds the library's tree for ${n} random leaves: same root, leaf positions and proofs`, () => {
        const results = randomResults(n, `fast-${n}`);
        const lib = buildEpochTree(EPOCH, results);
        const fast = buildEpochTreeFast(EPOCH, results);
        expect(fast.root).to.equal(lib.root);
        expect(fast.totalWeight).to.equal(lib.totalWeight);
        expect(fast.attestation).to.deep.equal(lib.attestation);
        expect(fast.size).to.equal(n);
        const values = lib.tree.dump().values;
        results.forEach((r, i) => {
          expect(fast.treeIndexOf(i)).to.equal(values[i].treeIndex);
          expect(fast.proof(r.edgeId)).to.deep.equal(lib.proof(r.edgeId));
          expect(fast.proofAt(i)).to.deep.equal(lib.proof(r.edgeId));
          expect(fast.leafHashAt(i)).to.equal(lib.leafHash(r.edgeId));
        });
        expect([...fast.nodes.subarray(0, 32)]).to.deep.equal([...Buffer.from(lib.root.slice(2), "hex")]);
      });
    }

    it("gives proofs the library verifies and claims that verifyEpochClaim accepts, and rejects tampered claims", () => {
      const results = randomResults(300, "fast-verify");
      const fast = buildEpochTreeFast(EPOCH, results);
      for (const r of results.slice(0, 50)) {
        const claim = fast.claim(r.edgeId);
        expect(StandardMerkleTree.verify(fast.root, [...EPOCH_LEAF_ENCODING], [EPOCH, r.edgeId, r.stake, r.quality], claim.proof)).to.equal(
          true,
        );
        expect(verifyEpochClaim(fast.root, EPOCH, claim)).to.equal(true);
        expect(verifyEpochClaim(fast.root, EPOCH, { ...claim, stake: claim.stake + 1n })).to.equal(false);
        expect(verifyEpochClaim(fast.root, EPOCH + 1n, claim)).to.equal(false);
      }
    });

    it("accepts a ResultSource and matches the library on the synthetic large-tree results", () => {
      const n = 257;
      const listed = Array.from({ length: n }, (_, i) => syntheticResult(i));
      const lib = buildEpochTree(EPOCH, listed);
      const large = buildLargeEpochTree(EPOCH, n);
      expect(large.root).to.equal(lib.root);
      expect(large.proof(200n)).to.deep.equal(lib.proof(200n));
      expect(large.result(200n)).to.deep.equal(syntheticResult(199));
      expect(listed.every((r) => r.quality <= QUALITY_ONE)).to.equal(true);
    });

    it("validates as buildEpochTree does", () => {
      const r = { edgeId: 9n, stake: 1n, quality: 1n };
      expect(() => buildEpochTreeFast(EPOCH, [r, r])).to.throw("duplicate edge id 9");
      expect(() => buildEpochTreeFast(EPOCH, [{ ...r, quality: QUALITY_ONE + 1n }])).to.throw("above QUALITY_ONE");
      expect(() => buildEpochTreeFast(EPOCH, [])).to.throw("at least one result");
      expect(() => buildEpochTreeFast(EPOCH, [{ ...r, edgeId: 1n << 256n }])).to.throw("not a uint256");
      expect(() => buildEpochTreeFast(EPOCH, [r]).proof(10n)).to.throw("edge 10 is not in the tree");
      expect(() => buildEpochTreeFast(EPOCH, [r]).proofAt(1)).to.throw("out of range");
    });
  });

  describe("processEpochProof", () => {
    it("folds the proof with the commutative node hash", () => {
      const leaf = toBeHex(1n, 32) as Hex;
      const s1 = toBeHex(2n ** 255n, 32) as Hex;
      const s2 = toBeHex(3n, 32) as Hex;
      expect(processEpochProof(leaf, [s1, s2])).to.equal(handNode(handNode(leaf, s1), s2));
      expect(processEpochProof(leaf, [])).to.equal(leaf);
    });
  });
});
