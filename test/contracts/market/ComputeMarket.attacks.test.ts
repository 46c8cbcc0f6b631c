import { expect } from "chai";
import type { Signer, TransactionReceipt } from "ethers";
import { Signature } from "ethers";

import {
  deployMarketWithSession,
  FEE_BPS,
  feeOf,
  MODEL,
  recoverVoucherSigner,
  type SessionEnv,
  signVoucherIn,
  THAWING_PERIOD,
  type Voucher,
  voucherFor,
} from "../../helpers/market.ts";
import { connect, type Connection, TOKEN } from "../../helpers/protocol.ts";

/** secp256k1 group order, to build the high-s twin of a signature. */
const SECP256K1_N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;

describe("ComputeMarket attacks", () => {
  let conn: Connection;
  before(async () => {
    conn = await connect();
  });

  function withSession() {
    return deployMarketWithSession(conn);
  }

  async function latest() {
    return BigInt(await conn.networkHelpers.time.latest());
  }
  function sign(env: SessionEnv, v: Voucher, signer: Signer = env.payer) {
    return signVoucherIn(env.domain, signer, v);
  }
  async function voucher(env: SessionEnv, cumulative: bigint, overrides: Partial<Voucher> = {}) {
    return voucherFor(conn, env, cumulative, overrides);
  }
  /** `operator`'s earnings in the market (credited by redemptions, not yet withdrawn). */
  function earned(env: SessionEnv, operator: { address: string }) {
    return env.market.earnings(operator.address);
  }
  /** The net amount an operator is credited for `paid`. */
  function net(paid: bigint) {
    return paid - feeOf(paid);
  }

  describe("replay", () => {
    it("pays the same voucher once: the second redemption reverts and credits nothing", async () => {
      const env = await conn.networkHelpers.loadFixture(withSession);
      const { market: m, operator } = env;
      const v = await voucher(env, 100n * TOKEN);
      const s = await sign(env, v);
      await m.redeem(v, s);
      expect(await earned(env, operator)).to.equal(net(100n * TOKEN));
      await expect(m.redeem(v, s))
        .to.be.revertedWithCustomError(m, "MarketVoucherNotNewer")
        .withArgs(100n * TOKEN, 100n * TOKEN);
      expect(await m.redeemMany.staticCall([v, v], [s, s])).to.equal(0n);
      await m.redeemMany([v, v], [s, s]);
      expect(await earned(env, operator)).to.equal(net(100n * TOKEN));
      expect((await m.escrow(env.payer.address)).balance).to.equal(900n * TOKEN);
    });

    it("refuses the high-s twin of a signature (no malleated replay)", async () => {
      const env = await conn.networkHelpers.loadFixture(withSession);
      const v = await voucher(env, 100n);
      const sig = Signature.from(await sign(env, v));
      const highS = conn.ethers.toBeHex(SECP256K1_N - BigInt(sig.s), 32);
      const twin = conn.ethers.concat([sig.r, highS, conn.ethers.toBeHex(sig.v === 27 ? 28 : 27, 1)]);
      await expect(env.market.redeem(v, twin)).to.be.revertedWithCustomError(env.market, "ECDSAInvalidSignatureS").withArgs(highS);
    });
  });

  describe("rollback", () => {
    it("a lower cumulative voucher than what was redeemed reverts, and pays nothing in a batch", async () => {
      const env = await conn.networkHelpers.loadFixture(withSession);
      const { market: m, operator } = env;
      const high = await voucher(env, 80n * TOKEN);
      const low = await voucher(env, 30n * TOKEN);
      const lowSig = await sign(env, low);
      await m.redeem(high, await sign(env, high));
      await expect(m.redeem(low, lowSig))
        .to.be.revertedWithCustomError(m, "MarketVoucherNotNewer")
        .withArgs(30n * TOKEN, 80n * TOKEN);
      await m.redeemMany([low], [lowSig]);
      expect(await earned(env, operator)).to.equal(net(80n * TOKEN));
      expect(await m.redeemed(env.sessionId, env.edgeId)).to.equal(80n * TOKEN);
    });

    it("redeeming out of order pays the higher voucher in full and the older one nothing", async () => {
      const env = await conn.networkHelpers.loadFixture(withSession);
      const { market: m, operator } = env;
      const older = await voucher(env, 30n * TOKEN);
      const newer = await voucher(env, 80n * TOKEN);
      const sigs = [await sign(env, newer), await sign(env, older)];
      await m.redeemMany([newer, older], sigs);
      expect(await earned(env, operator)).to.equal(net(80n * TOKEN));
      expect((await m.session(env.sessionId)).spent).to.equal(80n * TOKEN);
    });
  });

  describe("binding of the signature", () => {
    it("a voucher for edge A does not redeem for edge B: the signature recovers another address", async () => {
      const env = await conn.networkHelpers.loadFixture(withSession);
      const v = await voucher(env, 50n * TOKEN);
      const s = await sign(env, v);
      const forged = { ...v, edgeId: env.edge2 };
      const recovered = recoverVoucherSigner(env.domain, forged, s);
      expect(recovered).not.to.equal(env.payer.address);
      await expect(env.market.connect(env.operator2).redeem(forged, s))
        .to.be.revertedWithCustomError(env.market, "MarketUnauthorizedSigner")
        .withArgs(env.payer.address, recovered);
    });

    it("a voucher for one session does not redeem in another session of the same payer", async () => {
      const env = await conn.networkHelpers.loadFixture(withSession);
      await env.market.connect(env.payer).openSession(MODEL, 500n * TOKEN, (await latest()) + 3_600n);
      const v = await voucher(env, 50n * TOKEN);
      const s = await sign(env, v);
      const forged = { ...v, sessionId: 2n };
      await expect(env.market.redeem(forged, s))
        .to.be.revertedWithCustomError(env.market, "MarketUnauthorizedSigner")
        .withArgs(env.payer.address, recoverVoucherSigner(env.domain, forged, s));
    });

    it("a voucher can not be moved to another payer's session", async () => {
      const env = await conn.networkHelpers.loadFixture(withSession);
      const { market: m, payer, payer2 } = env;
      await m.connect(payer2).deposit(payer2.address, 500n * TOKEN);
      await m.connect(payer2).openSession(MODEL, 500n * TOKEN, (await latest()) + 3_600n);
      const v = await voucher(env, 50n * TOKEN);
      const s = await sign(env, v);
      // same payer field: the session's payer differs
      await expect(m.redeem({ ...v, sessionId: 2n }, s))
        .to.be.revertedWithCustomError(m, "MarketPayerMismatch")
        .withArgs(2n, payer.address, payer2.address);
      // payer field rewritten too: the signature no longer matches
      const forged = { ...v, sessionId: 2n, payer: payer2.address };
      await expect(m.redeem(forged, s))
        .to.be.revertedWithCustomError(m, "MarketUnauthorizedSigner")
        .withArgs(payer2.address, recoverVoucherSigner(env.domain, forged, s));
    });

    it("another payer, or its gateway, can not sign vouchers drawing on this payer's escrow", async () => {
      const env = await conn.networkHelpers.loadFixture(withSession);
      const { market: m, payer, payer2 } = env;
      const theirGateway = conn.ethers.Wallet.createRandom();
      await m.connect(payer2).authorizeSigner(theirGateway.address);
      const v = await voucher(env, 50n * TOKEN);
      await expect(m.redeem(v, await sign(env, v, payer2)))
        .to.be.revertedWithCustomError(m, "MarketUnauthorizedSigner")
        .withArgs(payer.address, payer2.address);
      await expect(m.redeem(v, await sign(env, v, theirGateway)))
        .to.be.revertedWithCustomError(m, "MarketUnauthorizedSigner")
        .withArgs(payer.address, theirGateway.address);
      expect((await m.escrow(payer.address)).balance).to.equal(1_000n * TOKEN);
    });

    it("a voucher signed for another market deployment does not redeem here, but does there", async () => {
      const env = await conn.networkHelpers.loadFixture(withSession);
      const { market: m, token, registry, admin, payer } = env;
      const other = await conn.ethers.deployContract("ComputeMarket", [token, registry, admin.address, FEE_BPS, THAWING_PERIOD]);
      await token.connect(payer).approve(await other.getAddress(), conn.ethers.MaxUint256);
      await other.connect(payer).deposit(payer.address, 100n * TOKEN);
      await other.connect(payer).openSession(MODEL, 100n * TOKEN, (await latest()) + 3_600n);
      const otherDomain = { ...env.domain, verifyingContract: await other.getAddress() };
      const v = await voucher(env, 50n * TOKEN);
      const s = await signVoucherIn(otherDomain, payer, v);
      await expect(m.redeem(v, s))
        .to.be.revertedWithCustomError(m, "MarketUnauthorizedSigner")
        .withArgs(payer.address, recoverVoucherSigner(env.domain, v, s));
      await expect(other.redeem(v, s)).to.emit(other, "Redeemed");
    });

    it("a voucher signed for another chain id does not redeem", async () => {
      const env = await conn.networkHelpers.loadFixture(withSession);
      const chainId = BigInt(env.domain.chainId!);
      const foreign = { ...env.domain, chainId: chainId + 1n };
      const v = await voucher(env, 50n * TOKEN);
      const s = await signVoucherIn(foreign, env.payer, v);
      await expect(env.market.redeem(v, s))
        .to.be.revertedWithCustomError(env.market, "MarketUnauthorizedSigner")
        .withArgs(env.payer.address, recoverVoucherSigner(env.domain, v, s));
    });
  });

  describe("revoked signer", () => {
    it("serve, revoke, thaw, withdraw: the voucher signed before the revocation is still paid in full", async () => {
      const env = await conn.networkHelpers.loadFixture(withSession);
      const { market: m, payer, gateway, operator } = env;
      const served = await voucher(env, 400n * TOKEN);
      const s = await sign(env, served, gateway);
      // the payer is served on its gateway key, then tries to void the payment and run
      const revokedAt = (await latest()) + 10n;
      await conn.networkHelpers.time.setNextBlockTimestamp(revokedAt);
      await expect(m.connect(payer).revokeSigner(gateway.address))
        .to.emit(m, "SignerRevoked")
        .withArgs(payer.address, gateway.address, revokedAt + THAWING_PERIOD, env.sessionId);
      await m.connect(payer).thaw(env.deposited);
      const { thawEndsAt } = await m.escrow(payer.address);
      expect(thawEndsAt).to.be.gte(revokedAt + THAWING_PERIOD);
      // the withdrawal is mined a second before the thaw ends, the redemption at its last second
      await conn.networkHelpers.time.increaseTo(thawEndsAt - 2n);
      await expect(m.connect(payer).withdraw(payer.address)).to.be.revertedWithCustomError(m, "MarketStillThawing");
      expect(await m.canRedeemFrom(payer.address, gateway.address, env.sessionId)).to.equal(true);
      await expect(m.redeem(served, s)).to.emit(m, "Redeemed");
      expect(await earned(env, operator)).to.equal(net(400n * TOKEN));
      await m.connect(payer).withdraw(payer.address);
      expect((await m.escrow(payer.address)).balance).to.equal(0n);
    });

    it("a thaw started at the revocation ends no earlier than the revoked signer's window, even after the thawing period is shortened", async () => {
      const env = await conn.networkHelpers.loadFixture(withSession);
      const { market: m, payer, gateway, admin } = env;
      await m.connect(payer).revokeSigner(gateway.address);
      const windowEnd = await m.revocationWindowEnd(payer.address);
      await m.connect(admin).setThawingPeriod(60n);
      await m.connect(payer).thaw(env.deposited);
      expect((await m.escrow(payer.address)).thawEndsAt).to.equal(windowEnd);
      // a later thaw, once the window has passed, gets the (new) thawing period
      await conn.networkHelpers.time.increaseTo(windowEnd);
      await m.connect(payer).thaw(env.deposited);
      expect((await m.escrow(payer.address)).thawEndsAt).to.equal((await latest()) + 60n);
    });

    it("the revoked signer's vouchers are refused after the window, and for sessions opened after the revocation", async () => {
      const env = await conn.networkHelpers.loadFixture(withSession);
      const { market: m, payer, gateway } = env;
      await m.connect(payer).revokeSigner(gateway.address);
      // signed after the revocation, for a session that did not exist before it
      const expiry = (await latest()) + 86_400n;
      await m.connect(payer).openSession(MODEL, 100n * TOKEN, expiry);
      const later = await voucher(env, 10n * TOKEN, { sessionId: 2n });
      const sLater = await sign(env, later, gateway);
      expect(await m.canRedeemFrom(payer.address, gateway.address, 2n)).to.equal(false);
      await expect(m.redeem(later, sLater))
        .to.be.revertedWithCustomError(m, "MarketUnauthorizedSigner")
        .withArgs(payer.address, gateway.address);
      // after the window, even a voucher for an old session is refused
      const old = await voucher(env, 20n * TOKEN);
      const sOld = await sign(env, old, gateway);
      // mined at the window's last second, then one second too late
      await conn.networkHelpers.time.increaseTo((await m.revocationWindowEnd(payer.address)) - 1n);
      await m.redeem(old, sOld);
      const older = await voucher(env, 30n * TOKEN);
      await expect(m.redeem(older, await sign(env, older, gateway)))
        .to.be.revertedWithCustomError(m, "MarketUnauthorizedSigner")
        .withArgs(payer.address, gateway.address);
      expect(await m.redeemed(env.sessionId, env.edgeId)).to.equal(20n * TOKEN);
      // the payer's own signature still works for the rest
      await m.redeem(older, await sign(env, older));
      expect(await m.redeemed(env.sessionId, env.edgeId)).to.equal(30n * TOKEN);
    });

    it("revoking a signer that is not authorized changes nothing: no window, no event", async () => {
      const env = await conn.networkHelpers.loadFixture(withSession);
      const { market: m, payer, outsider } = env;
      await expect(m.connect(payer).revokeSigner(outsider.address)).to.not.emit(m, "SignerRevoked");
      expect(await m.revocationWindowEnd(payer.address)).to.equal(0n);
    });
  });

  describe("escrow and budget limits", () => {
    it("a payer can not pull tokens out before the thaw ends: an edge redeeming during the thaw is paid in full, withdraw gets the rest", async () => {
      const env = await conn.networkHelpers.loadFixture(withSession);
      const { market: m, token, payer, operator } = env;
      const served = await voucher(env, 400n * TOKEN);
      const s = await sign(env, served);
      // the payer tries to run with its escrow right after being served
      await m.connect(payer).thaw(1_000n * TOKEN);
      const { thawEndsAt } = await m.escrow(payer.address);
      await expect(m.connect(payer).withdraw(payer.address))
        .to.be.revertedWithCustomError(m, "MarketStillThawing")
        .withArgs(payer.address, thawEndsAt);
      // closing the session does not stop the payment either
      await m.connect(payer).closeSession(env.sessionId);
      await m.redeem(served, s);
      expect(await earned(env, operator)).to.equal(net(400n * TOKEN));
      await conn.networkHelpers.time.increaseTo(thawEndsAt);
      await expect(m.connect(payer).withdraw(payer.address)).to.changeTokenBalances(
        conn.ethers,
        token,
        [payer, m],
        [600n * TOKEN, -600n * TOKEN],
      );
      // the payer's withdrawal could not touch the operator's earnings: they are still withdrawable
      await expect(m.connect(operator).withdrawEarnings(operator.address)).to.changeTokenBalances(
        conn.ethers,
        token,
        [operator, m],
        [net(400n * TOKEN), -net(400n * TOKEN)],
      );
      // what stays in the market is exactly the fee
      expect(await token.balanceOf(await m.getAddress())).to.equal(feeOf(400n * TOKEN));
      expect(await m.pendingFees()).to.equal(feeOf(400n * TOKEN));
    });

    it("sessions sharing one escrow can not together pay more than it holds", async () => {
      const env = await conn.networkHelpers.loadFixture(withSession);
      const { market: m, payer } = env;
      await m.connect(payer).openSession(MODEL, 800n * TOKEN, (await latest()) + 3_600n);
      const a = await voucher(env, 500n * TOKEN);
      const b = await voucher(env, 800n * TOKEN, { sessionId: 2n, edgeId: env.edge2 });
      const paid = await m.redeemMany.staticCall([a, b], [await sign(env, a), await sign(env, b)]);
      await expect(m.redeemMany([a, b], [await sign(env, a), await sign(env, b)]))
        .to.emit(m, "RedemptionShortfall")
        .withArgs(2n, env.edge2, payer.address, 800n * TOKEN, 500n * TOKEN);
      expect(paid).to.equal(1_000n * TOKEN);
      expect((await m.escrow(payer.address)).balance).to.equal(0n);
    });

    it("many edges can not together exceed the session's budget", async () => {
      const env = await conn.networkHelpers.loadFixture(withSession);
      const { market: m } = env;
      const a = await voucher(env, 400n * TOKEN);
      const b = await voucher(env, 400n * TOKEN, { edgeId: env.edge2 });
      await m.redeem(a, await sign(env, a));
      await m.redeem(b, await sign(env, b));
      expect((await m.session(env.sessionId)).spent).to.equal(env.budget);
      expect(await m.redeemed(env.sessionId, env.edge2)).to.equal(100n * TOKEN);
      expect((await m.escrow(env.payer.address)).balance).to.equal(env.deposited - env.budget);
    });
  });

  describe("fees", () => {
    it("burnFees lowers the total supply by exactly the fees, and the operator is credited paid minus fee", async () => {
      const env = await conn.networkHelpers.loadFixture(withSession);
      const { market: m, token, operator } = env;
      const amounts = [7n * TOKEN + 3n, 11n * TOKEN + 999n, 39n];
      let cumulative = 0n;
      let fees = 0n;
      for (const a of amounts) {
        cumulative += a;
        fees += feeOf(a);
        const v = await voucher(env, cumulative);
        await m.redeem(v, await sign(env, v));
      }
      expect(await earned(env, operator)).to.equal(cumulative - fees);
      expect(await m.pendingFees()).to.equal(fees);
      const supply = await token.totalSupply();
      await m.burnFees();
      expect(await token.totalSupply()).to.equal(supply - fees);
      expect(await token.balanceOf(await m.getAddress())).to.equal((await m.escrow(env.payer.address)).balance + cumulative - fees);
      // withdrawing the earnings burns nothing and leaves the market holding the escrow only
      await expect(m.connect(operator).withdrawEarnings(operator.address)).to.changeTokenBalances(
        conn.ethers,
        token,
        [operator],
        [cumulative - fees],
      );
      expect(await token.totalSupply()).to.equal(supply - fees);
      expect(await token.balanceOf(await m.getAddress())).to.equal((await m.escrow(env.payer.address)).balance);
    });

    it("rounds the fee down: the edge keeps the dust, tiny amounts pay no fee", async () => {
      const env = await conn.networkHelpers.loadFixture(withSession);
      const { market: m, operator } = env;
      // FEE_BPS = 250: 39 wei * 250 / 10_000 = 0.975 -> 0; 40 wei -> 1
      expect((39n * FEE_BPS) / 10_000n).to.equal(0n);
      let v = await voucher(env, 1n);
      await m.redeem(v, await sign(env, v));
      expect(await earned(env, operator)).to.equal(1n); // 1 wei: no fee
      v = await voucher(env, 40n); // pays 39
      await expect(m.redeem(v, await sign(env, v)))
        .to.emit(m, "Redeemed")
        .withArgs(env.sessionId, env.edgeId, env.payer.address, operator.address, 40n, 39n, 0n);
      v = await voucher(env, 80n); // pays 40
      await expect(m.redeem(v, await sign(env, v)))
        .to.emit(m, "Redeemed")
        .withArgs(env.sessionId, env.edgeId, env.payer.address, operator.address, 80n, 40n, 1n);
      expect(await m.pendingFees()).to.equal(1n);
      expect(await earned(env, operator)).to.equal(1n + 39n + 39n);
    });
  });

  describe("reentrancy", () => {
    /** Indices of the market's event `name` and of the token's Transfer in `receipt`'s logs. */
    function order(receipt: TransactionReceipt, env: SessionEnv, name: string) {
      let eventAt = -1;
      let transferAt = -1;
      receipt.logs.forEach((log, i) => {
        const parsedMarket = log.address === env.market.target ? env.market.interface.parseLog(log) : null;
        const parsedToken = log.address === env.token.target ? env.token.interface.parseLog(log) : null;
        if (parsedMarket?.name === name) eventAt = i;
        if (parsedToken?.name === "Transfer") transferAt = i;
      });
      return { eventAt, transferAt };
    }

    it("redeem moves no tokens; withdrawEarnings, withdraw and deposit update the books before the token moves", async () => {
      const env = await conn.networkHelpers.loadFixture(withSession);
      const { market: m, payer, operator } = env;
      const v = await voucher(env, 5n * TOKEN);
      const r1 = (await (await m.redeem(v, await sign(env, v))).wait())!;
      const o1 = order(r1, env, "Redeemed");
      expect(o1.eventAt).to.be.greaterThanOrEqual(0);
      expect(o1.transferAt).to.equal(-1); // no external token call to re-enter from
      const o0 = order((await (await m.connect(operator).withdrawEarnings(operator.address)).wait())!, env, "EarningsWithdrawn");
      expect(o0.eventAt).to.be.greaterThanOrEqual(0);
      expect(o0.eventAt).to.be.lessThan(o0.transferAt);
      await m.connect(payer).thaw(1n * TOKEN);
      await conn.networkHelpers.time.increase(THAWING_PERIOD);
      const o2 = order((await (await m.connect(payer).withdraw(payer.address)).wait())!, env, "Withdrawn");
      expect(o2.eventAt).to.be.greaterThanOrEqual(0);
      expect(o2.eventAt).to.be.lessThan(o2.transferAt);
      const o3 = order((await (await m.connect(payer).deposit(payer.address, 1n)).wait())!, env, "Deposited");
      expect(o3.eventAt).to.be.greaterThanOrEqual(0);
      expect(o3.eventAt).to.be.lessThan(o3.transferAt);
    });
  });
});
