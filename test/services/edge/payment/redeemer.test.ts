// edge/payment/redeemer.ts: redemption of stored vouchers on the real ComputeMarket.
import { expect } from "chai";
import type { Hex } from "viem";

import { createRedeemer } from "../../../../edge/payment/redeemer.ts";
import type { Redeemer } from "../../../../edge/payment/redeemer.ts";
import { COST, headerFor, MIN_LIFETIME, paymentStack, until, voucherAt, type PaymentStack } from "../../../helpers/edgePayment.ts";
import { deployMarketWithSession, FEE_BPS, BPS, MODEL, type SessionEnv } from "../../../helpers/market.ts";
import { connect, type Connection } from "../../../helpers/protocol.ts";

describe("redeemer", () => {
  let conn: Connection;
  let stack: PaymentStack | undefined;
  let redeemer: Redeemer | undefined;
  before(async () => {
    conn = await connect();
  });
  afterEach(async () => {
    await redeemer?.close().catch(() => undefined);
    redeemer = undefined;
    await stack?.close();
    stack = undefined;
  });

  async function twoSessionsFixture() {
    const env = await deployMarketWithSession(conn);
    const expiry = BigInt(await conn.networkHelpers.time.latest()) + 86_400n;
    await env.market.connect(env.payer).openSession(MODEL, 500n * 10n ** 18n, expiry); // session 2
    return env;
  }

  async function setup(over: Partial<Parameters<typeof createRedeemer>[0]> = {}): Promise<{ env: SessionEnv; s: PaymentStack }> {
    const env = await conn.networkHelpers.loadFixture(twoSessionsFixture);
    stack = await paymentStack(conn, env);
    redeemer = redeemerOn(env, stack, over);
    return { env, s: stack };
  }

  function redeemerOn(env: SessionEnv, s: PaymentStack, over: Partial<Parameters<typeof createRedeemer>[0]> = {}): Redeemer {
    return createRedeemer({
      store: s.store,
      market: s.market,
      publicClient: s.publicClient,
      walletClient: s.walletClient,
      marketAddress: s.marketAddress,
      edgeId: env.edgeId,
      intervalMs: 3_600_000,
      batchSize: 10,
      thawMarginSeconds: 60,
      logger: s.logger,
      metrics: s.metrics,
      ...over,
    });
  }

  /** Serves `amount` in one request on `sessionId`, signed by `signer`. */
  async function serve(
    env: SessionEnv,
    s: PaymentStack,
    amount: bigint,
    signer: SessionEnv["payer"] | SessionEnv["gateway"] = env.payer,
    sessionId = env.sessionId,
    expiry?: bigint,
  ) {
    const a = await s.gate.admit({
      voucherHeader: await headerFor(
        env,
        signer,
        voucherAt(env, s.clock.now, amount, { sessionId, ...(expiry === undefined ? {} : { expiry }) }),
      ),
      model: MODEL,
      maxCost: amount,
    });
    await a.durable; // the edge serves only once the voucher is on disk
    a.settle(amount);
  }

  const fee = (paid: bigint) => (paid * FEE_BPS) / BPS;
  const metric = async (s: PaymentStack, result: string) =>
    (await s.metrics.redemptions.get()).values.find((v) => v.labels.result === result)?.value ?? 0;

  describe("redeemNow", () => {
    it("redeems stored vouchers for their exact amounts; the operator earns paid minus the fee", async () => {
      const { env, s } = await setup();
      const a1 = 7n * COST + 3n; // odd amounts: the fee rounds down
      const a2 = 2n * COST + 1n;
      await serve(env, s, a1);
      await serve(env, s, a2, env.payer, 2n);
      const before = await env.market.earnings(env.operator.address);
      const result = await redeemer!.redeemNow("test");
      expect(result.redeemed).to.equal(2);
      expect(result.amount).to.equal(a1 + a2);
      expect(await env.market.redeemed(env.sessionId, env.edgeId)).to.equal(a1);
      expect(await env.market.redeemed(2n, env.edgeId)).to.equal(a2);
      expect((await env.market.earnings(env.operator.address)) - before).to.equal(a1 - fee(a1) + a2 - fee(a2));
      expect(s.store.get(env.sessionId)?.redeemed).to.equal(a1);
      expect(s.store.unredeemed()).to.have.length(0);
      expect(await metric(s, "confirmed")).to.equal(1);
      // nothing new: a second run sends nothing
      const again = await redeemer!.redeemNow("again");
      expect(again.transactions).to.have.length(0);
    });

    it("redeems a voucher whose signer was revoked after it was served, within the revocation window", async () => {
      const { env, s } = await setup();
      await serve(env, s, 4n * COST, env.gateway); // session 1, gateway key
      await env.market.connect(env.payer).revokeSigner(env.gateway.address);
      await conn.networkHelpers.time.increaseTo((await env.market.revocationWindowEnd(env.payer.address)) - 1n);
      const result = await redeemer!.redeemNow("revoked");
      expect([result.redeemed, result.skipped, result.amount]).to.deep.equal([1, 0, 4n * COST]);
      expect(await env.market.redeemed(env.sessionId, env.edgeId)).to.equal(4n * COST);
    });

    it("past the revocation window, skips the revoked signer's voucher without reverting the batch, and records it as lost", async () => {
      const { env, s } = await setup();
      await serve(env, s, 4n * COST, env.gateway); // session 1, gateway key
      await serve(env, s, 3n * COST, env.payer, 2n); // session 2, payer
      await env.market.connect(env.payer).revokeSigner(env.gateway.address);
      await conn.networkHelpers.time.increaseTo((await env.market.revocationWindowEnd(env.payer.address)) + 1n);
      const result = await redeemer!.redeemNow("window passed");
      expect([result.redeemed, result.skipped, result.amount]).to.deep.equal([1, 1, 3n * COST]);
      expect(await env.market.redeemed(env.sessionId, env.edgeId)).to.equal(0n);
      expect(await env.market.redeemed(2n, env.edgeId)).to.equal(3n * COST);
      expect(s.store.get(env.sessionId)?.lost).to.equal("signer revoked, redemption window passed");
      expect(await metric(s, "skipped")).to.equal(1);
    });

    it("drops a voucher the chain already paid (redeemed by someone else) and stores the chain's amount", async () => {
      const { env, s } = await setup();
      await serve(env, s, 5n * COST);
      const stored = s.store.get(env.sessionId)!;
      await env.market.connect(env.relayer).redeem(stored.voucher, stored.signature as Hex);
      const result = await redeemer!.redeemNow("test");
      expect([result.redeemed, result.skipped, result.transactions.length]).to.deep.equal([0, 1, 0]);
      expect(s.store.get(env.sessionId)?.redeemed).to.equal(5n * COST);
    });
  });

  describe("triggers", () => {
    it("redeems as soon as a payer with unredeemed vouchers starts thawing", async () => {
      const { env, s } = await setup();
      await serve(env, s, 6n * COST);
      redeemer!.start();
      await env.market.connect(env.payer).thaw(1_000n * 10n ** 18n);
      await s.market.refresh(); // the follower sees ThawStarted and calls the redeemer's hook
      // The chain has the redemption before the redeemer records its receipt: wait for both.
      await until(
        async () =>
          (await env.market.redeemed(env.sessionId, env.edgeId)) === 6n * COST && s.store.get(env.sessionId)?.redeemed === 6n * COST,
      );
      expect(s.store.get(env.sessionId)?.redeemed).to.equal(6n * COST);
    });

    it("redeems at once when the payer revokes the signer of a voucher it holds", async () => {
      const { env, s } = await setup();
      await serve(env, s, 5n * COST, env.gateway);
      redeemer!.start();
      await env.market.connect(env.payer).revokeSigner(env.gateway.address);
      await s.market.refresh(); // the follower sees SignerRevoked and calls the redeemer's hook
      // The chain has the redemption before the redeemer records its receipt: wait for both.
      await until(
        async () =>
          (await env.market.redeemed(env.sessionId, env.edgeId)) === 5n * COST && s.store.get(env.sessionId)?.redeemed === 5n * COST,
      );
      expect(s.store.get(env.sessionId)?.redeemed).to.equal(5n * COST);
    });

    it("after a restart, redeems at once when the payer revokes the signer of a voucher stored before it", async () => {
      const { env, s } = await setup();
      await serve(env, s, 5n * COST, env.gateway);
      // The edge stops before redeeming and starts again: its new chain view has not dealt with the payer.
      redeemer = undefined;
      await s.close(true);
      stack = await paymentStack(conn, env, s.dataDir);
      redeemer = redeemerOn(env, stack);
      redeemer.start();
      await env.market.connect(env.payer).revokeSigner(env.gateway.address);
      await stack.market.refresh();
      await until(
        async () =>
          (await env.market.redeemed(env.sessionId, env.edgeId)) === 5n * COST && stack?.store.get(env.sessionId)?.redeemed === 5n * COST,
      );
    });

    it("redeems at once when a session it holds vouchers of closes", async () => {
      const { env, s } = await setup();
      await serve(env, s, 4n * COST);
      redeemer!.start();
      await env.market.connect(env.payer).closeSession(env.sessionId);
      await s.market.refresh(); // the follower sees SessionClosed and calls the redeemer's hook
      await until(async () => (await env.market.redeemed(env.sessionId, env.edgeId)) === 4n * COST);
      expect(s.store.get(env.sessionId)?.redeemed).to.equal(4n * COST);
    });

    it("redeems a voucher once its expiry comes within the margin, with no schedule or event due", async function () {
      this.timeout(30_000);
      // The redeemer's clock is the test's: the chain's time, moved by hand.
      const clock = { now: 0n };
      const { env, s } = await setup({ now: () => clock.now });
      clock.now = s.clock.now;
      const expiry = s.clock.now + BigInt(MIN_LIFETIME) + 30n;
      await serve(env, s, 3n * COST, env.payer, env.sessionId, expiry);
      redeemer!.start();
      // Far from expiry (more than the 60 s margin): nothing is sent on the urgency watch's first ticks.
      await new Promise((resolve) => setTimeout(resolve, 5_500));
      expect(await env.market.redeemed(env.sessionId, env.edgeId)).to.equal(0n);
      clock.now = expiry - 30n;
      await until(async () => (await env.market.redeemed(env.sessionId, env.edgeId)) === 3n * COST, 10_000);
      // The chain has the redemption before the redeemer records it.
      await until(async () => s.store.get(env.sessionId)?.redeemed === 3n * COST, 10_000);
    });

    it("close() redeems what is left", async () => {
      const { env, s } = await setup();
      redeemer!.start();
      await serve(env, s, 9n * COST);
      const result = await redeemer!.close();
      redeemer = undefined;
      expect(result.amount).to.equal(9n * COST);
      expect(await env.market.redeemed(env.sessionId, env.edgeId)).to.equal(9n * COST);
    });
  });
});
