// lib/protocol/edgeProofs.ts: the "Tideway Edge" EIP-712 types (ServiceReceipt, UsageRoot,
// RouterHello) round-trip through viem signing and recovery, and any change of key, nonce, epoch
// or domain breaks verification; the hashes and the usage leaf agree with independent
// computations (ethers' keccak256, the merkle-tree library's own leaf hash).
import { StandardMerkleTree } from "@openzeppelin/merkle-tree";
import { expect } from "chai";
import { AbiCoder, keccak256 as ethersKeccak, recoverAddress, toUtf8Bytes, TypedDataEncoder } from "ethers";
import type { Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";

import {
  buildUsageTree,
  chatResponseHash,
  edgeDomain,
  embeddingsResponseHash,
  NONCE_HEADER,
  processUsageProof,
  recoverRouterHelloSigner,
  recoverServiceReceiptSigner,
  recoverUsageRootSigner,
  requestHash,
  signRouterHello,
  signServiceReceipt,
  signUsageRoot,
  USAGE_LEAF_ENCODING,
  usageLeaf,
  usageLeafHash,
  verifyServiceReceipt,
  verifyUsageCommitment,
  verifyUsageProof,
  ZERO_NONCE,
  type ServiceReceipt,
  type UsageEntry,
} from "../../../../lib/protocol/edgeProofs.ts";

const REGISTRY = "0x5FbDB2315678afecb367f032d93F642f64180aa3";
const OTHER_REGISTRY = "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512";
const edgeKey = privateKeyToAccount(`0x${"11".repeat(32)}`);
const otherKey = privateKeyToAccount(`0x${"22".repeat(32)}`);
const domain = edgeDomain(31_337n, REGISTRY);
const hex32 = (byte: string): Hex => `0x${byte.repeat(32)}`;

const receipt: ServiceReceipt = {
  edgeId: 7n,
  epoch: 12n,
  nonce: hex32("ab"),
  requestHash: requestHash('{"model":"tideway/reference-1"}'),
  responseHash: chatResponseHash("hello world"),
  promptTokens: 5,
  completionTokens: 2,
};

const entry = (index: bigint, over: Partial<UsageEntry> = {}): UsageEntry => ({
  epoch: 4n,
  index,
  nonce: index % 2n === 0n ? ZERO_NONCE : hex32((Number(index) % 256).toString(16).padStart(2, "0")),
  sessionId: index * 3n,
  promptTokens: 10 + Number(index),
  completionTokens: 20 + Number(index),
  requestHash: hex32("c1"),
  responseHash: hex32("d2"),
  ...over,
});

describe("edge proofs (lib/protocol/edgeProofs)", () => {
  describe("edgeDomain", () => {
    it("names the Tideway Edge domain over the registry, and its digest is what ethers computes", () => {
      expect(domain).to.deep.equal({ name: "Tideway Edge", version: "1", chainId: 31_337n, verifyingContract: REGISTRY });
      const ethersDigest = TypedDataEncoder.hash(
        { name: "Tideway Edge", version: "1", chainId: 31_337, verifyingContract: REGISTRY },
        {
          ServiceReceipt: [
            { name: "edgeId", type: "uint256" },
            { name: "epoch", type: "uint256" },
            { name: "nonce", type: "bytes32" },
            { name: "requestHash", type: "bytes32" },
            { name: "responseHash", type: "bytes32" },
            { name: "promptTokens", type: "uint32" },
            { name: "completionTokens", type: "uint32" },
          ],
        },
        receipt,
      );
      // A signature recovers to the signer only over the same digest: recover it through ethers.
      return signServiceReceipt(edgeKey, domain, receipt).then((sig) => {
        expect(recoverAddress(ethersDigest, sig)).to.equal(edgeKey.address);
      });
    });
  });

  describe("hashes", () => {
    it("requestHash hashes the exact body bytes (string and bytes agree)", () => {
      const body = '{"messages":[{"role":"user","content":"héllo"}]}';
      expect(requestHash(body)).to.equal(ethersKeccak(toUtf8Bytes(body)));
      expect(requestHash(new TextEncoder().encode(body))).to.equal(ethersKeccak(toUtf8Bytes(body)));
      expect(requestHash(`${body} `)).to.not.equal(requestHash(body));
    });

    it("chat and embeddings response hashes are keccak256 of the UTF-8 text and of the JSON", () => {
      expect(chatResponseHash("ünïcode ✓")).to.equal(ethersKeccak(Buffer.from("ünïcode ✓", "utf8")));
      expect(embeddingsResponseHash([[0.5, -1], [2]])).to.equal(ethersKeccak(Buffer.from("[[0.5,-1],[2]]", "utf8")));
    });

    it("exports the nonce header name in lower case (HTTP header lookups are lower case in Node)", () => {
      expect(NONCE_HEADER).to.equal("x-tideway-nonce");
    });
  });

  describe("ServiceReceipt", () => {
    it("recovers the edge key from its signature", async () => {
      const signature = await signServiceReceipt(edgeKey, domain, receipt);
      expect(await recoverServiceReceiptSigner(domain, receipt, signature)).to.equal(edgeKey.address);
      expect(await verifyServiceReceipt(domain, receipt, signature, edgeKey.address)).to.equal(true);
    });

    it("fails verification under another key, nonce, epoch, response or registry", async () => {
      const signature = await signServiceReceipt(edgeKey, domain, receipt);
      const byOther = await signServiceReceipt(otherKey, domain, receipt);
      expect(await verifyServiceReceipt(domain, receipt, byOther, edgeKey.address)).to.equal(false);
      expect(await verifyServiceReceipt(domain, { ...receipt, nonce: hex32("ac") }, signature, edgeKey.address)).to.equal(false);
      expect(await verifyServiceReceipt(domain, { ...receipt, epoch: 13n }, signature, edgeKey.address)).to.equal(false);
      expect(
        await verifyServiceReceipt(domain, { ...receipt, responseHash: chatResponseHash("hello world!") }, signature, edgeKey.address),
      ).to.equal(false);
      expect(await verifyServiceReceipt(edgeDomain(31_337n, OTHER_REGISTRY), receipt, signature, edgeKey.address)).to.equal(false);
      expect(await verifyServiceReceipt(domain, receipt, "0x1234", edgeKey.address)).to.equal(false);
    });
  });

  describe("UsageRoot", () => {
    it("round-trips and binds edge, epoch, root and count", async () => {
      const commitment = { edgeId: 7n, epoch: 4n, root: hex32("ee"), count: 9n };
      const signature = await signUsageRoot(edgeKey, domain, commitment);
      expect(await recoverUsageRootSigner(domain, { ...commitment, signature })).to.equal(edgeKey.address);
      expect(await verifyUsageCommitment(domain, { ...commitment, signature }, edgeKey.address)).to.equal(true);
      for (const changed of [{ epoch: 5n }, { count: 10n }, { root: hex32("ef") }, { edgeId: 8n }]) {
        expect(await verifyUsageCommitment(domain, { ...commitment, ...changed, signature }, edgeKey.address)).to.equal(false);
      }
      const byOther = await signUsageRoot(otherKey, domain, commitment);
      expect(await verifyUsageCommitment(domain, { ...commitment, signature: byOther }, edgeKey.address)).to.equal(false);
    });
  });

  describe("RouterHello", () => {
    it("round-trips and binds the router's nonce", async () => {
      const signature = await signRouterHello(edgeKey, domain, { edgeId: 7n, nonce: hex32("01") });
      expect(await recoverRouterHelloSigner(domain, { edgeId: 7n, nonce: hex32("01") }, signature)).to.equal(edgeKey.address);
      expect(await recoverRouterHelloSigner(domain, { edgeId: 7n, nonce: hex32("02") }, signature)).to.not.equal(edgeKey.address);
    });
  });

  describe("usage leaves and proofs", () => {
    it("the leaf hash is the library's StandardMerkleTree leaf hash of the ABI encoding", () => {
      const e = entry(3n);
      const tree = StandardMerkleTree.of([usageLeaf(e)], [...USAGE_LEAF_ENCODING]);
      expect(usageLeafHash(e)).to.equal(tree.leafHash(usageLeaf(e)));
      const encoded = AbiCoder.defaultAbiCoder().encode([...USAGE_LEAF_ENCODING], usageLeaf(e));
      expect(usageLeafHash(e)).to.equal(ethersKeccak(ethersKeccak(encoded)));
    });

    it("every entry's proof verifies with the library and with processUsageProof; a changed entry does not", () => {
      const entries = [0n, 1n, 2n, 3n, 4n].map((i) => entry(i));
      const tree = buildUsageTree(entries);
      for (const [i, e] of entries.entries()) {
        const proof = tree.getProof(i) as Hex[];
        expect(verifyUsageProof(tree.root as Hex, e, proof)).to.equal(true);
        expect(processUsageProof(e, proof)).to.equal(tree.root);
        expect(verifyUsageProof(tree.root as Hex, { ...e, completionTokens: e.completionTokens + 1 }, proof)).to.equal(false);
        expect(processUsageProof({ ...e, index: e.index + 1n }, proof)).to.not.equal(tree.root);
      }
    });
  });
});
