import { expect } from "chai";

import {
  connect,
  type Connection,
  CREDIT_WINDOW,
  deployWithEdge,
  FIRST_LOSS_BPS,
  goToEpoch,
  JAIL_PERIOD,
  MIN_SELF_BOND,
  TOKEN,
} from "../../helpers/protocol.ts";
import { BPS, Decline, mulDiv, nextTimestamp, Status, toTokens } from "../../helpers/stakingSlash.ts";

const REWARD = 10n * TOKEN;

describe("EdgeStaking jail", () => {
  let conn: Connection;
  before(async () => {
    conn = await connect();
  });

  /**
   * Operator self-bond 3,000 (so that small slashes leave it above the minimum), alice 3,000,
   * both bonded in epoch 0 and earning from epoch 4; a reward reserve; now at epoch 5.
   */
  async function jailFixture() {
    const env = await deployWithEdge(conn);
    const { staking, operator, alice, creditor, edgeId } = env;
    await staking.connect(operator).stake(edgeId, 2_000n * TOKEN);
    await staking.connect(alice).delegate(edgeId, 3_000n * TOKEN);
    await staking.connect(creditor).depositRewardReserve(10_000n * TOKEN);
    await goToEpoch(conn, staking, 5n);
    return env;
  }

  /** Operator self-bond at the minimum (1,000) and alice 3,000, bonded in epoch 0; now at epoch 5. */
  async function minimumBondFixture() {
    const env = await deployWithEdge(conn);
    await env.staking.connect(env.alice).delegate(env.edgeId, 3_000n * TOKEN);
    await goToEpoch(conn, env.staking, 5n);
    return env;
  }

  type Env = Awaited<ReturnType<typeof jailFixture>>;

  /** Slashes (1% by default) for a fault in `faultEpoch`; checks and returns the jail end. */
  async function slashFor(env: Env, faultEpoch: bigint, fractionBps = 100n, jailPeriod = JAIL_PERIOD): Promise<bigint> {
    const t = await nextTimestamp(conn);
    const tx = env.staking.connect(env.slasher).slash(env.edgeId, faultEpoch, fractionBps, env.slasher.address);
    await expect(tx)
      .to.emit(env.staking, "Jailed")
      .withArgs(env.edgeId, faultEpoch, t + jailPeriod);
    return t + jailPeriod;
  }

  async function jailedEpochs(env: Env, from: bigint, to: bigint): Promise<bigint[]> {
    const out: bigint[] = [];
    for (let e = from; e <= to; e++) if (await env.staking.jailedInEpoch(env.edgeId, e)) out.push(e);
    return out;
  }

  async function expectDeclined(env: Env, epoch: bigint) {
    const { staking, creditor, edgeId } = env;
    const [, , , reserve] = await staking.totals();
    expect(await staking.connect(creditor).creditReward.staticCall(edgeId, epoch, REWARD)).to.equal(0n);
    await expect(staking.connect(creditor).creditReward(edgeId, epoch, REWARD))
      .to.emit(staking, "RewardDeclined")
      .withArgs(edgeId, epoch, REWARD, Decline.Jailed);
    expect((await staking.totals())[3]).to.equal(reserve);
  }

  async function expectCredited(env: Env, epoch: bigint) {
    const { staking, creditor, edgeId } = env;
    const [, , owed, reserve] = await staking.totals();
    await expect(staking.connect(creditor).creditReward(edgeId, epoch, REWARD))
      .to.emit(staking, "RewardCredited")
      .withArgs(edgeId, epoch, REWARD, 0n);
    const [, , owedAfter, reserveAfter] = await staking.totals();
    expect(reserveAfter).to.equal(reserve - REWARD);
    expect(owedAfter).to.equal(owed + REWARD);
  }

  describe("slash: jailing", () => {
    it("jails the edge from the fault epoch on and not before", async () => {
      const env = await conn.networkHelpers.loadFixture(jailFixture);
      const { staking, edgeId } = env;
      await goToEpoch(conn, staking, 6n);
      expect(await staking.edgeStatus(edgeId)).to.equal(Status.Active);
      expect(await jailedEpochs(env, 0n, 10n)).to.deep.equal([]);
      await slashFor(env, 5n);
      expect(await staking.edgeStatus(edgeId)).to.equal(Status.Jailed);
      // Until the unjail every epoch from the fault on counts as jailed, however far ahead.
      expect(await jailedEpochs(env, 0n, 10n)).to.deep.equal([5n, 6n, 7n, 8n, 9n, 10n]);
      expect(await staking.jailedInEpoch(edgeId, 1_000n)).to.equal(true);
    });

    it("keeps the epochs up to and including the unjail epoch jailed, and frees the later ones", async () => {
      const env = await conn.networkHelpers.loadFixture(jailFixture);
      const { staking, operator, edgeId } = env;
      await goToEpoch(conn, staking, 6n);
      const until = await slashFor(env, 5n);
      await conn.networkHelpers.time.increaseTo(until);
      expect(await staking.currentEpoch()).to.equal(7n);
      await staking.connect(operator).unjail(edgeId);
      expect(await jailedEpochs(env, 0n, 12n)).to.deep.equal([5n, 6n, 7n]);
    });

    it("keeps delegators out of a jailed edge", async () => {
      const env = await conn.networkHelpers.loadFixture(jailFixture);
      const { staking, bob, edgeId } = env;
      await slashFor(env, 5n);
      await expect(staking.connect(bob).delegate(edgeId, TOKEN))
        .to.be.revertedWithCustomError(staking, "StakingEdgeNotAcceptingStake")
        .withArgs(edgeId, Status.Jailed);
    });
  });

  describe("creditReward: jailed epochs", () => {
    it("declines the rewards of the fault epoch and later jailed epochs and credits earlier ones", async () => {
      const env = await conn.networkHelpers.loadFixture(jailFixture);
      const { staking, operator, edgeId } = env;
      await goToEpoch(conn, staking, 6n);
      const until = await slashFor(env, 5n);
      await expectDeclined(env, 5n);
      await expectCredited(env, 4n);
      await expectCredited(env, 3n);
      // Epoch 6 was spent in jail.
      await conn.networkHelpers.time.increaseTo(until);
      expect(await staking.currentEpoch()).to.equal(7n);
      await expectDeclined(env, 6n);
      // Unjailed in epoch 7: that epoch is still declined, epoch 8 is paid again.
      await staking.connect(operator).unjail(edgeId);
      await goToEpoch(conn, staking, 8n);
      await expectDeclined(env, 7n);
      await goToEpoch(conn, staking, 9n);
      await expectCredited(env, 8n);
    });
  });

  describe("unjail", () => {
    it("reverts when the caller is not the operator", async () => {
      const env = await conn.networkHelpers.loadFixture(jailFixture);
      const { staking, alice, operator, edgeId } = env;
      const until = await slashFor(env, 5n);
      await conn.networkHelpers.time.increaseTo(until);
      await expect(staking.connect(alice).unjail(edgeId))
        .to.be.revertedWithCustomError(staking, "StakingNotOperator")
        .withArgs(edgeId, alice.address, operator.address);
    });

    it("reverts when the edge is not jailed", async () => {
      const { staking, operator, edgeId } = await conn.networkHelpers.loadFixture(jailFixture);
      await expect(staking.connect(operator).unjail(edgeId)).to.be.revertedWithCustomError(staking, "StakingNotJailed").withArgs(edgeId);
    });

    it("reverts before jailedUntil and succeeds exactly at it", async () => {
      const env = await conn.networkHelpers.loadFixture(jailFixture);
      const { staking, operator, edgeId } = env;
      const until = await slashFor(env, 5n);
      await conn.networkHelpers.time.setNextBlockTimestamp(until - 1n);
      await expect(staking.connect(operator).unjail(edgeId))
        .to.be.revertedWithCustomError(staking, "StakingJailPeriodNotOver")
        .withArgs(edgeId, until);
      // Slashed early in epoch 5: the jail ends early in epoch 6.
      expect(until).to.be.gte(await staking.epochStartTime(6n));
      expect(until).to.be.lt(await staking.epochStartTime(7n));
      await conn.networkHelpers.time.setNextBlockTimestamp(until);
      await expect(staking.connect(operator).unjail(edgeId)).to.emit(staking, "Unjailed").withArgs(edgeId, 6n);
      expect(await staking.edgeStatus(edgeId)).to.equal(Status.Active);
    });

    it("reverts while the self-bond is below the minimum, and succeeds once the operator tops it up", async () => {
      const env = await conn.networkHelpers.loadFixture(minimumBondFixture);
      const { staking, operator, alice, edgeId } = env;
      // 30% of 4,000 = 1,200: the operator takes 500 first, the remaining 700 fall pro rata on
      // the 3,500 left, so its 500 remaining shares are worth 400.
      const active = MIN_SELF_BOND + 3_000n * TOKEN;
      const total = mulDiv(active, 3_000n, BPS);
      const firstLoss = mulDiv(MIN_SELF_BOND, FIRST_LOSS_BPS, BPS);
      const bond = toTokens(MIN_SELF_BOND - firstLoss, active - total, active - firstLoss);
      expect(bond).to.be.closeTo(400n * TOKEN, 1n);
      const until = await slashFor(env, 5n, 3_000n);
      expect(await staking.selfBond(edgeId)).to.equal(bond);
      await conn.networkHelpers.time.increaseTo(until);
      await expect(staking.connect(operator).unjail(edgeId))
        .to.be.revertedWithCustomError(staking, "StakingSelfBondBelowMinimum")
        .withArgs(edgeId, bond, MIN_SELF_BOND);
      expect(await staking.edgeStatus(edgeId)).to.equal(Status.Jailed);

      // Delegators cannot top up a jailed edge, its operator can; the top-up is still warming up
      // but counts for the self-bond.
      await expect(staking.connect(alice).delegate(edgeId, 1_000n * TOKEN))
        .to.be.revertedWithCustomError(staking, "StakingEdgeNotAcceptingStake")
        .withArgs(edgeId, Status.Jailed);
      await staking.connect(operator).stake(edgeId, 700n * TOKEN);
      const [earning, warming] = await staking.position(edgeId, operator.address);
      expect(earning).to.equal(bond);
      expect(warming).to.be.closeTo(700n * TOKEN, 2n);
      expect(await staking.selfBond(edgeId)).to.be.closeTo(bond + 700n * TOKEN, 2n);
      await expect(staking.connect(operator).unjail(edgeId))
        .to.emit(staking, "Unjailed")
        .withArgs(edgeId, await staking.currentEpoch());
      expect(await staking.edgeStatus(edgeId)).to.equal(Status.Active);
    });

    it("reverts for an edge that is exiting", async () => {
      const env = await conn.networkHelpers.loadFixture(jailFixture);
      const { staking, registry, operator, edgeId } = env;
      const until = await slashFor(env, 5n);
      await registry.connect(operator).deregisterEdge(edgeId);
      expect(await staking.edgeStatus(edgeId)).to.equal(Status.Exiting);
      await conn.networkHelpers.time.increaseTo(until);
      await expect(staking.connect(operator).unjail(edgeId)).to.be.revertedWithCustomError(staking, "StakingEdgeExiting").withArgs(edgeId);
    });

    it("emits Unjailed with the current epoch and makes the edge active and open to delegators again", async () => {
      const env = await conn.networkHelpers.loadFixture(jailFixture);
      const { staking, operator, bob, edgeId } = env;
      const until = await slashFor(env, 5n);
      await conn.networkHelpers.time.increaseTo(until);
      const epoch = await staking.currentEpoch();
      expect(epoch).to.equal(6n);
      await expect(staking.connect(operator).unjail(edgeId)).to.emit(staking, "Unjailed").withArgs(edgeId, epoch);
      expect(await staking.edgeStatus(edgeId)).to.equal(Status.Active);
      await expect(staking.connect(bob).delegate(edgeId, TOKEN)).to.emit(staking, "Bonded");
      await expect(staking.connect(operator).unjail(edgeId)).to.be.revertedWithCustomError(staking, "StakingNotJailed").withArgs(edgeId);
    });
  });

  describe("slash: repeated jail", () => {
    it("extends the span back to an earlier fault epoch and the jail to the later end", async () => {
      const env = await conn.networkHelpers.loadFixture(jailFixture);
      const { staking } = env;
      await goToEpoch(conn, staking, 7n);
      const firstUntil = await slashFor(env, 6n);
      expect(await jailedEpochs(env, 0n, 7n)).to.deep.equal([6n, 7n]);
      await conn.networkHelpers.time.increase(600);
      const secondUntil = await slashFor(env, 4n);
      expect(secondUntil).to.be.gt(firstUntil);
      expect(await jailedEpochs(env, 0n, 7n)).to.deep.equal([4n, 5n, 6n, 7n]);
      // A later fault epoch while jailed does not move the start back up.
      await slashFor(env, 7n);
      expect(await jailedEpochs(env, 0n, 7n)).to.deep.equal([4n, 5n, 6n, 7n]);
      await expectDeclined(env, 4n);
    });

    it("keeps the later jailedUntil when a second slash would end the jail earlier", async () => {
      const env = await conn.networkHelpers.loadFixture(jailFixture);
      const { staking, slasher, operator, edgeId } = env;
      const until = await slashFor(env, 5n);
      await staking.setJailPeriod(60n);
      await conn.networkHelpers.time.increase(600);
      await expect(staking.connect(slasher).slash(edgeId, 5n, 100n, slasher.address))
        .to.emit(staking, "Jailed")
        .withArgs(edgeId, 5n, until);
      await conn.networkHelpers.time.setNextBlockTimestamp(until - 1n);
      await expect(staking.connect(operator).unjail(edgeId))
        .to.be.revertedWithCustomError(staking, "StakingJailPeriodNotOver")
        .withArgs(edgeId, until);
    });

    it("merges a slash shortly after an unjail with the previous span, whose epochs stay unpaid", async () => {
      const env = await conn.networkHelpers.loadFixture(jailFixture);
      const { staking, operator, edgeId } = env;
      const until = await slashFor(env, 5n);
      await conn.networkHelpers.time.increaseTo(until);
      await staking.connect(operator).unjail(edgeId); // epoch 6
      await goToEpoch(conn, staking, 7n);
      expect(await jailedEpochs(env, 0n, 7n)).to.deep.equal([5n, 6n]);
      // Epoch 6 + credit window >= 7: the old span may still see credits, so it is extended.
      expect(6n + CREDIT_WINDOW).to.be.gte(7n);
      await slashFor(env, 7n);
      expect(await jailedEpochs(env, 0n, 8n)).to.deep.equal([5n, 6n, 7n, 8n]);
      await expectDeclined(env, 5n);
      await expectDeclined(env, 6n);
      await expectCredited(env, 4n);
    });

    it("starts a new span for a slash after the credit window of the previous one has passed", async () => {
      const env = await conn.networkHelpers.loadFixture(jailFixture);
      const { staking, operator, edgeId } = env;
      const until = await slashFor(env, 5n);
      await conn.networkHelpers.time.increaseTo(until);
      await staking.connect(operator).unjail(edgeId); // epoch 6
      await goToEpoch(conn, staking, 6n + CREDIT_WINDOW + 1n); // 10
      await slashFor(env, 10n);
      expect(await jailedEpochs(env, 0n, 10n)).to.deep.equal([10n]);
      // The old span's epochs are past the credit window anyway; the free epochs in between pay.
      await expect(staking.connect(env.creditor).creditReward(edgeId, 6n, REWARD))
        .to.be.revertedWithCustomError(staking, "StakingCreditWindowClosed")
        .withArgs(6n, 10n);
      await expectCredited(env, 7n);
      await expectCredited(env, 9n);
    });
  });
});
