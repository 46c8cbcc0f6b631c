// The fast usage tree (edgeProofs.ts buildUsageTreeFast) and the generic flat-array builder under it
// (merkle.ts buildStandardTreeFromLeafHashes). Both are checked against @openzeppelin/merkle-tree
// (StandardMerkleTree for usage entries, SimpleMerkleTree for raw leaf hashes), root, leaf
// positions and every proof, and the leaf hash against a hand computation with ethers (an
// independent keccak and ABI encoder).
import { SimpleMerkleTree } from "@openzeppelin/merkle-tree";
import { expect } from "chai";
import { AbiCoder, keccak256 as ethersKeccak, toBeHex } from "ethers";
import type { Hex } from "viem";

import {
  buildUsageTree,
  buildUsageTreeFast,
  processUsageProof,
  USAGE_LEAF_ENCODING,
  usageLeafHash,
  verifyUsageProof,
  ZERO_NONCE,
  type UsageEntry,
} from "../../lib/protocol/edgeProofs.ts";
import { buildStandardTreeFromLeafHashes } from "../../lib/protocol/merkle.ts";

const coder = AbiCoder.defaultAbiCoder();
const MAX_UINT32 = 0xffffffff;
const MAX_UINT256 = (1n << 256n) - 1n;

/** Deterministic pseudo-random uint256 below `bound` (seeded, so failures reproduce). */
function rand(seed: string, bound: bigint): bigint {
  return BigInt(ethersKeccak(new TextEncoder().encode(seed))) % bound;
}

/** A seeded random 32-byte hex value. */
function randHex(seed: string): Hex {
  return toBeHex(rand(seed, 1n << 256n), 32) as Hex;
}

/**
 * `n` random entries of one epoch, dense indices; they cover the edge cases of every field: zero
 * nonces, sessions 0 and near 2^256, token counts 0 and max uint32, mixed-case hex.
 */
function randomEntries(n: number, seed: string): UsageEntry[] {
  const epoch = rand(`${seed}/epoch`, 1n << 40n);
  return Array.from({ length: n }, (_, i) => {
    const s = `${seed}/${i}`;
    const sessions = [0n, MAX_UINT256, MAX_UINT256 - rand(`${s}/sd`, 1000n), 1n << 64n, rand(`${s}/s`, 1n << 128n)];
    const tokens = (k: string): number =>
      [0, MAX_UINT32, MAX_UINT32 - 1, Number(rand(`${s}/${k}`, 100_000n))][Number(rand(`${s}/${k}k`, 4n))];
    const requestHash = randHex(`${s}/req`);
    return {
      epoch,
      index: BigInt(i),
      nonce: i % 3 === 0 ? ZERO_NONCE : randHex(`${s}/nonce`),
      sessionId: sessions[Number(rand(`${s}/sk`, BigInt(sessions.length)))],
      promptTokens: tokens("p"),
      completionTokens: tokens("c"),
      // Upper-case digits in some entries: the same bytes, the same leaf.
      requestHash: i % 4 === 1 ? (`0x${requestHash.slice(2).toUpperCase()}` as Hex) : requestHash,
      responseHash: randHex(`${s}/resp`),
    };
  });
}

/** keccak256(keccak256(abi.encode(USAGE_LEAF_ENCODING values))), with ethers. */
function handLeaf(e: UsageEntry): string {
  const encoded = coder.encode(
    [...USAGE_LEAF_ENCODING],
    [e.epoch, e.index, e.nonce, e.sessionId, e.promptTokens, e.completionTokens, e.requestHash, e.responseHash],
  );
  return ethersKeccak(ethersKeccak(encoded));
}

function hexToBytes32(hex: string): Uint8Array {
  return Uint8Array.from(Buffer.from(hex.slice(2), "hex"));
}

describe("fast usage tree", () => {
  describe("buildUsageTreeFast", () => {
    for (const n of [1, 2, 3, 5, 17, 100]) {
      it(`builds the library's tree for ${n} random entries: same root, leaf positions, leaves and every proof`, () => {
        const entries = randomEntries(n, `usage-${n}`);
        const lib = buildUsageTree(entries);
        const fast = buildUsageTreeFast(entries);
        expect(fast.root).to.equal(lib.root);
        expect(fast.size).to.equal(n);
        expect(fast.nodes.length).to.equal(32 * (2 * n - 1));
        expect(Buffer.from(fast.nodes.subarray(0, 32)).toString("hex")).to.equal(lib.root.slice(2));
        const values = lib.dump().values;
        entries.forEach((entry, i) => {
          expect(fast.treeIndexOf(i)).to.equal(values[i].treeIndex);
          expect(fast.leafHashAt(i)).to.equal(handLeaf(entry));
          expect(fast.leafHashAt(i)).to.equal(usageLeafHash(entry));
          const proof = fast.proofAt(i);
          expect(proof).to.deep.equal(lib.getProof(i));
          expect(verifyUsageProof(fast.root, entry, proof)).to.equal(true);
          expect(processUsageProof(entry, proof)).to.equal(fast.root);
        });
      });
    }

    it("places a single entry's leaf at the root, with an empty proof", () => {
      const [entry] = randomEntries(1, "single");
      const fast = buildUsageTreeFast([entry]);
      expect(fast.root).to.equal(handLeaf(entry));
      expect(fast.proofAt(0)).to.deep.equal([]);
    });

    it("encodes the extreme values exactly: max uint32 tokens, sessionId 2^256 - 1, zero nonce", () => {
      const edge: UsageEntry = {
        epoch: MAX_UINT256,
        index: 0n,
        nonce: ZERO_NONCE,
        sessionId: MAX_UINT256,
        promptTokens: MAX_UINT32,
        completionTokens: 0,
        requestHash: `0x${"ff".repeat(32)}`,
        responseHash: ZERO_NONCE,
      };
      const entries = [
        edge,
        { ...edge, index: 1n, promptTokens: 0, completionTokens: MAX_UINT32, sessionId: MAX_UINT256 - 1n },
        { ...edge, index: 2n, epoch: 0n, sessionId: 0n },
      ];
      const fast = buildUsageTreeFast(entries);
      const lib = buildUsageTree(entries);
      expect(fast.root).to.equal(lib.root);
      entries.forEach((e, i) => {
        expect(fast.leafHashAt(i)).to.equal(handLeaf(e));
        expect(fast.proofAt(i)).to.deep.equal(lib.getProof(i));
      });
    });

    it("gives proofs that fail for a tampered entry (tokens, session, nonce, index) or another root", () => {
      const entries = randomEntries(17, "tamper");
      const fast = buildUsageTreeFast(entries);
      const other = buildUsageTreeFast(randomEntries(17, "tamper-other"));
      for (const [i, entry] of entries.entries()) {
        const proof = fast.proofAt(i);
        const tampered: UsageEntry[] = [
          { ...entry, promptTokens: entry.promptTokens === 0 ? 1 : entry.promptTokens - 1 },
          { ...entry, sessionId: entry.sessionId === 0n ? 1n : entry.sessionId - 1n },
          { ...entry, nonce: entry.nonce === ZERO_NONCE ? randHex("n") : ZERO_NONCE },
          { ...entry, index: entry.index + 1n },
        ];
        for (const t of tampered) {
          expect(verifyUsageProof(fast.root, t, proof)).to.equal(false);
          expect(processUsageProof(t, proof)).to.not.equal(fast.root);
        }
        expect(verifyUsageProof(other.root, entry, proof)).to.equal(false);
      }
    });

    it("rejects values that do not fit their ABI type, malformed hex and an empty list", () => {
      const [entry] = randomEntries(1, "invalid");
      expect(() => buildUsageTreeFast([])).to.throw("at least one entry");
      expect(() => buildUsageTreeFast([{ ...entry, promptTokens: MAX_UINT32 + 1 }])).to.throw(
        "promptTokens of usage entry 0: 4294967296 is not a uint32",
      );
      expect(() => buildUsageTreeFast([{ ...entry, completionTokens: -1 }])).to.throw(
        "completionTokens of usage entry 0: -1 is not a uint32",
      );
      expect(() => buildUsageTreeFast([{ ...entry, completionTokens: 1.5 }])).to.throw("not a uint32");
      expect(() => buildUsageTreeFast([entry, { ...entry, index: 1n, sessionId: MAX_UINT256 + 1n }])).to.throw(
        "sessionId of usage entry 1:",
      );
      expect(() => buildUsageTreeFast([{ ...entry, epoch: -1n }])).to.throw("epoch of usage entry 0: -1 is not a uint256");
      expect(() => buildUsageTreeFast([{ ...entry, nonce: "0x1234" }])).to.throw("nonce of usage entry 0:");
      expect(() => buildUsageTreeFast([{ ...entry, requestHash: `0x${"g".repeat(64)}` }])).to.throw("requestHash of usage entry 0:");
      expect(() => buildUsageTreeFast([{ ...entry, responseHash: `${"ab".repeat(33)}` as Hex }])).to.throw(
        "responseHash of usage entry 0:",
      );
      // The library refuses the out-of-range integers too: the fast builder never commits to a
      // tree the reference could not rebuild.
      expect(() => buildUsageTree([{ ...entry, promptTokens: MAX_UINT32 + 1 }])).to.throw();
      expect(() => buildUsageTree([{ ...entry, sessionId: MAX_UINT256 + 1n }])).to.throw();
    });

    it("refuses an index out of range", () => {
      const fast = buildUsageTreeFast(randomEntries(3, "range"));
      expect(() => fast.proofAt(3)).to.throw("leaf index 3 out of range [0, 3)");
      expect(() => fast.proofAt(-1)).to.throw("out of range");
      expect(() => fast.treeIndexOf(0.5)).to.throw("out of range");
    });
  });

  describe("buildStandardTreeFromLeafHashes", () => {
    for (const n of [1, 2, 3, 6, 33]) {
      it(`builds SimpleMerkleTree's tree (leaves used as given) for ${n} random hashes`, () => {
        const hashes = Array.from({ length: n }, (_, i) => randHex(`simple-${n}/${i}`));
        const lib = SimpleMerkleTree.of(hashes);
        const flat = new Uint8Array(32 * n);
        for (const [i, h] of hashes.entries()) flat.set(hexToBytes32(h), 32 * i);
        const tree = buildStandardTreeFromLeafHashes(flat);
        expect(tree.root).to.equal(lib.root);
        const values = lib.dump().values;
        hashes.forEach((h, i) => {
          expect(tree.treeIndexOf(i)).to.equal(values[i].treeIndex);
          expect(tree.leafHashAt(i)).to.equal(h);
          expect(tree.proofAt(i)).to.deep.equal(lib.getProof(i));
        });
      });
    }

    it("keeps equal leaf hashes in input order, as the library's stable sort does", () => {
      // Duplicates (a, b, a, c, b, a): which copy lands where decides each proof.
      const a = randHex("dup/a");
      const b = randHex("dup/b");
      const c = randHex("dup/c");
      const hashes = [a, b, a, c, b, a];
      const lib = SimpleMerkleTree.of(hashes);
      const flat = new Uint8Array(32 * hashes.length);
      for (const [i, h] of hashes.entries()) flat.set(hexToBytes32(h), 32 * i);
      const tree = buildStandardTreeFromLeafHashes(flat);
      expect(tree.root).to.equal(lib.root);
      const values = lib.dump().values;
      hashes.forEach((_, i) => {
        expect(tree.treeIndexOf(i)).to.equal(values[i].treeIndex);
        expect(tree.proofAt(i)).to.deep.equal(lib.getProof(i));
      });
    });

    it("reads a view with a byte offset into a larger buffer, and does not keep the input", () => {
      const hashes = Array.from({ length: 5 }, (_, i) => randHex(`offset/${i}`));
      const backing = new Uint8Array(32 * 5 + 7).fill(0xee);
      for (const [i, h] of hashes.entries()) backing.set(hexToBytes32(h), 7 + 32 * i);
      const view = backing.subarray(7);
      const tree = buildStandardTreeFromLeafHashes(view);
      expect(tree.root).to.equal(SimpleMerkleTree.of(hashes).root);
      view.fill(0);
      expect(tree.leafHashAt(2)).to.equal(hashes[2]);
      expect(tree.root).to.equal(SimpleMerkleTree.of(hashes).root);
    });

    it("rejects an empty input and a length that is not a multiple of 32", () => {
      expect(() => buildStandardTreeFromLeafHashes(new Uint8Array(0))).to.throw("at least one leaf");
      expect(() => buildStandardTreeFromLeafHashes(new Uint8Array(33))).to.throw("32 bytes each, got 33 bytes");
    });
  });
});
