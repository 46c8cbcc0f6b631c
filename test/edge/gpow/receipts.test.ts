// edge/gpow/receipts.ts: a signed receipt carries exactly the fields it was asked to sign plus the
// edge id, recovers to the edge key in the edge domain, and is refused for malformed input.
import { expect } from "chai";
import { keccak256, toHex } from "viem";
import { privateKeyToAccount } from "viem/accounts";

import { createReceiptSigner } from "../../../edge/gpow/receipts.js";
import { chatResponseHash, edgeDomain, requestHash, verifyServiceReceipt } from "../../../lib/protocol/edgeProofs.js";

const account = privateKeyToAccount(`0x${"33".repeat(32)}`);
const domain = edgeDomain(31_337n, "0x5FbDB2315678afecb367f032d93F642f64180aa3");
const fields = {
  epoch: 4n,
  nonce: keccak256(toHex("challenge-1")),
  requestHash: requestHash('{"model":"m","messages":[]}'),
  responseHash: chatResponseHash("answer"),
  promptTokens: 12,
  completionTokens: 34,
};

describe("receipt signer (edge/gpow/receipts)", () => {
  describe("sign", () => {
    it("signs the fields with the edge id under the edge key", async () => {
      const signer = createReceiptSigner({ account, domain, edgeId: 9n });
      const signed = await signer.sign(fields);
      const { signature, ...receipt } = signed;
      expect(receipt).to.deep.equal({ edgeId: 9n, ...fields });
      expect(await verifyServiceReceipt(domain, receipt, signature, account.address)).to.equal(true);
      // Bound to this edge id and this challenge: another edge id or nonce does not verify.
      expect(await verifyServiceReceipt(domain, { ...receipt, edgeId: 10n }, signature, account.address)).to.equal(false);
      expect(await verifyServiceReceipt(domain, { ...receipt, nonce: keccak256(toHex("challenge-2")) }, signature, account.address)).to.equal(false);
    });

    it("refuses a malformed nonce and token counts outside uint32", async () => {
      const signer = createReceiptSigner({ account, domain, edgeId: 9n });
      for (const bad of [{ nonce: "0x1234" as const }, { promptTokens: -1 }, { completionTokens: 2 ** 32 }, { promptTokens: 1.5 }]) {
        const err = await signer.sign({ ...fields, ...bad }).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err).to.be.instanceOf(TypeError);
      }
    });
  });
});
