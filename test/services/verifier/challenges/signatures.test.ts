// The verifier's native EIP-712 digests and signer recovery for the edge's receipts and usage
// roots, against viem (the reference: what the edge signs with), and the evidence hash.
import { expect } from "chai";
import { hashTypedData, recoverAddress, keccak256, toHex } from "viem";
import type { Address, Hex } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";

import {
  edgeDomain,
  SERVICE_RECEIPT_TYPES,
  signServiceReceipt,
  signUsageRoot,
  USAGE_ROOT_TYPES,
} from "../../../../lib/protocol/edgeProofs.ts";
import type { ServiceReceipt } from "../../../../lib/protocol/edgeProofs.ts";
import { canonicalJson, faultEvidenceHash } from "../../../../verifier/challenges/evidence.ts";
import { edgeSignatures } from "../../../../verifier/challenges/signatures.ts";

const N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
const domain = edgeDomain(31337n, "0x5FbDB2315678afecb367f032d93F642f64180aa3" as Address);
const edgeKey = privateKeyToAccount(generatePrivateKey());

const receipt = (i: number): ServiceReceipt => ({
  edgeId: BigInt(i + 1) * 1_000_003n,
  epoch: BigInt(i) * 7n,
  nonce: keccak256(toHex(`nonce-${i}`)),
  requestHash: keccak256(toHex(`request-${i}`)),
  responseHash: keccak256(toHex(`response-${i}`)),
  promptTokens: i * 13,
  completionTokens: 0xffffffff - i,
});

/** The high-s twin of a (low-s) signature: also valid for the same key to a lax verifier. */
function highSTwin(signature: Hex): Hex {
  const s = BigInt(`0x${signature.slice(66, 130)}`);
  const v = Number.parseInt(signature.slice(130, 132), 16);
  return `${signature.slice(0, 66)}${(N - s).toString(16).padStart(64, "0")}${(v === 27 ? 28 : 27).toString(16)}` as Hex;
}

describe("native edge signatures (verifier)", function () {
  const sig = edgeSignatures(domain);

  it("computes the same ServiceReceipt and UsageRoot digests as viem", function () {
    for (let i = 0; i < 5; i++) {
      const r = receipt(i);
      expect(toHex(sig.receiptDigest(r))).to.equal(
        hashTypedData({ domain, types: SERVICE_RECEIPT_TYPES, primaryType: "ServiceReceipt", message: r }),
      );
      const c = { edgeId: r.edgeId, epoch: r.epoch, root: r.nonce, count: BigInt(i) * 1000n };
      expect(toHex(sig.usageRootDigest(c))).to.equal(
        hashTypedData({ domain, types: USAGE_ROOT_TYPES, primaryType: "UsageRoot", message: c }),
      );
    }
  });

  it("recovers the edge key from what the edge signs (viem), and nobody from a changed field or another domain", async function () {
    const r = receipt(3);
    const signature = await signServiceReceipt(edgeKey, domain, r);
    expect(sig.receiptSigner(r, signature)).to.equal(edgeKey.address);
    expect(sig.receiptSigner({ ...r, completionTokens: r.completionTokens - 1 }, signature)).to.not.equal(edgeKey.address);
    expect(edgeSignatures(edgeDomain(1n, domain.verifyingContract as Address)).receiptSigner(r, signature)).to.not.equal(edgeKey.address);
    const c = { edgeId: 4n, epoch: 9n, root: r.requestHash, count: 12n };
    const rootSig = await signUsageRoot(edgeKey, domain, c);
    expect(sig.usageRootSigner({ ...c, signature: rootSig })).to.equal(edgeKey.address);
    expect(sig.usageRootSigner({ ...c, count: 13n, signature: rootSig })).to.not.equal(edgeKey.address);
  });

  it("refuses malformed signatures, v 0/1 and the high-s twin (which viem would accept), as OpenZeppelin's ECDSA does", async function () {
    const r = receipt(1);
    const signature = await signServiceReceipt(edgeKey, domain, r);
    const twin = highSTwin(signature);
    expect(await recoverAddress({ hash: toHex(sig.receiptDigest(r)), signature: twin })).to.equal(edgeKey.address);
    expect(sig.receiptSigner(r, twin)).to.equal(undefined);
    expect(sig.receiptSigner(r, signature.slice(0, 130) as Hex)).to.equal(undefined);
    expect(sig.receiptSigner(r, `${signature.slice(0, 130)}1d` as Hex)).to.equal(undefined); // v = 29
    expect(sig.receiptSigner(r, `0x${"00".repeat(64)}1b` as Hex)).to.equal(undefined); // r = s = 0
    const v01 = `${signature.slice(0, 130)}${signature.endsWith("1b") ? "00" : "01"}` as Hex;
    expect(sig.receiptSigner(r, v01)).to.equal(undefined);
    // A receipt field out of range recovers nobody instead of throwing.
    expect(sig.receiptSigner({ ...r, promptTokens: -1 }, signature)).to.equal(undefined);
  });

  describe("faultEvidenceHash", function () {
    it("hashes canonical JSON: key order does not matter, content does", function () {
      const a = { kind: "WrongAnswer", edgeId: "3", receipt: { b: 1, a: [{ y: 2, x: 1 }] } };
      const b = { receipt: { a: [{ x: 1, y: 2 }], b: 1 }, edgeId: "3", kind: "WrongAnswer" };
      expect(canonicalJson(a)).to.equal('{"edgeId":"3","kind":"WrongAnswer","receipt":{"a":[{"x":1,"y":2}],"b":1}}');
      expect(faultEvidenceHash(a)).to.equal(faultEvidenceHash(b));
      expect(faultEvidenceHash(a)).to.equal(keccak256(toHex(canonicalJson(a))));
      expect(faultEvidenceHash({ ...a, edgeId: "4" })).to.not.equal(faultEvidenceHash(a));
    });
  });
});
