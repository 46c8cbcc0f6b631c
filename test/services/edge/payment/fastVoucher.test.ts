// lib/protocol/fastVoucher.ts: the native-secp256k1 voucher verifier, against viem's
// recoverVoucherSigner/voucherDigest and ComputeMarket's own voucherDigest and ECDSA rules.
import { expect } from "chai";
import { getAddress } from "viem";
import type { Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";

import { marketDomain, recoverVoucherSigner, signVoucher, voucherDigest } from "../../../../lib/protocol/eip712.ts";
import type { Voucher } from "../../../../lib/protocol/eip712.ts";
import { createVoucherVerifier, InvalidVoucherSignatureError } from "../../../../lib/protocol/fastVoucher.ts";
import { deployMarketWithSession, type SessionEnv } from "../../../helpers/market.ts";
import { connect, type Connection } from "../../../helpers/protocol.ts";

const N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
const account = privateKeyToAccount("0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d");
const domain = marketDomain(31337n, "0x5FbDB2315678afecb367f032d93F642f64180aa3");

/** The malleable twin of `signature`: s' = n - s, v flipped (same signer to ecrecover without the low-s rule). */
function flipS(signature: Hex): Hex {
  const r = signature.slice(2, 66);
  const s = BigInt(`0x${signature.slice(66, 130)}`);
  const v = Number.parseInt(signature.slice(130, 132), 16);
  return `0x${r}${(N - s).toString(16).padStart(64, "0")}${(v === 27 ? 28 : 27).toString(16)}`;
}

function voucherN(i: number): Voucher {
  return {
    payer: account.address,
    edgeId: BigInt(1 + (i % 3)),
    sessionId: BigInt(i + 1),
    cumulativeAmount: BigInt(i) * 10n ** 17n + 1n,
    expiry: 1_800_000_000n + BigInt(i),
  };
}

describe("fastVoucher", () => {
  const verifier = createVoucherVerifier(domain);

  describe("digest", () => {
    it("equals viem's EIP-712 voucherDigest", () => {
      for (let i = 0; i < 20; i++) {
        const v = voucherN(i);
        expect(`0x${Buffer.from(verifier.digest(v)).toString("hex")}`).to.equal(voucherDigest(domain, v));
      }
    });

    it("rejects a field that is not a uint256", () => {
      expect(() => verifier.digest({ ...voucherN(1), cumulativeAmount: 1n << 256n })).to.throw(RangeError, /cumulativeAmount/);
      expect(() => verifier.digest({ ...voucherN(1), expiry: -1n })).to.throw(RangeError, /expiry/);
    });
  });

  describe("recoverSigner", () => {
    it("recovers the same signer as viem for valid signatures", async () => {
      for (let i = 0; i < 10; i++) {
        const v = voucherN(i);
        const sig = await signVoucher(account, domain, v);
        expect(verifier.recoverSigner(v, sig)).to.equal(account.address);
        expect(verifier.recoverSigner(v, sig)).to.equal(await recoverVoucherSigner(domain, v, sig));
      }
    });

    it("recovers an unrelated address for a voucher altered after signing", async () => {
      const v = voucherN(3);
      const sig = await signVoucher(account, domain, v);
      const tampered = { ...v, cumulativeAmount: v.cumulativeAmount * 10n };
      const recovered = verifier.recoverSigner(tampered, sig);
      expect(recovered).to.not.equal(account.address);
      expect(recovered).to.equal(await recoverVoucherSigner(domain, tampered, sig));
    });

    it("rejects the flipped-s twin that viem still recovers to the signer", async () => {
      const v = voucherN(2);
      const twin = flipS(await signVoucher(account, domain, v));
      expect(await recoverVoucherSigner(domain, v, twin)).to.equal(account.address); // viem is laxer
      expect(() => verifier.recoverSigner(v, twin)).to.throw(InvalidVoucherSignatureError, /s-malleable/);
    });

    it("rejects v = 0/1 (viem accepts it), a 64-byte signature and r = 0", async () => {
      const v = voucherN(4);
      const sig = await signVoucher(account, domain, v);
      const v01 = `${sig.slice(0, 130)}${sig.endsWith("1b") ? "00" : "01"}` as Hex;
      expect(await recoverVoucherSigner(domain, v, v01)).to.equal(account.address);
      expect(() => verifier.recoverSigner(v, v01)).to.throw(InvalidVoucherSignatureError, /\(v\)/);
      expect(() => verifier.recoverSigner(v, sig.slice(0, 130) as Hex)).to.throw(InvalidVoucherSignatureError, /\(length\)/);
      expect(() => verifier.recoverSigner(v, `0x${"00".repeat(32)}${sig.slice(66)}` as Hex)).to.throw(
        InvalidVoucherSignatureError,
        /\(r\)/,
      );
    });

    it("recovers thousands of signatures per second (logged)", async () => {
      const sigs = await Promise.all(Array.from({ length: 50 }, (_, i) => signVoucher(account, domain, voucherN(i))));
      const rounds = 4_000;
      const start = performance.now();
      for (let i = 0; i < rounds; i++) verifier.recoverSigner(voucherN(i % 50), sigs[i % 50]);
      const perSecond = rounds / ((performance.now() - start) / 1000);
      console.log(`      fastVoucher: ${Math.round(perSecond)} recoveries/s (native secp256k1)`);
      // viem does ~600/s here; anything under 3,000 means the native addon is not in use.
      expect(perSecond).to.be.greaterThan(3_000);
    });
  });

  describe("against ComputeMarket", () => {
    let conn: Connection;
    before(async () => {
      conn = await connect();
    });

    async function marketFixture() {
      return deployMarketWithSession(conn);
    }

    async function payerVoucher(env: SessionEnv): Promise<Voucher> {
      const now = BigInt(await conn.networkHelpers.time.latest());
      return {
        payer: getAddress(env.payer.address),
        edgeId: env.edgeId,
        sessionId: env.sessionId,
        cumulativeAmount: 10n ** 18n,
        expiry: now + 3_600n,
      };
    }

    it("computes the contract's voucherDigest and recovers what it accepts", async () => {
      const env = await conn.networkHelpers.loadFixture(marketFixture);
      const chainDomain = marketDomain(env.domain.chainId as bigint, getAddress(await env.market.getAddress()));
      const fast = createVoucherVerifier(chainDomain);
      const v = await payerVoucher(env);
      expect(`0x${Buffer.from(fast.digest(v)).toString("hex")}`).to.equal(await env.market.voucherDigest(v));
      const sig = (await env.payer.signTypedData(env.domain, { Voucher: [...VOUCHER_FIELDS] }, v)) as Hex;
      expect(fast.recoverSigner(v, sig)).to.equal(getAddress(env.payer.address));
      await expect(env.market.connect(env.relayer).redeem(v, sig)).to.emit(env.market, "Redeemed");
    });

    it("rejects a flipped-s signature exactly as the contract does", async () => {
      const env = await conn.networkHelpers.loadFixture(marketFixture);
      const chainDomain = marketDomain(env.domain.chainId as bigint, getAddress(await env.market.getAddress()));
      const fast = createVoucherVerifier(chainDomain);
      const v = await payerVoucher(env);
      const sig = (await env.payer.signTypedData(env.domain, { Voucher: [...VOUCHER_FIELDS] }, v)) as Hex;
      const twin = flipS(sig);
      expect(() => fast.recoverSigner(v, twin)).to.throw(InvalidVoucherSignatureError);
      const s = `0x${twin.slice(66, 130)}`;
      await expect(env.market.connect(env.relayer).redeem(v, twin))
        .to.be.revertedWithCustomError(env.market, "ECDSAInvalidSignatureS")
        .withArgs(s);
    });
  });
});

const VOUCHER_FIELDS = [
  { name: "payer", type: "address" },
  { name: "edgeId", type: "uint256" },
  { name: "sessionId", type: "uint256" },
  { name: "cumulativeAmount", type: "uint256" },
  { name: "expiry", type: "uint256" },
] as const;
