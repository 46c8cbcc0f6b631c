// edge/gpow/receipts.ts: a signed receipt carries exactly the fields it was asked to sign plus the
// edge id, recovers to the edge key in the edge domain, and is refused for malformed input; with
// the private key it signs natively, byte for byte what viem signs.
import { expect } from "chai";
import { keccak256, toHex } from "viem";
import type { Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";

import { createReceiptSigner } from "../../../../edge/gpow/receipts.ts";
import {
  chatResponseHash,
  edgeDomain,
  requestHash,
  SERVICE_RECEIPT_TYPES,
  verifyServiceReceipt,
} from "../../../../lib/protocol/edgeProofs.ts";

const privateKey: Hex = `0x${"33".repeat(32)}`;
const account = privateKeyToAccount(privateKey);
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
  for (const mode of ["viem", "native"] as const) {
    const make = () => createReceiptSigner({ account, domain, edgeId: 9n, ...(mode === "native" ? { privateKey } : {}) });

    describe(`sign (${mode})`, () => {
      it("signs the fields with the edge id under the edge key", async () => {
        const signer = make();
        expect(signer.native).to.equal(mode === "native");
        const signed = await signer.sign(fields);
        const { signature, ...receipt } = signed;
        expect(receipt).to.deep.equal({ edgeId: 9n, ...fields });
        expect(await verifyServiceReceipt(domain, receipt, signature, account.address)).to.equal(true);
        // Bound to this edge id and this challenge: another edge id or nonce does not verify.
        expect(await verifyServiceReceipt(domain, { ...receipt, edgeId: 10n }, signature, account.address)).to.equal(false);
        expect(
          await verifyServiceReceipt(domain, { ...receipt, nonce: keccak256(toHex("challenge-2")) }, signature, account.address),
        ).to.equal(false);
      });

      it("refuses a malformed nonce and token counts outside uint32", async () => {
        const signer = make();
        for (const bad of [{ nonce: "0x1234" as const }, { promptTokens: -1 }, { completionTokens: 2 ** 32 }, { promptTokens: 1.5 }]) {
          const err = await signer.sign({ ...fields, ...bad }).then(
            () => undefined,
            (e: unknown) => e,
          );
          expect(err).to.be.instanceOf(TypeError);
        }
      });
    });
  }

  describe("sign (native against viem)", () => {
    it("gives the signature viem's signTypedData gives, for varied receipts", async () => {
      const native = createReceiptSigner({ account, privateKey, domain, edgeId: 2n ** 200n + 5n });
      for (let i = 0; i < 16; i++) {
        const f = {
          epoch: BigInt(i) * 1_000_003n,
          nonce: keccak256(toHex(`nonce-${i}`)),
          requestHash: requestHash(`{"i":${i}}`),
          responseHash: chatResponseHash(`answer ${i}`),
          promptTokens: i * 7919,
          completionTokens: i === 15 ? 0xffffffff : i,
        };
        const { signature, ...receipt } = await native.sign(f);
        const expected = await account.signTypedData({
          domain,
          types: SERVICE_RECEIPT_TYPES,
          primaryType: "ServiceReceipt",
          message: receipt,
        });
        expect(signature).to.equal(expected);
      }
    });

    it("refuses a private key that is not the account's", () => {
      expect(() => createReceiptSigner({ account, privateKey: `0x${"34".repeat(32)}`, domain, edgeId: 9n })).to.throw(
        TypeError,
        account.address,
      );
    });
  });
});
