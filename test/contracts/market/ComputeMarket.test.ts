import { expect } from "chai";
import type { Signer } from "ethers";

import {
  deployMarket,
  deployMarketWithSession,
  FEE_BPS,
  feeOf,
  MAX_FEE_BPS,
  MAX_THAWING_PERIOD,
  MIN_THAWING_PERIOD,
  MODEL,
  Parameter,
  recoverVoucherSigner,
  type SessionEnv,
  signVoucherIn,
  THAWING_PERIOD,
  type Voucher,
  VOUCHER_TYPES,
  voucherFor,
} from "../../helpers/market.ts";
import ComputeMarketModule from "../../../ignition/modules/ComputeMarket.ts";
import { connect, type Connection, TOKEN, testParameters } from "../../helpers/protocol.ts";

const UINT96_MAX = 2n ** 96n - 1n;
const UINT40_MAX = 2n ** 40n - 1n;

describe("ComputeMarket", () => {
  let conn: Connection;
  before(async () => {
    conn = await connect();
  });

  function market() {
    return deployMarket(conn);
  }
  function withSession() {
    return deployMarketWithSession(conn);
  }

  async function latest() {
    return BigInt(await conn.networkHelpers.time.latest());
  }
  /** Fixes the next block's timestamp and returns it. */
  async function nextBlockAt(t: bigint) {
    await conn.networkHelpers.time.setNextBlockTimestamp(t);
    return t;
  }
  function sign(env: SessionEnv, v: Voucher, signer: Signer = env.payer) {
    return signVoucherIn(env.domain, signer, v);
  }
  async function voucher(env: SessionEnv, cumulative: bigint, overrides: Partial<Voucher> = {}) {
    return voucherFor(conn, env, cumulative, overrides);
  }
  /** `operator`'s earnings (credited by redemptions, not yet withdrawn). */
  function earned(env: SessionEnv, operator: { address: string }) {
    return env.market.earnings(operator.address);
  }
  /** Redeems `v` signed by the payer, submitted by the relayer. */
  async function redeem(env: SessionEnv, v: Voucher, signer: Signer = env.payer) {
    return env.market.connect(env.relayer).redeem(v, await sign(env, v, signer));
  }

  describe("Ignition module", () => {
    function defaults() {
      return conn.ignition.deploy(ComputeMarketModule, { parameters: testParameters });
    }

    it("deploys over the protocol's token and registry with a 1% fee, a one-day thaw and account 0 as admin", async () => {
      const { market: deployed } = await conn.networkHelpers.loadFixture(defaults);
      const m = await conn.ethers.getContractAt("ComputeMarket", await deployed.getAddress());
      const [admin] = await conn.ethers.getSigners();
      expect(await m.feeBps()).to.equal(100n);
      expect(await m.thawingPeriod()).to.equal(86_400n);
      expect(await m.hasRole(await m.GOVERNANCE_ROLE(), admin.address)).to.equal(true);
      const registry = await conn.ethers.getContractAt("EdgeRegistry", await m.registry());
      expect(await registry.hasRole(await registry.GOVERNANCE_ROLE(), admin.address)).to.equal(true);
      const token = await conn.ethers.getContractAt("EdgeToken", await m.token());
      expect(await token.balanceOf(admin.address)).to.equal(await token.totalSupply());
    });
  });

  describe("constructor", () => {
    it("wires the token and registry, grants both roles to the admin and sets the parameters", async () => {
      const { market: m, token, registry, admin, outsider } = await conn.networkHelpers.loadFixture(market);
      expect(await m.token()).to.equal(await token.getAddress());
      expect(await m.registry()).to.equal(await registry.getAddress());
      const gov = conn.ethers.id("GOVERNANCE_ROLE");
      expect(await m.GOVERNANCE_ROLE()).to.equal(gov);
      expect(await m.hasRole(gov, admin.address)).to.equal(true);
      expect(await m.hasRole(await m.DEFAULT_ADMIN_ROLE(), admin.address)).to.equal(true);
      expect(await m.hasRole(gov, outsider.address)).to.equal(false);
      expect(await m.feeBps()).to.equal(FEE_BPS);
      expect(await m.thawingPeriod()).to.equal(THAWING_PERIOD);
      expect(await m.sessionCount()).to.equal(0n);
      expect(await m.pendingFees()).to.equal(0n);
      expect(await m.MAX_FEE_BPS()).to.equal(MAX_FEE_BPS);
      expect(await m.MIN_THAWING_PERIOD()).to.equal(MIN_THAWING_PERIOD);
      expect(await m.MAX_THAWING_PERIOD()).to.equal(MAX_THAWING_PERIOD);
    });

    it("uses the EIP-712 domain Tideway ComputeMarket / 1 / chain id / its address", async () => {
      const { market: m } = await conn.networkHelpers.loadFixture(market);
      const [fields, name, version, chainId, verifyingContract] = await m.eip712Domain();
      expect(fields).to.equal("0x0f");
      expect(name).to.equal("Tideway ComputeMarket");
      expect(version).to.equal("1");
      expect(chainId).to.equal((await conn.ethers.provider.getNetwork()).chainId);
      expect(verifyingContract).to.equal(await m.getAddress());
    });

    it("declares the voucher type hash of the documented type string", async () => {
      const { market: m } = await conn.networkHelpers.loadFixture(market);
      expect(await m.VOUCHER_TYPEHASH()).to.equal(
        conn.ethers.id("Voucher(address payer,uint256 edgeId,uint256 sessionId,uint256 cumulativeAmount,uint256 expiry)"),
      );
    });

    it("emits ParameterChanged for both initial parameters", async () => {
      const { token, registry, admin } = await conn.networkHelpers.loadFixture(market);
      const m = await conn.ethers.deployContract("ComputeMarket", [token, registry, admin.address, 7n, 600n]);
      const tx = m.deploymentTransaction();
      await expect(tx).to.emit(m, "ParameterChanged").withArgs(Parameter.FeeBps, 0n, 7n);
      await expect(tx).to.emit(m, "ParameterChanged").withArgs(Parameter.ThawingPeriod, 0n, 600n);
    });

    it("accepts the bounds themselves", async () => {
      const { token, registry, admin } = await conn.networkHelpers.loadFixture(market);
      const low = await conn.ethers.deployContract("ComputeMarket", [token, registry, admin.address, 0n, MIN_THAWING_PERIOD]);
      expect(await low.feeBps()).to.equal(0n);
      expect(await low.thawingPeriod()).to.equal(MIN_THAWING_PERIOD);
      const high = await conn.ethers.deployContract("ComputeMarket", [token, registry, admin.address, MAX_FEE_BPS, MAX_THAWING_PERIOD]);
      expect(await high.feeBps()).to.equal(MAX_FEE_BPS);
      expect(await high.thawingPeriod()).to.equal(MAX_THAWING_PERIOD);
    });

    it("reverts on a zero token, registry or admin", async () => {
      const { market: m, token, registry, admin } = await conn.networkHelpers.loadFixture(market);
      const factory = await conn.ethers.getContractFactory("ComputeMarket");
      const zero = conn.ethers.ZeroAddress;
      await expect(factory.deploy(zero, registry, admin.address, FEE_BPS, THAWING_PERIOD)).to.be.revertedWithCustomError(
        m,
        "MarketZeroAddress",
      );
      await expect(factory.deploy(token, zero, admin.address, FEE_BPS, THAWING_PERIOD)).to.be.revertedWithCustomError(
        m,
        "MarketZeroAddress",
      );
      await expect(factory.deploy(token, registry, zero, FEE_BPS, THAWING_PERIOD)).to.be.revertedWithCustomError(m, "MarketZeroAddress");
    });

    it("reverts on a fee or thawing period out of bounds", async () => {
      const { market: m, token, registry, admin } = await conn.networkHelpers.loadFixture(market);
      const factory = await conn.ethers.getContractFactory("ComputeMarket");
      await expect(factory.deploy(token, registry, admin.address, MAX_FEE_BPS + 1n, THAWING_PERIOD))
        .to.be.revertedWithCustomError(m, "MarketParameterOutOfBounds")
        .withArgs(Parameter.FeeBps, MAX_FEE_BPS + 1n, 0n, MAX_FEE_BPS);
      await expect(factory.deploy(token, registry, admin.address, FEE_BPS, MIN_THAWING_PERIOD - 1n))
        .to.be.revertedWithCustomError(m, "MarketParameterOutOfBounds")
        .withArgs(Parameter.ThawingPeriod, MIN_THAWING_PERIOD - 1n, MIN_THAWING_PERIOD, MAX_THAWING_PERIOD);
      await expect(factory.deploy(token, registry, admin.address, FEE_BPS, MAX_THAWING_PERIOD + 1n))
        .to.be.revertedWithCustomError(m, "MarketParameterOutOfBounds")
        .withArgs(Parameter.ThawingPeriod, MAX_THAWING_PERIOD + 1n, MIN_THAWING_PERIOD, MAX_THAWING_PERIOD);
    });
  });

  describe("deposit", () => {
    it("credits the payer's escrow with tokens pulled from the caller, who may be anyone", async () => {
      const { market: m, token, payer, outsider } = await conn.networkHelpers.loadFixture(market);
      const amount = 123n * TOKEN;
      const tx = m.connect(outsider).deposit(payer.address, amount);
      await expect(tx).to.changeTokenBalances(conn.ethers, token, [outsider, m, payer], [-amount, amount, 0n]);
      await expect(tx).to.emit(m, "Deposited").withArgs(payer.address, outsider.address, amount, amount);
      const e = await m.escrow(payer.address);
      expect(e.balance).to.equal(amount);
      expect(e.thawing).to.equal(0n);
      expect(e.thawEndsAt).to.equal(0n);
      expect((await m.escrow(outsider.address)).balance).to.equal(0n);
    });

    it("adds to an existing balance and reports the new balance", async () => {
      const { market: m, payer } = await conn.networkHelpers.loadFixture(market);
      await m.connect(payer).deposit(payer.address, 10n);
      await expect(m.connect(payer).deposit(payer.address, 5n)).to.emit(m, "Deposited").withArgs(payer.address, payer.address, 5n, 15n);
      expect((await m.escrow(payer.address)).balance).to.equal(15n);
    });

    it("does not touch a thaw in progress", async () => {
      const { market: m, payer } = await conn.networkHelpers.loadFixture(market);
      await m.connect(payer).deposit(payer.address, 100n);
      await m.connect(payer).thaw(40n);
      const before = await m.escrow(payer.address);
      await m.connect(payer).deposit(payer.address, 1n);
      const after = await m.escrow(payer.address);
      expect(after.balance).to.equal(101n);
      expect(after.thawing).to.equal(40n);
      expect(after.thawEndsAt).to.equal(before.thawEndsAt);
    });

    it("reverts for the zero payer", async () => {
      const { market: m, payer } = await conn.networkHelpers.loadFixture(market);
      await expect(m.connect(payer).deposit(conn.ethers.ZeroAddress, 1n)).to.be.revertedWithCustomError(m, "MarketZeroAddress");
    });

    it("reverts for a zero amount", async () => {
      const { market: m, payer } = await conn.networkHelpers.loadFixture(market);
      await expect(m.connect(payer).deposit(payer.address, 0n)).to.be.revertedWithCustomError(m, "MarketZeroAmount");
    });

    it("reverts when the balance would not fit 96 bits", async () => {
      const { market: m, payer } = await conn.networkHelpers.loadFixture(market);
      await expect(m.connect(payer).deposit(payer.address, UINT96_MAX + 1n))
        .to.be.revertedWithCustomError(m, "MarketAmountTooLarge")
        .withArgs(UINT96_MAX + 1n);
      await m.connect(payer).deposit(payer.address, 1_000n);
      const tooMuch = UINT96_MAX - 999n; // 1_000 + this = 2^96
      await expect(m.connect(payer).deposit(payer.address, tooMuch))
        .to.be.revertedWithCustomError(m, "MarketAmountTooLarge")
        .withArgs(tooMuch);
    });

    it("reverts when the caller has not approved the market", async () => {
      const { market: m, token, payer, relayer } = await conn.networkHelpers.loadFixture(market);
      await expect(m.connect(relayer).deposit(payer.address, 5n))
        .to.be.revertedWithCustomError(token, "ERC20InsufficientAllowance")
        .withArgs(await m.getAddress(), 0n, 5n);
    });
  });

  describe("thaw", () => {
    it("starts thawing an amount for the thawing period", async () => {
      const { market: m, payer } = await conn.networkHelpers.loadFixture(withSession);
      const t = await nextBlockAt((await latest()) + 10n);
      await expect(m.connect(payer).thaw(300n * TOKEN))
        .to.emit(m, "ThawStarted")
        .withArgs(payer.address, 300n * TOKEN, t + THAWING_PERIOD);
      const e = await m.escrow(payer.address);
      expect(e.balance).to.equal(1_000n * TOKEN); // still there, still pays edges
      expect(e.thawing).to.equal(300n * TOKEN);
      expect(e.thawEndsAt).to.equal(t + THAWING_PERIOD);
    });

    it("replaces the amount thawing and restarts the clock", async () => {
      const { market: m, payer } = await conn.networkHelpers.loadFixture(withSession);
      await m.connect(payer).thaw(300n * TOKEN);
      const t = await nextBlockAt((await latest()) + 1_000n);
      await m.connect(payer).thaw(100n * TOKEN);
      const e = await m.escrow(payer.address);
      expect(e.thawing).to.equal(100n * TOKEN);
      expect(e.thawEndsAt).to.equal(t + THAWING_PERIOD);
    });

    it("cancels with 0", async () => {
      const { market: m, payer } = await conn.networkHelpers.loadFixture(withSession);
      await m.connect(payer).thaw(300n * TOKEN);
      await expect(m.connect(payer).thaw(0n)).to.emit(m, "ThawStarted").withArgs(payer.address, 0n, 0n);
      const e = await m.escrow(payer.address);
      expect(e.thawing).to.equal(0n);
      expect(e.thawEndsAt).to.equal(0n);
      expect(e.balance).to.equal(1_000n * TOKEN);
    });

    it("may thaw the whole balance", async () => {
      const { market: m, payer } = await conn.networkHelpers.loadFixture(withSession);
      await m.connect(payer).thaw(1_000n * TOKEN);
      expect((await m.escrow(payer.address)).thawing).to.equal(1_000n * TOKEN);
    });

    it("reverts beyond the balance", async () => {
      const { market: m, payer, outsider } = await conn.networkHelpers.loadFixture(withSession);
      await expect(m.connect(payer).thaw(1_000n * TOKEN + 1n))
        .to.be.revertedWithCustomError(m, "MarketInsufficientBalance")
        .withArgs(1_000n * TOKEN + 1n, 1_000n * TOKEN);
      await expect(m.connect(outsider).thaw(1n)).to.be.revertedWithCustomError(m, "MarketInsufficientBalance").withArgs(1n, 0n);
    });

    it("uses the thawing period in force when the thaw starts", async () => {
      const { market: m, admin, payer } = await conn.networkHelpers.loadFixture(withSession);
      await m.connect(admin).setThawingPeriod(600n);
      const t = await nextBlockAt((await latest()) + 5n);
      await m.connect(payer).thaw(1n);
      await m.connect(admin).setThawingPeriod(7_200n);
      expect((await m.escrow(payer.address)).thawEndsAt).to.equal(t + 600n);
    });
  });

  describe("withdraw", () => {
    async function thawed() {
      const env = await deployMarketWithSession(conn);
      await env.market.connect(env.payer).thaw(300n * TOKEN);
      const { thawEndsAt } = await env.market.escrow(env.payer.address);
      return { ...env, thawEndsAt };
    }

    it("reverts when nothing is thawing", async () => {
      const { market: m, payer, outsider } = await conn.networkHelpers.loadFixture(withSession);
      await expect(m.connect(payer).withdraw(payer.address))
        .to.be.revertedWithCustomError(m, "MarketNothingThawing")
        .withArgs(payer.address);
      await expect(m.connect(outsider).withdraw(outsider.address))
        .to.be.revertedWithCustomError(m, "MarketNothingThawing")
        .withArgs(outsider.address);
    });

    it("reverts before the thaw ends, even one second before", async () => {
      const { market: m, payer, thawEndsAt } = await conn.networkHelpers.loadFixture(thawed);
      await expect(m.connect(payer).withdraw(payer.address))
        .to.be.revertedWithCustomError(m, "MarketStillThawing")
        .withArgs(payer.address, thawEndsAt);
      await nextBlockAt(thawEndsAt - 1n);
      await expect(m.connect(payer).withdraw(payer.address))
        .to.be.revertedWithCustomError(m, "MarketStillThawing")
        .withArgs(payer.address, thawEndsAt);
    });

    it("reverts for the zero recipient", async () => {
      const { market: m, payer, thawEndsAt } = await conn.networkHelpers.loadFixture(thawed);
      await conn.networkHelpers.time.increaseTo(thawEndsAt);
      await expect(m.connect(payer).withdraw(conn.ethers.ZeroAddress)).to.be.revertedWithCustomError(m, "MarketZeroAddress");
    });

    it("sends the thawed amount to `to` at the end of the thaw and clears the thaw", async () => {
      const { market: m, token, payer, outsider, thawEndsAt } = await conn.networkHelpers.loadFixture(thawed);
      await nextBlockAt(thawEndsAt);
      const tx = m.connect(payer).withdraw(outsider.address);
      await expect(tx).to.changeTokenBalances(conn.ethers, token, [m, outsider, payer], [-300n * TOKEN, 300n * TOKEN, 0n]);
      await expect(tx)
        .to.emit(m, "Withdrawn")
        .withArgs(payer.address, outsider.address, 300n * TOKEN);
      const e = await m.escrow(payer.address);
      expect(e.balance).to.equal(700n * TOKEN);
      expect(e.thawing).to.equal(0n);
      expect(e.thawEndsAt).to.equal(0n);
      await expect(m.connect(payer).withdraw(payer.address))
        .to.be.revertedWithCustomError(m, "MarketNothingThawing")
        .withArgs(payer.address);
    });

    it("returns the amount sent", async () => {
      const { market: m, payer, thawEndsAt } = await conn.networkHelpers.loadFixture(thawed);
      await conn.networkHelpers.time.increaseTo(thawEndsAt);
      expect(await m.connect(payer).withdraw.staticCall(payer.address)).to.equal(300n * TOKEN);
    });

    it("sends only what is left when edges redeemed during the thaw", async () => {
      const env = await conn.networkHelpers.loadFixture(thawed);
      const { market: m, token, payer, thawEndsAt } = env;
      await m.connect(payer).thaw(1_000n * TOKEN);
      const { thawEndsAt: end } = await m.escrow(payer.address);
      expect(end).to.be.greaterThanOrEqual(thawEndsAt);
      await redeem(env, await voucher(env, 400n * TOKEN)); // leaves 600
      await conn.networkHelpers.time.increaseTo(end);
      await expect(m.connect(payer).withdraw(payer.address)).to.changeTokenBalances(
        conn.ethers,
        token,
        [m, payer],
        [-600n * TOKEN, 600n * TOKEN],
      );
      expect((await m.escrow(payer.address)).balance).to.equal(0n);
    });

    it("pays 0 and clears the thaw when edges took everything", async () => {
      const env = await conn.networkHelpers.loadFixture(withSession);
      const { market: m, token, payer } = env;
      await m.connect(payer).deposit(payer.address, 1n); // escrow: 1,000 tokens + 1 wei, all to be redeemed
      await m.connect(payer).openSession(MODEL, 2_000n * TOKEN, (await latest()) + 86_400n);
      await m.connect(payer).thaw(1_000n * TOKEN + 1n);
      await redeem(env, await voucher(env, 1_000n * TOKEN + 1n, { sessionId: 2n }));
      await conn.networkHelpers.time.increase(THAWING_PERIOD);
      const tx = m.connect(payer).withdraw(payer.address);
      await expect(tx).to.emit(m, "Withdrawn").withArgs(payer.address, payer.address, 0n);
      await expect(tx).to.changeTokenBalances(conn.ethers, token, [m, payer], [0n, 0n]);
      expect((await m.escrow(payer.address)).thawing).to.equal(0n);
    });
  });

  describe("authorizeSigner", () => {
    it("authorizes a signer for the caller only and emits SignerAuthorized", async () => {
      const { market: m, payer, payer2, outsider } = await conn.networkHelpers.loadFixture(market);
      expect(await m.isAuthorizedSigner(payer.address, outsider.address)).to.equal(false);
      await expect(m.connect(payer).authorizeSigner(outsider.address))
        .to.emit(m, "SignerAuthorized")
        .withArgs(payer.address, outsider.address);
      expect(await m.isAuthorizedSigner(payer.address, outsider.address)).to.equal(true);
      expect(await m.isAuthorizedSigner(payer2.address, outsider.address)).to.equal(false);
    });

    it("reverts for the zero address", async () => {
      const { market: m, payer } = await conn.networkHelpers.loadFixture(market);
      await expect(m.connect(payer).authorizeSigner(conn.ethers.ZeroAddress)).to.be.revertedWithCustomError(m, "MarketZeroAddress");
    });

    it("reverts for the payer itself", async () => {
      const { market: m, payer } = await conn.networkHelpers.loadFixture(market);
      await expect(m.connect(payer).authorizeSigner(payer.address)).to.be.revertedWithCustomError(m, "MarketSignerIsPayer");
    });
  });

  describe("revokeSigner", () => {
    it("withdraws the authority and emits SignerRevoked", async () => {
      const { market: m, payer, gateway } = await conn.networkHelpers.loadFixture(market);
      expect(await m.isAuthorizedSigner(payer.address, gateway.address)).to.equal(true);
      // The revocation's block time, fixed: the window runs a thawing period from it.
      const revokedAt = BigInt(await conn.networkHelpers.time.latest()) + 10n;
      await conn.networkHelpers.time.setNextBlockTimestamp(revokedAt);
      const windowEnd = revokedAt + THAWING_PERIOD;
      await expect(m.connect(payer).revokeSigner(gateway.address))
        .to.emit(m, "SignerRevoked")
        .withArgs(payer.address, gateway.address, windowEnd, 0n);
      expect(await m.isAuthorizedSigner(payer.address, gateway.address)).to.equal(false);
    });

    it("only affects the caller's authorizations", async () => {
      const { market: m, payer, payer2, gateway } = await conn.networkHelpers.loadFixture(market);
      await m.connect(payer2).revokeSigner(gateway.address);
      expect(await m.isAuthorizedSigner(payer.address, gateway.address)).to.equal(true);
    });

    it("reverts for the zero address and for the payer itself", async () => {
      const { market: m, payer } = await conn.networkHelpers.loadFixture(market);
      await expect(m.connect(payer).revokeSigner(conn.ethers.ZeroAddress)).to.be.revertedWithCustomError(m, "MarketZeroAddress");
      await expect(m.connect(payer).revokeSigner(payer.address)).to.be.revertedWithCustomError(m, "MarketSignerIsPayer");
    });
  });

  describe("isAuthorizedSigner", () => {
    it("treats the payer as always authorized for itself, and the zero address never", async () => {
      const { market: m, payer, payer2 } = await conn.networkHelpers.loadFixture(market);
      expect(await m.isAuthorizedSigner(payer.address, payer.address)).to.equal(true);
      expect(await m.isAuthorizedSigner(payer.address, payer2.address)).to.equal(false);
      const zero = conn.ethers.ZeroAddress;
      expect(await m.isAuthorizedSigner(zero, zero)).to.equal(false);
    });
  });

  describe("openSession", () => {
    it("opens session 1 with the caller as payer and emits SessionOpened with the model", async () => {
      const { market: m, payer } = await conn.networkHelpers.loadFixture(market);
      const expiry = (await latest()) + 3_600n;
      expect(await m.connect(payer).openSession.staticCall(MODEL, 50n, expiry)).to.equal(1n);
      await expect(m.connect(payer).openSession(MODEL, 50n, expiry))
        .to.emit(m, "SessionOpened")
        .withArgs(1n, payer.address, MODEL, 50n, expiry);
      const s = await m.session(1n);
      expect(s.payer).to.equal(payer.address);
      expect(s.budget).to.equal(50n);
      expect(s.spent).to.equal(0n);
      expect(s.expiry).to.equal(expiry);
      expect(s.closed).to.equal(false);
      expect(await m.sessionCount()).to.equal(1n);
    });

    it("numbers sessions consecutively across payers, without needing escrow", async () => {
      const { market: m, payer, payer2 } = await conn.networkHelpers.loadFixture(market);
      const expiry = (await latest()) + 3_600n;
      await m.connect(payer).openSession(MODEL, 1n, expiry);
      await expect(m.connect(payer2).openSession("other/model", UINT96_MAX, expiry))
        .to.emit(m, "SessionOpened")
        .withArgs(2n, payer2.address, "other/model", UINT96_MAX, expiry);
      expect((await m.session(2n)).payer).to.equal(payer2.address);
      expect((await m.session(2n)).budget).to.equal(UINT96_MAX);
      expect(await m.sessionCount()).to.equal(2n);
    });

    it("reverts for an empty model", async () => {
      const { market: m, payer } = await conn.networkHelpers.loadFixture(market);
      await expect(m.connect(payer).openSession("", 1n, (await latest()) + 100n)).to.be.revertedWithCustomError(m, "MarketEmptyModel");
    });

    it("reverts for a zero budget", async () => {
      const { market: m, payer } = await conn.networkHelpers.loadFixture(market);
      await expect(m.connect(payer).openSession(MODEL, 0n, (await latest()) + 100n)).to.be.revertedWithCustomError(m, "MarketZeroAmount");
    });

    it("reverts for a budget beyond 96 bits", async () => {
      const { market: m, payer } = await conn.networkHelpers.loadFixture(market);
      await expect(m.connect(payer).openSession(MODEL, UINT96_MAX + 1n, (await latest()) + 100n))
        .to.be.revertedWithCustomError(m, "MarketAmountTooLarge")
        .withArgs(UINT96_MAX + 1n);
    });

    it("reverts for an expiry not in the future", async () => {
      const { market: m, payer } = await conn.networkHelpers.loadFixture(market);
      const t = (await latest()) + 10n;
      await nextBlockAt(t);
      await expect(m.connect(payer).openSession(MODEL, 1n, t))
        .to.be.revertedWithCustomError(m, "MarketExpiryInPast")
        .withArgs(t);
      await expect(m.connect(payer).openSession(MODEL, 1n, 0n))
        .to.be.revertedWithCustomError(m, "MarketExpiryInPast")
        .withArgs(0n);
    });

    it("accepts an expiry one second ahead and refuses one beyond 40 bits", async () => {
      const { market: m, payer } = await conn.networkHelpers.loadFixture(market);
      const t = await nextBlockAt((await latest()) + 10n);
      await m.connect(payer).openSession(MODEL, 1n, t + 1n);
      expect((await m.session(1n)).expiry).to.equal(t + 1n);
      await expect(m.connect(payer).openSession(MODEL, 1n, UINT40_MAX + 1n))
        .to.be.revertedWithCustomError(m, "SafeCastOverflowedUintDowncast")
        .withArgs(40n, UINT40_MAX + 1n);
    });
  });

  describe("closeSession", () => {
    it("closes the caller's session and emits SessionClosed", async () => {
      const { market: m, payer, sessionId } = await conn.networkHelpers.loadFixture(withSession);
      await expect(m.connect(payer).closeSession(sessionId)).to.emit(m, "SessionClosed").withArgs(sessionId, payer.address);
      const s = await m.session(sessionId);
      expect(s.closed).to.equal(true);
      expect(s.payer).to.equal(payer.address);
      expect(s.budget).to.equal(500n * TOKEN);
    });

    it("reverts for an unknown session", async () => {
      const { market: m, payer } = await conn.networkHelpers.loadFixture(withSession);
      await expect(m.connect(payer).closeSession(0n)).to.be.revertedWithCustomError(m, "MarketUnknownSession").withArgs(0n);
      await expect(m.connect(payer).closeSession(2n)).to.be.revertedWithCustomError(m, "MarketUnknownSession").withArgs(2n);
    });

    it("reverts when the caller is not the session's payer", async () => {
      const { market: m, payer, outsider, sessionId } = await conn.networkHelpers.loadFixture(withSession);
      await expect(m.connect(outsider).closeSession(sessionId))
        .to.be.revertedWithCustomError(m, "MarketNotSessionPayer")
        .withArgs(sessionId, outsider.address, payer.address);
    });

    it("reverts when already closed", async () => {
      const { market: m, payer, sessionId } = await conn.networkHelpers.loadFixture(withSession);
      await m.connect(payer).closeSession(sessionId);
      await expect(m.connect(payer).closeSession(sessionId))
        .to.be.revertedWithCustomError(m, "MarketSessionAlreadyClosed")
        .withArgs(sessionId);
    });
  });

  /**
   * withSession plus `router`, a signer `payer` authorized (a router paying edges for it), and
   * `otherRouter`, a signer only `payer2` authorized.
   */
  async function withRouter() {
    const env = await deployMarketWithSession(conn);
    const signers = await conn.ethers.getSigners();
    const [router, otherRouter] = [signers[7], signers[8]];
    await env.market.connect(env.payer).authorizeSigner(router.address);
    await env.market.connect(env.payer2).authorizeSigner(otherRouter.address);
    return { ...env, router, otherRouter };
  }

  describe("openSessionFor", () => {
    it("lets a signer the payer authorized open a session paid by the payer, emitting SessionOpened with the payer", async () => {
      const { market: m, payer, router } = await conn.networkHelpers.loadFixture(withRouter);
      const expiry = (await latest()) + 3_600n;
      expect(await m.connect(router).openSessionFor.staticCall(payer.address, MODEL, 50n, expiry)).to.equal(2n);
      await expect(m.connect(router).openSessionFor(payer.address, MODEL, 50n, expiry))
        .to.emit(m, "SessionOpened")
        .withArgs(2n, payer.address, MODEL, 50n, expiry);
      const s = await m.session(2n);
      expect(s.payer).to.equal(payer.address);
      expect(s.budget).to.equal(50n);
      expect(s.spent).to.equal(0n);
      expect(s.expiry).to.equal(expiry);
      expect(s.closed).to.equal(false);
      expect(await m.sessionCount()).to.equal(2n);
    });

    it("lets the payer itself open through it, as with openSession", async () => {
      const { market: m, payer } = await conn.networkHelpers.loadFixture(withRouter);
      const expiry = (await latest()) + 3_600n;
      await expect(m.connect(payer).openSessionFor(payer.address, "other/model", 7n, expiry))
        .to.emit(m, "SessionOpened")
        .withArgs(2n, payer.address, "other/model", 7n, expiry);
      expect((await m.session(2n)).payer).to.equal(payer.address);
    });

    it("reverts for a caller the payer never authorized, and for the zero payer", async () => {
      const { market: m, payer, outsider } = await conn.networkHelpers.loadFixture(withRouter);
      const expiry = (await latest()) + 3_600n;
      await expect(m.connect(outsider).openSessionFor(payer.address, MODEL, 1n, expiry))
        .to.be.revertedWithCustomError(m, "MarketNotAuthorizedForPayer")
        .withArgs(payer.address, outsider.address);
      await expect(m.connect(outsider).openSessionFor(conn.ethers.ZeroAddress, MODEL, 1n, expiry))
        .to.be.revertedWithCustomError(m, "MarketNotAuthorizedForPayer")
        .withArgs(conn.ethers.ZeroAddress, outsider.address);
      expect(await m.sessionCount()).to.equal(1n);
    });

    it("reverts for a signer the payer revoked", async () => {
      const { market: m, payer, router } = await conn.networkHelpers.loadFixture(withRouter);
      await m.connect(payer).revokeSigner(router.address);
      await expect(m.connect(router).openSessionFor(payer.address, MODEL, 1n, (await latest()) + 3_600n))
        .to.be.revertedWithCustomError(m, "MarketNotAuthorizedForPayer")
        .withArgs(payer.address, router.address);
    });

    it("reverts for a signer another payer authorized, who may open that payer's sessions only", async () => {
      const { market: m, payer, payer2, otherRouter } = await conn.networkHelpers.loadFixture(withRouter);
      const expiry = (await latest()) + 3_600n;
      await expect(m.connect(otherRouter).openSessionFor(payer.address, MODEL, 1n, expiry))
        .to.be.revertedWithCustomError(m, "MarketNotAuthorizedForPayer")
        .withArgs(payer.address, otherRouter.address);
      await expect(m.connect(otherRouter).openSessionFor(payer2.address, MODEL, 1n, expiry))
        .to.emit(m, "SessionOpened")
        .withArgs(2n, payer2.address, MODEL, 1n, expiry);
    });

    it("applies openSession's checks on model, budget and expiry", async () => {
      const { market: m, payer, router } = await conn.networkHelpers.loadFixture(withRouter);
      const r = m.connect(router);
      const t = await nextBlockAt((await latest()) + 10n);
      await expect(r.openSessionFor(payer.address, "", 1n, t + 100n)).to.be.revertedWithCustomError(m, "MarketEmptyModel");
      await expect(r.openSessionFor(payer.address, MODEL, 0n, t + 100n)).to.be.revertedWithCustomError(m, "MarketZeroAmount");
      await expect(r.openSessionFor(payer.address, MODEL, UINT96_MAX + 1n, t + 100n))
        .to.be.revertedWithCustomError(m, "MarketAmountTooLarge")
        .withArgs(UINT96_MAX + 1n);
      await expect(r.openSessionFor(payer.address, MODEL, 1n, t))
        .to.be.revertedWithCustomError(m, "MarketExpiryInPast")
        .withArgs(t);
    });

    it("opens sessions whose vouchers, signed by the payer or the router, redeem from the payer's escrow as usual", async () => {
      const env = await conn.networkHelpers.loadFixture(withRouter);
      const { market: m, payer, router, operator, edgeId } = env;
      await m.connect(router).openSessionFor(payer.address, MODEL, 100n * TOKEN, (await latest()) + 3_600n);
      const sessionId = 2n;
      const byRouter = await voucher(env, 30n * TOKEN, { sessionId });
      await expect(redeem(env, byRouter, router))
        .to.emit(m, "Redeemed")
        .withArgs(sessionId, edgeId, payer.address, operator.address, 30n * TOKEN, 30n * TOKEN, feeOf(30n * TOKEN));
      const byPayer = await voucher(env, 45n * TOKEN, { sessionId });
      await expect(redeem(env, byPayer))
        .to.emit(m, "Redeemed")
        .withArgs(sessionId, edgeId, payer.address, operator.address, 45n * TOKEN, 15n * TOKEN, feeOf(15n * TOKEN));
      expect((await m.session(sessionId)).spent).to.equal(45n * TOKEN);
      expect((await m.escrow(payer.address)).balance).to.equal(env.deposited - 45n * TOKEN);
    });
  });

  describe("closeSessionFor", () => {
    it("lets the payer close its session and emits SessionClosed", async () => {
      const { market: m, payer, sessionId } = await conn.networkHelpers.loadFixture(withRouter);
      await expect(m.connect(payer).closeSessionFor(sessionId)).to.emit(m, "SessionClosed").withArgs(sessionId, payer.address);
      expect((await m.session(sessionId)).closed).to.equal(true);
    });

    it("lets a signer the payer authorized close the payer's sessions, emitting SessionClosed with the payer", async () => {
      const { market: m, payer, router, sessionId } = await conn.networkHelpers.loadFixture(withRouter);
      await m.connect(router).openSessionFor(payer.address, MODEL, 1n, (await latest()) + 3_600n);
      for (const id of [sessionId, 2n]) {
        await expect(m.connect(router).closeSessionFor(id)).to.emit(m, "SessionClosed").withArgs(id, payer.address);
        const s = await m.session(id);
        expect(s.closed).to.equal(true);
        expect(s.payer).to.equal(payer.address);
      }
    });

    it("refuses an outsider, a revoked signer and a signer of another payer", async () => {
      const { market: m, payer, router, otherRouter, outsider, sessionId } = await conn.networkHelpers.loadFixture(withRouter);
      await m.connect(payer).revokeSigner(router.address);
      for (const caller of [outsider, router, otherRouter]) {
        await expect(m.connect(caller).closeSessionFor(sessionId))
          .to.be.revertedWithCustomError(m, "MarketNotAuthorizedForPayer")
          .withArgs(payer.address, caller.address);
      }
      expect((await m.session(sessionId)).closed).to.equal(false);
    });

    it("reverts for an unknown session and for a closed one", async () => {
      const { market: m, router, sessionId } = await conn.networkHelpers.loadFixture(withRouter);
      await expect(m.connect(router).closeSessionFor(2n)).to.be.revertedWithCustomError(m, "MarketUnknownSession").withArgs(2n);
      await m.connect(router).closeSessionFor(sessionId);
      await expect(m.connect(router).closeSessionFor(sessionId))
        .to.be.revertedWithCustomError(m, "MarketSessionAlreadyClosed")
        .withArgs(sessionId);
    });

    it("leaves closeSession to the payer alone", async () => {
      const { market: m, payer, router, sessionId } = await conn.networkHelpers.loadFixture(withRouter);
      await expect(m.connect(router).closeSession(sessionId))
        .to.be.revertedWithCustomError(m, "MarketNotSessionPayer")
        .withArgs(sessionId, router.address, payer.address);
    });
  });

  describe("redeem", () => {
    it("credits the voucher to the edge's operator's earnings less the fee, whoever submits it, moving no tokens", async () => {
      const env = await conn.networkHelpers.loadFixture(withSession);
      const { market: m, token, payer, operator, relayer, sessionId, edgeId } = env;
      const amount = 40n * TOKEN + 7n;
      const fee = feeOf(amount);
      const v = await voucher(env, amount);
      const signature = await sign(env, v);
      expect(await m.connect(relayer).redeem.staticCall(v, signature)).to.equal(amount);
      const tx = m.connect(relayer).redeem(v, signature);
      await expect(tx).to.changeTokenBalances(conn.ethers, token, [m, operator, relayer, payer], [0n, 0n, 0n, 0n]);
      await expect(tx).to.emit(m, "Redeemed").withArgs(sessionId, edgeId, payer.address, operator.address, amount, amount, fee);
      await expect(tx).not.to.emit(m, "RedemptionShortfall");
      await expect(tx).not.to.emit(token, "Transfer");
      expect(await earned(env, operator)).to.equal(amount - fee);
      expect(await earned(env, relayer)).to.equal(0n);
      expect(await m.redeemed(sessionId, edgeId)).to.equal(amount);
      expect((await m.session(sessionId)).spent).to.equal(amount);
      expect((await m.escrow(payer.address)).balance).to.equal(1_000n * TOKEN - amount);
      expect(await m.pendingFees()).to.equal(fee);
    });

    it("pays only the increase of a later voucher, adding to the operator's earnings", async () => {
      const env = await conn.networkHelpers.loadFixture(withSession);
      const { market: m, payer, operator, sessionId, edgeId } = env;
      await redeem(env, await voucher(env, 10n * TOKEN));
      const before = await earned(env, operator);
      expect(before).to.equal(10n * TOKEN - feeOf(10n * TOKEN));
      const v = await voucher(env, 25n * TOKEN);
      const tx = redeem(env, v);
      const fee = feeOf(15n * TOKEN);
      await expect(tx)
        .to.emit(m, "Redeemed")
        .withArgs(sessionId, edgeId, payer.address, operator.address, 25n * TOKEN, 15n * TOKEN, fee);
      expect(await m.redeemed(sessionId, edgeId)).to.equal(25n * TOKEN);
      expect(await earned(env, operator)).to.equal(before + 15n * TOKEN - fee);
      expect(await m.pendingFees()).to.equal(feeOf(10n * TOKEN) + fee);
    });

    it("accepts a voucher signed by a signer the payer authorized", async () => {
      const env = await conn.networkHelpers.loadFixture(withSession);
      await expect(redeem(env, await voucher(env, 5n * TOKEN), env.gateway)).to.emit(env.market, "Redeemed");
      expect(await env.market.redeemed(env.sessionId, env.edgeId)).to.equal(5n * TOKEN);
    });

    it("tracks each edge of a session separately within the shared budget", async () => {
      const env = await conn.networkHelpers.loadFixture(withSession);
      const { market: m, operator2, sessionId, edgeId, edge2 } = env;
      await redeem(env, await voucher(env, 300n * TOKEN));
      const v2 = await voucher(env, 300n * TOKEN, { edgeId: edge2 });
      // budget 500: edge 2 gets the 200 left
      await expect(redeem(env, v2))
        .to.emit(m, "Redeemed")
        .withArgs(sessionId, edge2, env.payer.address, operator2.address, 300n * TOKEN, 200n * TOKEN, feeOf(200n * TOKEN));
      expect(await m.redeemed(sessionId, edgeId)).to.equal(300n * TOKEN);
      expect(await m.redeemed(sessionId, edge2)).to.equal(200n * TOKEN);
      expect((await m.session(sessionId)).spent).to.equal(500n * TOKEN);
    });

    it("pays what the escrow holds when it falls short and the rest after a top-up, with the same voucher", async () => {
      const env = await conn.networkHelpers.loadFixture(withSession);
      const { market: m, payer, operator, sessionId, edgeId } = env;
      await m.connect(payer).openSession(MODEL, 5_000n * TOKEN, (await latest()) + 86_400n);
      const v = await voucher(env, 1_500n * TOKEN, { sessionId: 2n });
      const signature = await sign(env, v);
      const tx = m.redeem(v, signature);
      await expect(tx)
        .to.emit(m, "RedemptionShortfall")
        .withArgs(2n, edgeId, payer.address, 1_500n * TOKEN, 1_000n * TOKEN);
      await expect(tx)
        .to.emit(m, "Redeemed")
        .withArgs(2n, edgeId, payer.address, operator.address, 1_500n * TOKEN, 1_000n * TOKEN, feeOf(1_000n * TOKEN));
      expect(await m.redeemed(2n, edgeId)).to.equal(1_000n * TOKEN);
      expect((await m.escrow(payer.address)).balance).to.equal(0n);
      await m.connect(payer).deposit(payer.address, 2_000n * TOKEN);
      const earnedBefore = await earned(env, operator);
      expect(earnedBefore).to.equal(1_000n * TOKEN - feeOf(1_000n * TOKEN));
      const again = m.redeem(v, signature);
      await expect(again).not.to.emit(m, "RedemptionShortfall");
      expect(await earned(env, operator)).to.equal(earnedBefore + 500n * TOKEN - feeOf(500n * TOKEN));
      expect(await m.redeemed(2n, edgeId)).to.equal(1_500n * TOKEN);
      expect((await m.escrow(payer.address)).balance).to.equal(1_500n * TOKEN);
      expect(await m.redeemed(sessionId, edgeId)).to.equal(0n);
    });

    it("pays at most the budget left and emits the shortfall", async () => {
      const env = await conn.networkHelpers.loadFixture(withSession);
      const { market: m, payer, sessionId, edgeId } = env;
      await expect(redeem(env, await voucher(env, 600n * TOKEN)))
        .to.emit(m, "RedemptionShortfall")
        .withArgs(sessionId, edgeId, payer.address, 600n * TOKEN, 500n * TOKEN);
      expect((await m.session(sessionId)).spent).to.equal(500n * TOKEN);
      expect((await m.escrow(payer.address)).balance).to.equal(500n * TOKEN);
    });

    it("pays nothing and does not revert when budget or escrow is exhausted", async () => {
      const env = await conn.networkHelpers.loadFixture(withSession);
      const { market: m, token, payer, operator, sessionId, edgeId } = env;
      await redeem(env, await voucher(env, 500n * TOKEN)); // whole budget
      const v = await voucher(env, 501n * TOKEN);
      const signature = await sign(env, v);
      expect(await m.redeem.staticCall(v, signature)).to.equal(0n);
      const tx = m.redeem(v, signature);
      await expect(tx)
        .to.emit(m, "RedemptionShortfall")
        .withArgs(sessionId, edgeId, payer.address, 1n * TOKEN, 0n);
      await expect(tx)
        .to.emit(m, "Redeemed")
        .withArgs(sessionId, edgeId, payer.address, operator.address, 501n * TOKEN, 0n, 0n);
      await expect(tx).to.changeTokenBalances(conn.ethers, token, [m, operator], [0n, 0n]);
      expect(await earned(env, operator)).to.equal(500n * TOKEN - feeOf(500n * TOKEN));
      expect(await m.redeemed(sessionId, edgeId)).to.equal(500n * TOKEN);
      expect(await m.pendingFees()).to.equal(feeOf(500n * TOKEN));
    });

    it("still pays for a closed session", async () => {
      const env = await conn.networkHelpers.loadFixture(withSession);
      const { market: m, payer, sessionId } = env;
      const v = await voucher(env, 20n * TOKEN);
      await m.connect(payer).closeSession(sessionId);
      await expect(redeem(env, v))
        .to.emit(m, "Redeemed")
        .withArgs(sessionId, env.edgeId, payer.address, env.operator.address, 20n * TOKEN, 20n * TOKEN, feeOf(20n * TOKEN));
    });

    it("still pays for an expired session while the voucher is valid", async () => {
      const env = await conn.networkHelpers.loadFixture(withSession);
      const v = await voucher(env, 20n * TOKEN, { expiry: env.sessionExpiry + 3_600n });
      await conn.networkHelpers.time.increaseTo(env.sessionExpiry + 1n);
      await expect(redeem(env, v)).to.emit(env.market, "Redeemed");
      expect(await env.market.redeemed(env.sessionId, env.edgeId)).to.equal(20n * TOKEN);
    });

    it("redeems at the voucher's expiry second and reverts one second later", async () => {
      const env = await conn.networkHelpers.loadFixture(withSession);
      const { market: m } = env;
      const t = (await latest()) + 100n;
      const v = await voucher(env, 1n * TOKEN, { expiry: t });
      const v2 = await voucher(env, 2n * TOKEN, { expiry: t });
      await nextBlockAt(t);
      await redeem(env, v);
      expect(await m.redeemed(env.sessionId, env.edgeId)).to.equal(1n * TOKEN);
      const signature = await sign(env, v2);
      await nextBlockAt(t + 1n);
      await expect(m.redeem(v2, signature))
        .to.be.revertedWithCustomError(m, "MarketVoucherExpired")
        .withArgs(t, t + 1n);
    });

    it("reverts for an unknown session", async () => {
      const env = await conn.networkHelpers.loadFixture(withSession);
      for (const sessionId of [0n, 2n]) {
        const v = await voucher(env, 1n, { sessionId });
        await expect(redeem(env, v)).to.be.revertedWithCustomError(env.market, "MarketUnknownSession").withArgs(sessionId);
      }
    });

    it("reverts when the voucher names another payer than the session's", async () => {
      const env = await conn.networkHelpers.loadFixture(withSession);
      const v = await voucher(env, 1n, { payer: env.payer2.address });
      await expect(redeem(env, v, env.payer2))
        .to.be.revertedWithCustomError(env.market, "MarketPayerMismatch")
        .withArgs(env.sessionId, env.payer2.address, env.payer.address);
    });

    it("reverts when signed by neither the payer nor an authorized signer, naming the recovered signer", async () => {
      const env = await conn.networkHelpers.loadFixture(withSession);
      const v = await voucher(env, 1n);
      await expect(redeem(env, v, env.outsider))
        .to.be.revertedWithCustomError(env.market, "MarketUnauthorizedSigner")
        .withArgs(env.payer.address, env.outsider.address);
      // another payer's gateway is not this payer's
      const other = conn.ethers.Wallet.createRandom();
      await env.market.connect(env.payer2).authorizeSigner(other.address);
      await expect(redeem(env, v, other))
        .to.be.revertedWithCustomError(env.market, "MarketUnauthorizedSigner")
        .withArgs(env.payer.address, other.address);
    });

    it("reverts on a malformed signature", async () => {
      const env = await conn.networkHelpers.loadFixture(withSession);
      const v = await voucher(env, 1n);
      const signature = await sign(env, v);
      const short = conn.ethers.dataSlice(signature, 0, 64);
      await expect(env.market.redeem(v, short)).to.be.revertedWithCustomError(env.market, "ECDSAInvalidSignatureLength").withArgs(64n);
    });

    it("reverts for an unknown edge", async () => {
      const env = await conn.networkHelpers.loadFixture(withSession);
      const v = await voucher(env, 1n, { edgeId: 99n });
      await expect(redeem(env, v)).to.be.revertedWithCustomError(env.market, "MarketUnknownEdge").withArgs(99n);
    });

    it("reverts for a voucher worth no more than what was redeemed", async () => {
      const env = await conn.networkHelpers.loadFixture(withSession);
      await redeem(env, await voucher(env, 10n));
      await expect(redeem(env, await voucher(env, 10n)))
        .to.be.revertedWithCustomError(env.market, "MarketVoucherNotNewer")
        .withArgs(10n, 10n);
      await expect(redeem(env, await voucher(env, 9n)))
        .to.be.revertedWithCustomError(env.market, "MarketVoucherNotNewer")
        .withArgs(9n, 10n);
      await expect(redeem(env, await voucher(env, 0n, { edgeId: env.edge2 })))
        .to.be.revertedWithCustomError(env.market, "MarketVoucherNotNewer")
        .withArgs(0n, 0n);
    });

    it("checks session, then payer, then expiry, then signer, then edge, then amount", async () => {
      const env = await conn.networkHelpers.loadFixture(withSession);
      const { market: m } = env;
      const past = (await latest()) - 1n;
      // every check fails: the session is reported
      let v = await voucher(env, 0n, { sessionId: 7n, payer: env.payer2.address, expiry: past, edgeId: 99n });
      await expect(redeem(env, v, env.outsider))
        .to.be.revertedWithCustomError(m, "MarketUnknownSession")
        .withArgs(7n);
      v = { ...v, sessionId: env.sessionId };
      await expect(redeem(env, v, env.outsider)).to.be.revertedWithCustomError(m, "MarketPayerMismatch");
      v = { ...v, payer: env.payer.address };
      await expect(redeem(env, v, env.outsider)).to.be.revertedWithCustomError(m, "MarketVoucherExpired");
      v = { ...v, expiry: past + 86_400n };
      await expect(redeem(env, v, env.outsider)).to.be.revertedWithCustomError(m, "MarketUnauthorizedSigner");
      await expect(redeem(env, v)).to.be.revertedWithCustomError(m, "MarketUnknownEdge").withArgs(99n);
      v = { ...v, edgeId: env.edgeId };
      await expect(redeem(env, v)).to.be.revertedWithCustomError(m, "MarketVoucherNotNewer").withArgs(0n, 0n);
    });

    it("takes no fee when the fee is 0 and applies a new fee to later redemptions", async () => {
      const env = await conn.networkHelpers.loadFixture(withSession);
      const { market: m, admin, operator } = env;
      await m.connect(admin).setFeeBps(0n);
      await redeem(env, await voucher(env, 100n));
      expect(await earned(env, operator)).to.equal(100n);
      expect(await m.pendingFees()).to.equal(0n);
      await m.connect(admin).setFeeBps(MAX_FEE_BPS);
      await redeem(env, await voucher(env, 200n)); // pays 100 at 20%
      expect(await earned(env, operator)).to.equal(100n + 80n);
      expect(await m.pendingFees()).to.equal(20n);
    });
  });

  describe("redeemMany", () => {
    it("credits every voucher to its operator and returns the total taken from escrow", async () => {
      const env = await conn.networkHelpers.loadFixture(withSession);
      const { market: m, token, payer, payer2, operator, operator2, sessionId, edgeId, edge2 } = env;
      await m.connect(payer2).deposit(payer2.address, 100n * TOKEN);
      await m.connect(payer2).openSession(MODEL, 100n * TOKEN, (await latest()) + 3_600n);
      const a = await voucher(env, 10n * TOKEN);
      const b = await voucher(env, 20n * TOKEN, { edgeId: edge2 });
      const c = await voucher(env, 30n * TOKEN, { payer: payer2.address, sessionId: 2n });
      const sigs = [await sign(env, a), await sign(env, b, env.gateway), await sign(env, c, payer2)];
      expect(await m.redeemMany.staticCall([a, b, c], sigs)).to.equal(60n * TOKEN);
      const tx = m.connect(env.relayer).redeemMany([a, b, c], sigs);
      const net = (x: bigint) => x - feeOf(x);
      await expect(tx).to.changeTokenBalances(conn.ethers, token, [m, operator, operator2], [0n, 0n, 0n]);
      await expect(tx)
        .to.emit(m, "Redeemed")
        .withArgs(sessionId, edgeId, payer.address, operator.address, 10n * TOKEN, 10n * TOKEN, feeOf(10n * TOKEN));
      await expect(tx)
        .to.emit(m, "Redeemed")
        .withArgs(sessionId, edge2, payer.address, operator2.address, 20n * TOKEN, 20n * TOKEN, feeOf(20n * TOKEN));
      await expect(tx)
        .to.emit(m, "Redeemed")
        .withArgs(2n, edgeId, payer2.address, operator.address, 30n * TOKEN, 30n * TOKEN, feeOf(30n * TOKEN));
      expect((await m.escrow(payer.address)).balance).to.equal(970n * TOKEN);
      expect((await m.escrow(payer2.address)).balance).to.equal(70n * TOKEN);
      expect(await earned(env, operator)).to.equal(net(10n * TOKEN) + net(30n * TOKEN));
      expect(await earned(env, operator2)).to.equal(net(20n * TOKEN));
      expect(await m.pendingFees()).to.equal(feeOf(10n * TOKEN) + feeOf(20n * TOKEN) + feeOf(30n * TOKEN));
    });

    it("skips a voucher worth nothing new and pays the others", async () => {
      const env = await conn.networkHelpers.loadFixture(withSession);
      const { market: m, operator } = env;
      await redeem(env, await voucher(env, 50n));
      const stale = await voucher(env, 40n);
      const fresh = await voucher(env, 100n, { edgeId: env.edge2 });
      const sigs = [await sign(env, stale), await sign(env, fresh)];
      expect(await m.redeemMany.staticCall([stale, fresh], sigs)).to.equal(100n);
      const tx = m.redeemMany([stale, fresh], sigs);
      await expect(tx).not.to.emit(m, "RedemptionShortfall");
      expect(await earned(env, operator)).to.equal(50n - feeOf(50n));
      expect(await earned(env, env.operator2)).to.equal(100n - feeOf(100n));
      expect(await m.redeemed(env.sessionId, env.edgeId)).to.equal(50n);
    });

    it("pays a voucher listed twice once", async () => {
      const env = await conn.networkHelpers.loadFixture(withSession);
      const v = await voucher(env, 100n);
      const s = await sign(env, v);
      await env.market.redeemMany([v, v], [s, s]);
      expect(await earned(env, env.operator)).to.equal(100n - feeOf(100n));
      expect(await env.market.redeemed(env.sessionId, env.edgeId)).to.equal(100n);
    });

    it("reverts the whole batch on an invalid voucher", async () => {
      const env = await conn.networkHelpers.loadFixture(withSession);
      const good = await voucher(env, 100n);
      const bad = await voucher(env, 100n, { edgeId: env.edge2 });
      await expect(env.market.redeemMany([good, bad], [await sign(env, good), await sign(env, bad, env.outsider)]))
        .to.be.revertedWithCustomError(env.market, "MarketUnauthorizedSigner")
        .withArgs(env.payer.address, env.outsider.address);
      expect(await env.market.redeemed(env.sessionId, env.edgeId)).to.equal(0n);
    });

    it("reverts when the lists differ in length", async () => {
      const env = await conn.networkHelpers.loadFixture(withSession);
      const v = await voucher(env, 100n);
      await expect(env.market.redeemMany([v, v], [await sign(env, v)]))
        .to.be.revertedWithCustomError(env.market, "MarketLengthMismatch")
        .withArgs(2n, 1n);
    });

    it("returns 0 for an empty batch", async () => {
      const env = await conn.networkHelpers.loadFixture(withSession);
      expect(await env.market.redeemMany.staticCall([], [])).to.equal(0n);
    });
  });

  describe("withdrawEarnings", () => {
    /** Session 1 redeemed for 100 tokens on edge 1 (operator) and 60 on edge 2 (operator2). */
    async function earning() {
      const env = await deployMarketWithSession(conn);
      const a = await voucherFor(conn, env, 100n * TOKEN);
      const b = await voucherFor(conn, env, 60n * TOKEN, { edgeId: env.edge2 });
      await env.market.redeem(a, await signVoucherIn(env.domain, env.payer, a));
      await env.market.redeem(b, await signVoucherIn(env.domain, env.payer, b));
      return env;
    }
    const net = (x: bigint) => x - feeOf(x);

    it("sends the caller's whole balance to `to`, zeroes it and emits EarningsWithdrawn", async () => {
      const env = await conn.networkHelpers.loadFixture(earning);
      const { market: m, token, operator, outsider } = env;
      const amount = net(100n * TOKEN);
      expect(await earned(env, operator)).to.equal(amount);
      expect(await m.connect(operator).withdrawEarnings.staticCall(outsider.address)).to.equal(amount);
      const tx = m.connect(operator).withdrawEarnings(outsider.address);
      await expect(tx).to.changeTokenBalances(conn.ethers, token, [m, outsider, operator], [-amount, amount, 0n]);
      await expect(tx).to.emit(m, "EarningsWithdrawn").withArgs(operator.address, outsider.address, amount);
      expect(await earned(env, operator)).to.equal(0n);
    });

    it("may send to the operator itself", async () => {
      const env = await conn.networkHelpers.loadFixture(earning);
      const { market: m, token, operator } = env;
      const amount = net(100n * TOKEN);
      await expect(m.connect(operator).withdrawEarnings(operator.address)).to.changeTokenBalances(
        conn.ethers,
        token,
        [m, operator],
        [-amount, amount],
      );
    });

    it("touches only the caller's own balance", async () => {
      const env = await conn.networkHelpers.loadFixture(earning);
      const { market: m, token, operator, operator2, payer, outsider } = env;
      // outsiders (the relayer, the payer) have nothing, even though the market holds tokens
      for (const who of [outsider, payer, env.relayer]) {
        await expect(m.connect(who).withdrawEarnings(who.address)).to.be.revertedWithCustomError(m, "MarketNothingToWithdraw");
      }
      // operator2 withdrawing to operator's address takes operator2's balance, not operator's
      const tx = m.connect(operator2).withdrawEarnings(operator.address);
      await expect(tx).to.changeTokenBalances(conn.ethers, token, [operator, operator2], [net(60n * TOKEN), 0n]);
      await expect(tx)
        .to.emit(m, "EarningsWithdrawn")
        .withArgs(operator2.address, operator.address, net(60n * TOKEN));
      expect(await earned(env, operator)).to.equal(net(100n * TOKEN));
      expect(await earned(env, operator2)).to.equal(0n);
      expect((await m.escrow(payer.address)).balance).to.equal(1_000n * TOKEN - 160n * TOKEN);
    });

    it("reverts when the caller has nothing, including right after withdrawing", async () => {
      const env = await conn.networkHelpers.loadFixture(earning);
      const { market: m, operator } = env;
      await m.connect(operator).withdrawEarnings(operator.address);
      await expect(m.connect(operator).withdrawEarnings(operator.address)).to.be.revertedWithCustomError(m, "MarketNothingToWithdraw");
    });

    it("reverts for the zero recipient", async () => {
      const env = await conn.networkHelpers.loadFixture(earning);
      await expect(env.market.connect(env.operator).withdrawEarnings(conn.ethers.ZeroAddress)).to.be.revertedWithCustomError(
        env.market,
        "MarketZeroAddress",
      );
      expect(await earned(env, env.operator)).to.equal(net(100n * TOKEN));
    });

    it("pays in one transfer what several redemptions from several sessions and payers credited", async () => {
      const env = await conn.networkHelpers.loadFixture(earning);
      const { market: m, token, operator, payer, payer2 } = env;
      await m.connect(payer2).deposit(payer2.address, 300n * TOKEN);
      await m.connect(payer2).openSession(MODEL, 300n * TOKEN, (await latest()) + 3_600n); // session 2
      await m.connect(payer).openSession(MODEL, 300n * TOKEN, (await latest()) + 3_600n); // session 3
      const credits = [100n * TOKEN]; // session 1, already redeemed by the fixture
      const v1 = await voucher(env, 130n * TOKEN); // session 1 again: +30
      const v2 = await voucher(env, 70n * TOKEN + 1n, { payer: payer2.address, sessionId: 2n });
      const v3 = await voucher(env, 45n * TOKEN, { sessionId: 3n });
      await redeem(env, v1);
      await redeem(env, v2, payer2);
      await redeem(env, v3, env.gateway);
      credits.push(30n * TOKEN, 70n * TOKEN + 1n, 45n * TOKEN);
      const total = credits.reduce((sum, c) => sum + net(c), 0n);
      expect(await earned(env, operator)).to.equal(total);
      const tx = m.connect(operator).withdrawEarnings(operator.address);
      await expect(tx).to.changeTokenBalances(conn.ethers, token, [m, operator], [-total, total]);
      await expect(tx).to.emit(m, "EarningsWithdrawn").withArgs(operator.address, operator.address, total);
      // one Transfer for all four redemptions
      const receipt = (await (await tx).wait())!;
      const transfers = receipt.logs.filter((log) => log.address === token.target && token.interface.parseLog(log)?.name === "Transfer");
      expect(transfers.length).to.equal(1);
      // the market now holds the escrows, operator2's earnings and the fees
      const fees = credits.reduce((sum, c) => sum + feeOf(c), 0n) + feeOf(60n * TOKEN);
      expect(await m.pendingFees()).to.equal(fees);
      const escrows = (await m.escrow(payer.address)).balance + (await m.escrow(payer2.address)).balance;
      expect(await token.balanceOf(await m.getAddress())).to.equal(escrows + (await earned(env, env.operator2)) + fees);
    });

    it("leaves escrow, fees and sessions untouched", async () => {
      const env = await conn.networkHelpers.loadFixture(earning);
      const { market: m, operator, payer, sessionId } = env;
      const escrowBefore = (await m.escrow(payer.address)).balance;
      const pendingBefore = await m.pendingFees();
      await m.connect(operator).withdrawEarnings(operator.address);
      expect((await m.escrow(payer.address)).balance).to.equal(escrowBefore);
      expect(await m.pendingFees()).to.equal(pendingBefore);
      expect((await m.session(sessionId)).spent).to.equal(160n * TOKEN);
      // and earnings keep accruing after a withdrawal
      await redeem(env, await voucher(env, 110n * TOKEN));
      expect(await earned(env, operator)).to.equal(net(10n * TOKEN));
    });
  });

  describe("burnFees", () => {
    it("burns the pending fees from the market's balance, whoever calls", async () => {
      const env = await conn.networkHelpers.loadFixture(withSession);
      const { market: m, token, outsider } = env;
      await redeem(env, await voucher(env, 123n * TOKEN));
      const fee = feeOf(123n * TOKEN);
      const supply = await token.totalSupply();
      expect(await m.connect(outsider).burnFees.staticCall()).to.equal(fee);
      const tx = m.connect(outsider).burnFees();
      await expect(tx).to.emit(m, "FeesBurned").withArgs(fee);
      await expect(tx)
        .to.emit(token, "Transfer")
        .withArgs(await m.getAddress(), conn.ethers.ZeroAddress, fee);
      await expect(tx).to.changeTokenBalances(conn.ethers, token, [m, outsider], [-fee, 0n]);
      expect(await token.totalSupply()).to.equal(supply - fee);
      expect(await m.pendingFees()).to.equal(0n);
      // the escrow and the operator's earnings are untouched by the burn
      expect((await m.escrow(env.payer.address)).balance).to.equal(877n * TOKEN);
      expect(await earned(env, env.operator)).to.equal(123n * TOKEN - fee);
      expect(await token.balanceOf(await m.getAddress())).to.equal(877n * TOKEN + 123n * TOKEN - fee);
    });

    it("reverts when nothing is pending", async () => {
      const env = await conn.networkHelpers.loadFixture(withSession);
      await expect(env.market.burnFees()).to.be.revertedWithCustomError(env.market, "MarketNothingToBurn");
      await redeem(env, await voucher(env, 1n * TOKEN));
      await env.market.burnFees();
      await expect(env.market.burnFees()).to.be.revertedWithCustomError(env.market, "MarketNothingToBurn");
    });
  });

  describe("setFeeBps", () => {
    it("lets governance set the fee within bounds and emits ParameterChanged", async () => {
      const { market: m, admin } = await conn.networkHelpers.loadFixture(market);
      await expect(m.connect(admin).setFeeBps(MAX_FEE_BPS)).to.emit(m, "ParameterChanged").withArgs(Parameter.FeeBps, FEE_BPS, MAX_FEE_BPS);
      expect(await m.feeBps()).to.equal(MAX_FEE_BPS);
      await expect(m.connect(admin).setFeeBps(0n)).to.emit(m, "ParameterChanged").withArgs(Parameter.FeeBps, MAX_FEE_BPS, 0n);
      expect(await m.feeBps()).to.equal(0n);
    });

    it("reverts above MAX_FEE_BPS", async () => {
      const { market: m, admin } = await conn.networkHelpers.loadFixture(market);
      await expect(m.connect(admin).setFeeBps(MAX_FEE_BPS + 1n))
        .to.be.revertedWithCustomError(m, "MarketParameterOutOfBounds")
        .withArgs(Parameter.FeeBps, MAX_FEE_BPS + 1n, 0n, MAX_FEE_BPS);
    });

    it("reverts when the caller lacks GOVERNANCE_ROLE, and works once granted", async () => {
      const { market: m, admin, outsider } = await conn.networkHelpers.loadFixture(market);
      const gov = await m.GOVERNANCE_ROLE();
      await expect(m.connect(outsider).setFeeBps(1n))
        .to.be.revertedWithCustomError(m, "AccessControlUnauthorizedAccount")
        .withArgs(outsider.address, gov);
      await m.connect(admin).grantRole(gov, outsider.address);
      await m.connect(outsider).setFeeBps(1n);
      expect(await m.feeBps()).to.equal(1n);
    });
  });

  describe("setThawingPeriod", () => {
    it("lets governance set the period within bounds and emits ParameterChanged", async () => {
      const { market: m, admin } = await conn.networkHelpers.loadFixture(market);
      await expect(m.connect(admin).setThawingPeriod(MIN_THAWING_PERIOD))
        .to.emit(m, "ParameterChanged")
        .withArgs(Parameter.ThawingPeriod, THAWING_PERIOD, MIN_THAWING_PERIOD);
      await expect(m.connect(admin).setThawingPeriod(MAX_THAWING_PERIOD))
        .to.emit(m, "ParameterChanged")
        .withArgs(Parameter.ThawingPeriod, MIN_THAWING_PERIOD, MAX_THAWING_PERIOD);
      expect(await m.thawingPeriod()).to.equal(MAX_THAWING_PERIOD);
    });

    it("reverts out of bounds", async () => {
      const { market: m, admin } = await conn.networkHelpers.loadFixture(market);
      for (const value of [0n, MIN_THAWING_PERIOD - 1n, MAX_THAWING_PERIOD + 1n]) {
        await expect(m.connect(admin).setThawingPeriod(value))
          .to.be.revertedWithCustomError(m, "MarketParameterOutOfBounds")
          .withArgs(Parameter.ThawingPeriod, value, MIN_THAWING_PERIOD, MAX_THAWING_PERIOD);
      }
    });

    it("reverts when the caller lacks GOVERNANCE_ROLE", async () => {
      const { market: m, payer } = await conn.networkHelpers.loadFixture(market);
      await expect(m.connect(payer).setThawingPeriod(600n))
        .to.be.revertedWithCustomError(m, "AccessControlUnauthorizedAccount")
        .withArgs(payer.address, await m.GOVERNANCE_ROLE());
    });
  });

  describe("views", () => {
    it("voucherDigest is the EIP-712 hash of the voucher in the market's domain", async () => {
      const env = await conn.networkHelpers.loadFixture(withSession);
      const v = await voucher(env, 42n);
      const expected = conn.ethers.TypedDataEncoder.hash(env.domain, VOUCHER_TYPES, v);
      expect(await env.market.voucherDigest(v)).to.equal(expected);
      expect(recoverVoucherSigner(env.domain, v, await sign(env, v))).to.equal(env.payer.address);
    });

    it("reports empty records for unknown payers, sessions and pairs", async () => {
      const { market: m, outsider } = await conn.networkHelpers.loadFixture(market);
      const e = await m.escrow(outsider.address);
      expect([e.balance, e.thawing, e.thawEndsAt]).to.deep.equal([0n, 0n, 0n]);
      const s = await m.session(5n);
      expect(s.payer).to.equal(conn.ethers.ZeroAddress);
      expect(s.budget).to.equal(0n);
      expect(await m.redeemed(5n, 1n)).to.equal(0n);
      expect(await m.earnings(outsider.address)).to.equal(0n);
    });
  });
});
