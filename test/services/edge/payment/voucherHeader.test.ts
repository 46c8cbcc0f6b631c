// lib/protocol/voucherHeader.ts: the x-tideway-voucher header encoding shared by gateways,
// the router and the edge.
import { expect } from "chai";
import type { Hex } from "viem";

import type { Voucher } from "../../../../lib/protocol/eip712.ts";
import { decodeVoucherHeader, encodeVoucherHeader, VOUCHER_HEADER, VoucherHeaderError } from "../../../../lib/protocol/voucherHeader.ts";

const voucher: Voucher = {
  payer: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
  edgeId: 7n,
  sessionId: 123n,
  cumulativeAmount: (1n << 255n) + 12345n, // beyond 2^53 and 2^128: must survive as a string
  expiry: 1_900_000_000n,
};
const signature = `0x${"ab".repeat(64)}1b` as Hex;

function b64(json: unknown): string {
  return Buffer.from(JSON.stringify(json), "utf8").toString("base64url");
}

describe("voucherHeader", () => {
  describe("encodeVoucherHeader / decodeVoucherHeader", () => {
    it("round-trips a voucher with 256-bit amounts exactly", () => {
      const value = encodeVoucherHeader(voucher, signature);
      expect(value).to.match(/^[A-Za-z0-9_-]+$/);
      expect(decodeVoucherHeader(value)).to.deep.equal({ voucher, signature });
      expect(VOUCHER_HEADER).to.equal("x-tideway-voucher");
    });

    it("writes integers as decimal strings in base64url JSON", () => {
      const json = JSON.parse(Buffer.from(encodeVoucherHeader(voucher, signature), "base64url").toString("utf8"));
      expect(json.voucher.cumulativeAmount).to.equal(voucher.cumulativeAmount.toString());
      expect(json.voucher.edgeId).to.equal("7");
      expect(json.signature).to.equal(signature);
    });

    it("checksums a lower-case payer", () => {
      const value = b64({
        voucher: { payer: voucher.payer.toLowerCase(), edgeId: "7", sessionId: "123", cumulativeAmount: "1", expiry: "2" },
        signature,
      });
      expect(decodeVoucherHeader(value).voucher.payer).to.equal(voucher.payer);
    });
  });

  describe("decodeVoucherHeader on malformed input", () => {
    const good = { payer: voucher.payer, edgeId: "7", sessionId: "123", cumulativeAmount: "5", expiry: "9" };
    const cases: [string, string][] = [
      ["empty", ""],
      ["not base64url", "a+b/c"],
      ["not JSON", Buffer.from("{nope").toString("base64url")],
      ["a missing field", b64({ voucher: { ...good, expiry: undefined }, signature })],
      ["a negative amount", b64({ voucher: { ...good, cumulativeAmount: "-1" }, signature })],
      ["a number instead of a string", b64({ voucher: { ...good, cumulativeAmount: 5 }, signature })],
      ["an amount above 2^256-1", b64({ voucher: { ...good, cumulativeAmount: (1n << 256n).toString() }, signature })],
      ["a hex amount", b64({ voucher: { ...good, cumulativeAmount: "0x10" }, signature })],
      ["a short signature", b64({ voucher: good, signature: `0x${"ab".repeat(64)}` })],
      ["a bad payer", b64({ voucher: { ...good, payer: "0x1234" }, signature })],
      ["an unknown field", b64({ voucher: good, signature, extra: 1 })],
      ["an over-long value", "A".repeat(4096)],
    ];
    for (const [what, value] of cases) {
      it(`throws VoucherHeaderError for ${what}`, () => {
        expect(() => decodeVoucherHeader(value)).to.throw(VoucherHeaderError, /malformed x-tideway-voucher header/);
      });
    }
  });
});
