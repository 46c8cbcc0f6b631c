import { expect } from "chai";

import {
  connect,
  type Connection,
  CREDIT_WINDOW,
  deployProtocol,
  deployWithEdge,
  EPOCH,
  goToEpoch,
  JAIL_PERIOD,
  MAX_SLASH_BPS,
  MIN_SELF_BOND,
  TOKEN,
  UNBONDING_DELAY,
} from "../../helpers/protocol.ts";
import { expectTotalsMatchBalance, MAX_UINT256, nextTxAt, registerEdge } from "../../helpers/stakingCore.ts";

const RESERVE = 100_000n * TOKEN;

describe("Attacks on EdgeStaking", () => {
  let conn: Connection;
  before(async () => {
    conn = await connect();
  });

  const load = <T>(fixture: () => Promise<T>) => conn.networkHelpers.loadFixture(fixture);

  /** Edge 1: operator 1,000 and alice 3,000 bonded in epoch 0 (earning from epoch 4), no commission, reserve funded. */
  async function incumbents() {
    const env = await deployWithEdge(conn);
    await env.staking.connect(env.alice).delegate(env.edgeId, 3_000n * TOKEN);
    await env.staking.connect(env.creditor).depositRewardReserve(RESERVE);
    return env;
  }

  describe("reward sniping", () => {
    it("pays whales nothing for the epochs up to their join, whenever credited, and the incumbents in full", async () => {
      const env = await load(incumbents);
      const { staking, operator, alice, bob, carol, creditor, edgeId } = env;
      const rewards = async () =>
        Promise.all([operator, alice, bob, carol].map(async (s) => (await staking.position(edgeId, s.address))[3]));
      // Earning: operator 1,000 and alice 3,000, i.e. 1/4 and 3/4 of every reward.

      await goToEpoch(conn, staking, 5n);
      await staking.connect(bob).delegate(edgeId, 96_000n * TOKEN); // whale 1 joins in epoch 5

      await goToEpoch(conn, staking, 6n);
      await staking.connect(carol).delegate(edgeId, 100_000n * TOKEN); // whale 2, right before the credit
      await staking.connect(creditor).creditReward(edgeId, 5n, 1_000n * TOKEN);
      expect(await rewards()).to.deep.equal([250n * TOKEN, 750n * TOKEN, 0n, 0n]);

      // An earlier epoch credited after both joined.
      await goToEpoch(conn, staking, 7n);
      await staking.connect(creditor).creditReward(edgeId, 4n, 400n * TOKEN);
      expect(await rewards()).to.deep.equal([350n * TOKEN, 1_050n * TOKEN, 0n, 0n]);

      // Epoch 5 again, at the last moment of its credit window.
      await goToEpoch(conn, staking, 8n);
      await staking.connect(creditor).creditReward(edgeId, 5n, 2_000n * TOKEN);
      expect(await rewards()).to.deep.equal([850n * TOKEN, 2_550n * TOKEN, 0n, 0n]);

      // Epoch 6, carol's join epoch, at the end of its window: bob, bonded throughout epoch 6,
      // now shares it (96,000 of 100,000 earning); carol still gets nothing.
      await goToEpoch(conn, staking, 9n);
      await staking.connect(creditor).creditReward(edgeId, 6n, 10_000n * TOKEN);
      expect(await rewards()).to.deep.equal([950n * TOKEN, 2_850n * TOKEN, 9_600n * TOKEN, 0n]);

      // Nothing was lost to rounding, and carol has nothing to claim.
      expect((await staking.totals())[2]).to.equal(13_400n * TOKEN);
      await expect(staking.connect(carol).claimRewards(edgeId, carol.address)).to.be.revertedWithCustomError(
        staking,
        "StakingNothingToClaim",
      );
      await expectTotalsMatchBalance(env);
    });

    it("pays nothing to a whale joining in the last second of epoch E for E's reward credited in the first second of E + 1", async () => {
      const env = await load(incumbents);
      const { staking, token, operator, alice, bob, creditor, edgeId } = env;
      await goToEpoch(conn, staking, 5n);
      const start6 = await staking.epochStartTime(6n);
      await nextTxAt(conn, start6 - 1n);
      await staking.connect(bob).delegate(edgeId, 500_000n * TOKEN);
      await nextTxAt(conn, start6);
      await staking.connect(creditor).creditReward(edgeId, 5n, 1_000n * TOKEN);
      expect((await staking.position(edgeId, bob.address))[3]).to.equal(0n);
      await expect(staking.connect(alice).claimRewards(edgeId, alice.address)).to.changeTokenBalance(
        conn.ethers,
        token,
        alice,
        750n * TOKEN,
      );
      await expect(staking.connect(operator).claimRewards(edgeId, operator.address)).to.changeTokenBalance(
        conn.ethers,
        token,
        operator,
        250n * TOKEN,
      );
      // And the whale cannot leave with its capital before it has warmed up.
      await expect(staking.connect(bob).unbond(edgeId, MAX_UINT256))
        .to.be.revertedWithCustomError(staking, "StakingStillWarmingUp")
        .withArgs(edgeId, bob.address, 9n);
      await expectTotalsMatchBalance(env);
    });
  });

  describe("first-depositor share inflation", () => {
    const DONATION = 500_000n * TOKEN;

    /** The attacker (outsider) runs edge 1, bonds 1 wei into the empty pool and donates 500,000 tokens. */
    async function inflated() {
      const env = await deployProtocol(conn);
      const { staking, registry, token, outsider } = env;
      await registry.setOperatorAllowlisted(outsider.address, true);
      const edgeId = await registerEdge(conn, env, outsider);
      await staking.connect(outsider).stake(edgeId, 1n);
      const before = {
        edgeStake: await staking.edgeStake(edgeId),
        attacker: await staking.position(edgeId, outsider.address),
        totals: await staking.totals(),
      };
      await token.connect(outsider).transfer(await staking.getAddress(), DONATION);
      return { ...env, edgeId, before };
    }

    it("does not change the share price or any position", async () => {
      const env = await load(inflated);
      const { staking, outsider, edgeId, before } = env;
      expect(before.edgeStake).to.deep.equal([1n, 0n, 0n]);
      expect(before.attacker).to.deep.equal([0n, 1n, 4n, 0n]);
      expect(await staking.edgeStake(edgeId)).to.deep.equal(before.edgeStake);
      expect(await staking.position(edgeId, outsider.address)).to.deep.equal(before.attacker);
      expect(await staking.totals()).to.deep.equal(before.totals);
      expect(await staking.selfBond(edgeId)).to.equal(1n);
      // The donation is simply not counted: the balance exceeds the bookkeeping by exactly it.
      await expectTotalsMatchBalance(env, DONATION);
    });

    it("gives a later victim shares worth its full deposit, which it gets back in full", async () => {
      const env = await load(inflated);
      const { staking, token, alice, bob, outsider, edgeId } = env;
      const deposit = 1_000n * TOKEN; // far below the donation
      await expect(staking.connect(alice).delegate(edgeId, deposit))
        .to.emit(staking, "Bonded")
        .withArgs(edgeId, alice.address, deposit, deposit, 4n);
      expect(await staking.position(edgeId, alice.address)).to.deep.equal([0n, deposit, 4n, 0n]);
      // Even a 1-wei deposit gets its share.
      await expect(staking.connect(bob).delegate(edgeId, 1n)).to.emit(staking, "Bonded").withArgs(edgeId, bob.address, 1n, 1n, 4n);

      await goToEpoch(conn, staking, 4n);
      expect(await staking.position(edgeId, alice.address)).to.deep.equal([deposit, 0n, 0n, 0n]);
      expect(await staking.position(edgeId, outsider.address)).to.deep.equal([1n, 0n, 0n, 0n]);

      await expect(staking.connect(alice).unbond(edgeId, MAX_UINT256))
        .to.emit(staking, "Unbonded")
        .withArgs(edgeId, alice.address, 0n, deposit, deposit, (await staking.epochStartTime(5n)) + UNBONDING_DELAY);
      // The attacker (this edge's operator) still has 1 wei worth 1 wei; as the operator's
      // self-bond it leaves under the operator unbonding index.
      await expect(staking.connect(outsider).unbond(edgeId, MAX_UINT256))
        .to.emit(staking, "Unbonded")
        .withArgs(edgeId, outsider.address, MAX_UINT256, 1n, 1n, (await staking.epochStartTime(5n)) + UNBONDING_DELAY);

      const [, at] = await staking.unbonding(edgeId, alice.address, 0n);
      await conn.networkHelpers.time.increaseTo(at);
      await expect(staking.connect(alice).withdraw(edgeId, 0n)).to.changeTokenBalance(conn.ethers, token, alice, deposit);
      await expect(staking.connect(outsider).withdraw(edgeId, MAX_UINT256)).to.changeTokenBalance(conn.ethers, token, outsider, 1n);
      expect(await staking.totals()).to.deep.equal([1n, 0n, 0n, 0n]); // bob's wei
      await expectTotalsMatchBalance(env, DONATION);
    });
  });

  describe("commission raised without delay", () => {
    /** As `incumbents`, plus a 10% commission requested in epoch 0 (effective from 2); chain at epoch 6. */
    async function tenPercent() {
      const env = await incumbents();
      await env.staking.connect(env.operator).setCommission(env.edgeId, 1_000n);
      await goToEpoch(conn, env.staking, 6n);
      return env;
    }

    it("splits the rewards of epochs before effectiveEpoch at the old rate, even when credited after the change or after effectiveEpoch", async () => {
      const env = await load(tenPercent);
      const { staking, operator, alice, creditor, edgeId } = env;
      await expect(staking.connect(operator).setCommission(edgeId, 10_000n))
        .to.emit(staking, "CommissionChangeScheduled")
        .withArgs(edgeId, 1_000n, 10_000n, 8n);

      // Epoch 5, credited after the request: 10%, then 900 split 1/4 : 3/4.
      await expect(staking.connect(creditor).creditReward(edgeId, 5n, 1_000n * TOKEN))
        .to.emit(staking, "RewardCredited")
        .withArgs(edgeId, 5n, 1_000n * TOKEN, 100n * TOKEN);
      // Epochs 6 and 7, credited at the end of their windows, after epoch 8 took the new rate.
      await goToEpoch(conn, staking, 9n);
      await expect(staking.connect(creditor).creditReward(edgeId, 6n, 1_000n * TOKEN))
        .to.emit(staking, "RewardCredited")
        .withArgs(edgeId, 6n, 1_000n * TOKEN, 100n * TOKEN);
      await goToEpoch(conn, staking, 10n);
      await expect(staking.connect(creditor).creditReward(edgeId, 7n, 1_000n * TOKEN))
        .to.emit(staking, "RewardCredited")
        .withArgs(edgeId, 7n, 1_000n * TOKEN, 100n * TOKEN);
      // Epoch 8 is the first at 100%.
      await expect(staking.connect(creditor).creditReward(edgeId, 8n, 1_000n * TOKEN))
        .to.emit(staking, "RewardCredited")
        .withArgs(edgeId, 8n, 1_000n * TOKEN, 1_000n * TOKEN);

      expect((await staking.position(edgeId, alice.address))[3]).to.equal(3n * 675n * TOKEN);
      expect((await staking.position(edgeId, operator.address))[3]).to.equal(3n * 325n * TOKEN + 1_000n * TOKEN);
      await expectTotalsMatchBalance(env);
    });

    it("shows delegators the pending change and leaves them commissionDelay epochs to unbond", async () => {
      const env = await load(tenPercent);
      const { staking, token, operator, alice, creditor, edgeId } = env;
      await staking.connect(operator).setCommission(edgeId, 10_000n); // epoch 6, effective from 8
      expect(await staking.commissionAt(edgeId, 6n)).to.equal(1_000n);
      expect(await staking.commissionAt(edgeId, 7n)).to.equal(1_000n);
      expect(await staking.commissionAt(edgeId, 8n)).to.equal(10_000n);
      // The operator cannot re-request to bring the change forward.
      await expect(staking.connect(operator).setCommission(edgeId, 10_000n))
        .to.be.revertedWithCustomError(staking, "StakingCommissionChangePending")
        .withArgs(edgeId, 12n);

      // Alice leaves in epoch 7, the last epoch at the old rate, after epoch 6's reward came in.
      await goToEpoch(conn, staking, 7n);
      await staking.connect(creditor).creditReward(edgeId, 6n, 1_000n * TOKEN);
      await staking.connect(alice).unbond(edgeId, MAX_UINT256);
      const [amount, at] = await staking.unbonding(edgeId, alice.address, 0n);
      expect(amount).to.equal(3_000n * TOKEN);
      expect(at).to.equal((await staking.epochStartTime(8n)) + UNBONDING_DELAY);

      // None of her stake earns in an epoch at 100%.
      await goToEpoch(conn, staking, 9n);
      await expect(staking.connect(creditor).creditReward(edgeId, 8n, 1_000n * TOKEN))
        .to.emit(staking, "RewardCredited")
        .withArgs(edgeId, 8n, 1_000n * TOKEN, 1_000n * TOKEN);
      expect((await staking.position(edgeId, alice.address))[3]).to.equal(675n * TOKEN);

      await conn.networkHelpers.time.increaseTo(at);
      await expect(staking.connect(alice).withdraw(edgeId, 0n)).to.changeTokenBalance(conn.ethers, token, alice, 3_000n * TOKEN);
      await expect(staking.connect(alice).claimRewards(edgeId, alice.address)).to.changeTokenBalance(
        conn.ethers,
        token,
        alice,
        675n * TOKEN,
      );
      await expectTotalsMatchBalance(env);
    });
  });

  describe("a pool slashed to dust", () => {
    /**
     * Edge 1 with no self-bond: alice, its only holder, bonded 1,000 in epoch 0 and unbonded it all
     * in epoch 4, with an unbonding delay of 20 epochs (longer than a warm-up).
     */
    async function aliceUnbonding() {
      const env = await deployProtocol(conn);
      await env.staking.connect(env.admin).setUnbondingDelay(20n * EPOCH);
      await registerEdge(conn, env, env.operator);
      await env.staking.connect(env.alice).delegate(1n, 1_000n * TOKEN);
      await goToEpoch(conn, env.staking, 4n);
      await env.staking.connect(env.alice).unbond(1n, MAX_UINT256);
      return { ...env, edgeId: 1n };
    }

    it("maximal slashes exhaust the unbonding queue: a clear StakingUnbondingExhausted while it is live, a new era once it has matured", async () => {
      const env = await load(aliceUnbonding);
      const { staking, operator, bob, slasher, edgeId } = env;
      for (let i = 0; i < 130; i++) await staking.connect(slasher).slash(edgeId, 4n, MAX_SLASH_BPS, slasher.address);
      const [aliceEntry, aliceMaturity] = await staking.unbonding(edgeId, env.alice.address, 0n);
      expect(aliceEntry).to.equal(0n);
      // the pool is empty, so new stake joins at a fresh price
      await staking.connect(operator).stake(edgeId, MIN_SELF_BOND);
      await conn.networkHelpers.time.increase(JAIL_PERIOD);
      await staking.connect(operator).unjail(edgeId);
      await staking.connect(bob).delegate(edgeId, 10n * TOKEN);
      await goToEpoch(conn, staking, (await staking.currentEpoch()) + CREDIT_WINDOW + 1n);
      const now = BigInt(await conn.networkHelpers.time.latest());
      expect(now).to.be.lessThan(aliceMaturity);
      await expect(staking.connect(bob).unbond(edgeId, TOKEN))
        .to.be.revertedWithCustomError(staking, "StakingUnbondingExhausted")
        .withArgs(edgeId);
      await conn.networkHelpers.time.increaseTo(aliceMaturity);
      await staking.connect(bob).unbond(edgeId, 4n * TOKEN);
      expect((await staking.unbonding(edgeId, bob.address, 0n))[0]).to.equal(4n * TOKEN);
      await staking.connect(env.alice).withdraw(edgeId, 0n);
      await expectTotalsMatchBalance(env);
    });

    it("slashes that leave the shares worth almost nothing make bonding revert with StakingPoolDepleted, not a cast overflow", async () => {
      const env = await load(incumbents);
      const { staking, token, operator, slasher, edgeId } = env;
      await goToEpoch(conn, staking, 4n);
      for (let i = 0; i < 200; i++) await staking.connect(slasher).slash(edgeId, 4n, MAX_SLASH_BPS, slasher.address);
      await token.connect(operator).approve(await staking.getAddress(), MAX_UINT256);
      await expect(staking.connect(operator).stake(edgeId, MIN_SELF_BOND))
        .to.be.revertedWithCustomError(staking, "StakingPoolDepleted")
        .withArgs(edgeId);
    });
  });
});
