// EdgeStaking under adversarial sequences: a re-jail inside the credit window (the previous jail
// span must be kept), the documented limit of folded warm-up tranches, and sequences of slashes,
// epoch-length changes and tranche activations that must keep every holder's books exact.
import { expect } from "chai";

import { connect, type Connection, deployWithEdge, goToEpoch, TOKEN, UNBONDING_DELAY } from "../../helpers/protocol.ts";
import { expectTotalsMatchBalance, MAX_UINT256, nextTxAt } from "../../helpers/stakingCore.ts";

const RESERVE = 100_000n * TOKEN;

describe("EdgeStaking under adversarial sequences", () => {
  let conn: Connection;
  before(async () => {
    conn = await connect();
  });

  const load = <T>(fixture: () => Promise<T>) => conn.networkHelpers.loadFixture(fixture);

  /** Edge 1: operator 1,000 bonded in epoch 0 (cohort key 1), no commission, reserve funded. */
  async function reviewEdge() {
    const env = await deployWithEdge(conn);
    await env.staking.connect(env.creditor).depositRewardReserve(RESERVE);
    return env;
  }

  /** Edge 1 plus alice 3,000 bonded in epoch 0: both earn from epoch 4 (credit window 3). */
  async function reviewEdgeWithAlice() {
    const env = await deployWithEdge(conn);
    await env.staking.connect(env.alice).delegate(env.edgeId, 3_000n * TOKEN);
    await env.staking.connect(env.creditor).depositRewardReserve(RESERVE);
    return env;
  }

  describe("jail spans and folded tranches", () => {
    // Known limitation (README, "Folded warm-up"): this pins its exact size and that it never
    // overpays anyone. The fix is a per-holder ring of rewardCreditWindow + 1 tranches.
    it("rewards of a folded third addition's earlier shares stay unpaid in rewardsOwed, never overpaid", async () => {
      const env = await load(reviewEdge);
      const { staking, token, operator, alice, creditor, edgeId } = env;
      // Alice adds 100 in each of epochs 1, 2 and 3: tranche 1 (epoch 1), tranche 2 (epoch 2),
      // and the epoch-3 addition is merged into tranche 2, which then waits for epoch 3's warm-up.
      for (const epoch of [1n, 2n, 3n]) {
        await goToEpoch(conn, staking, epoch);
        await staking.connect(alice).delegate(edgeId, 100n * TOKEN);
      }
      // Epoch 6 activates cohorts of epochs 0..2: the pool now counts 1,000 + 100 + 100 earning
      // shares, but no position owns the epoch-2 shares as earning (they sit in alice's merged tranche).
      await goToEpoch(conn, staking, 6n);
      await staking.connect(creditor).creditReward(edgeId, 5n, 1_200n * TOKEN);
      // Epoch 7 activates epoch 3's cohort: alice's merged tranche starts earning from now on.
      await goToEpoch(conn, staking, 7n);
      await expect(staking.connect(operator).claimRewards(edgeId, operator.address)).to.changeTokenBalances(
        conn.ethers,
        token,
        [operator],
        [1_000n * TOKEN],
      );
      await expect(staking.connect(alice).claimRewards(edgeId, alice.address)).to.changeTokenBalances(
        conn.ethers,
        token,
        [alice],
        [100n * TOKEN],
      );
      // Operator 1,000 and alice's first tranche 100 were paid at 1 token per share; the 100
      // tokens credited to the epoch-2 shares are paid to no one (they stay in rewardsOwed): exactly
      // the folded shares' part, and nobody received more than its own shares earned.
      const [, , rewardsOwed] = await staking.totals();
      expect(rewardsOwed).to.equal(100n * TOKEN);
      await expectTotalsMatchBalance(env);
    });

    it("a re-jail within the credit window still credits the honest epochs between unjail and the new fault", async () => {
      const env = await load(reviewEdgeWithAlice);
      const { staking, operator, slasher, creditor, edgeId } = env;
      await goToEpoch(conn, staking, 5n);
      await staking.connect(slasher).slash(edgeId, 5n, 100n, slasher.address); // fault in epoch 5
      await staking.connect(operator).stake(edgeId, 100n * TOKEN); // back above the minimum self-bond
      await goToEpoch(conn, staking, 7n);
      await expect(staking.connect(operator).unjail(edgeId)).to.emit(staking, "Unjailed").withArgs(edgeId, 7n);
      // Epochs 8 and 9: active, not jailed. A new fault in epoch 10 jails the edge again.
      await goToEpoch(conn, staking, 10n);
      expect(await staking.jailedInEpoch(edgeId, 8n)).to.equal(false);
      await staking.connect(slasher).slash(edgeId, 10n, 100n, slasher.address);
      // The spans [5, 7] and [10, ...] are merged into [5, ...]: epochs 8 and 9, in which the edge
      // was not jailed, are now refused. Correct (IEdgeStaking.creditReward): only epochs the edge
      // was jailed in are declined.
      expect(await staking.jailedInEpoch(edgeId, 7n)).to.equal(true);
      expect(await staking.jailedInEpoch(edgeId, 10n)).to.equal(true);
      expect(await staking.jailedInEpoch(edgeId, 8n)).to.equal(false);
      await expect(staking.connect(creditor).creditReward(edgeId, 8n, 1_000n * TOKEN))
        .to.emit(staking, "RewardCredited")
        .withArgs(edgeId, 8n, 1_000n * TOKEN, 0n);
    });
  });

  describe("sequences that held up", () => {
    it("operator slashed with earning, leaving and warming self-bond: first loss burns leaving then earning, never warming", async () => {
      const env = await load(reviewEdgeWithAlice);
      const { staking, operator, alice, slasher, edgeId } = env;
      await goToEpoch(conn, staking, 4n);
      // Operator unbonds 400 (leaving shares stay in the pool), then re-stakes 500 (warming up).
      await staking.connect(operator).unbond(edgeId, 400n * TOKEN);
      await staking.connect(operator).stake(edgeId, 500n * TOKEN);
      expect((await staking.edgeStake(edgeId))[0]).to.equal(4_500n * TOKEN);
      await goToEpoch(conn, staking, 5n);
      // 10% of 4,500 = 450. Operator stake: earning 600 + leaving 400 + warming 500 = 1,500;
      // first-loss cap = min(50% of 1,500, burnable 1,000) = 750, so the operator takes all 450:
      // all 400 leaving shares, then 50 earning shares (price 1:1); delegators lose nothing.
      await expect(staking.connect(slasher).slash(edgeId, 5n, 1_000n, slasher.address))
        .to.emit(staking, "SlashDistributed")
        .withArgs(edgeId, 450n * TOKEN, 0n, 0n);
      expect(await staking.unbonding(edgeId, operator.address, MAX_UINT256)).to.deep.equal([0n, 0n, false]);
      expect(await staking.selfBond(edgeId)).to.equal(1_050n * TOKEN);
      const op = await staking.position(edgeId, operator.address);
      expect([op[0], op[1]]).to.deep.equal([550n * TOKEN, 500n * TOKEN]);
      expect((await staking.position(edgeId, alice.address))[0]).to.equal(3_000n * TOKEN);
      expect((await staking.edgeStake(edgeId))[0]).to.equal(4_050n * TOKEN);
      await expectTotalsMatchBalance(env);
    });

    it("an epoch-length change while unbonding neither advances nor delays the withdrawal", async () => {
      const env = await load(reviewEdgeWithAlice);
      const { staking, token, admin, alice, edgeId } = env;
      await goToEpoch(conn, staking, 4n);
      const maturity = (await staking.epochStartTime(5n)) + UNBONDING_DELAY;
      await expect(staking.connect(alice).unbond(edgeId, 1_000n * TOKEN))
        .to.emit(staking, "Unbonded")
        .withArgs(edgeId, alice.address, 0n, 1_000n * TOKEN, 1_000n * TOKEN, maturity);
      // Epochs become 60 s from the next boundary on: the end of epoch 4 does not move.
      await staking.connect(admin).setEpochLength(60n);
      expect(await staking.epochStartTime(5n)).to.equal(maturity - UNBONDING_DELAY);
      await nextTxAt(conn, maturity - 1n);
      await expect(staking.connect(alice).withdraw(edgeId, 0n))
        .to.be.revertedWithCustomError(staking, "StakingUnbondingNotMature")
        .withArgs(maturity, maturity - 1n);
      await nextTxAt(conn, maturity);
      await expect(staking.connect(alice).withdraw(edgeId, 0n)).to.changeTokenBalances(
        conn.ethers,
        token,
        [alice, staking],
        [1_000n * TOKEN, -1_000n * TOKEN],
      );
      await expectTotalsMatchBalance(env);
    });

    it("a slash in the very second an entry matures does not touch it, and takes the pool side only", async () => {
      const env = await load(reviewEdgeWithAlice);
      const { staking, token, alice, slasher, edgeId } = env;
      await goToEpoch(conn, staking, 4n);
      await staking.connect(alice).unbond(edgeId, 1_000n * TOKEN);
      const [, maturity] = await staking.unbonding(edgeId, alice.address, 0n);
      await nextTxAt(conn, maturity);
      // Pool 3,000 (operator 1,000, alice 2,000); the entry is mature, so 10% = 300, all from the pool:
      // first loss min(300, 50% of 1,000) = 300.
      await expect(staking.connect(slasher).slash(edgeId, 4n, 1_000n, slasher.address))
        .to.emit(staking, "SlashDistributed")
        .withArgs(edgeId, 300n * TOKEN, 0n, 0n);
      await expect(staking.connect(alice).withdraw(edgeId, 0n)).to.changeTokenBalances(conn.ethers, token, [alice], [1_000n * TOKEN]);
      await expectTotalsMatchBalance(env);
    });

    it("two tranches activating in the same sync are paid once each, from their own activation", async () => {
      const env = await load(reviewEdge);
      const { staking, token, alice, creditor, edgeId } = env;
      await goToEpoch(conn, staking, 1n);
      await staking.connect(alice).delegate(edgeId, 100n * TOKEN); // cohort key 2
      await goToEpoch(conn, staking, 2n);
      await staking.connect(alice).delegate(edgeId, 300n * TOKEN); // cohort key 3
      // Nobody touches the pool until epoch 7: both of alice's cohorts activate in one step.
      await goToEpoch(conn, staking, 7n);
      await staking.connect(creditor).creditReward(edgeId, 6n, 1_400n * TOKEN); // 1 token per share
      await expect(staking.connect(alice).claimRewards(edgeId, alice.address)).to.changeTokenBalances(
        conn.ethers,
        token,
        [alice],
        [400n * TOKEN],
      );
      expect(await staking.position(edgeId, alice.address)).to.deep.equal([400n * TOKEN, 0n, 0n, 0n]);
      await expectTotalsMatchBalance(env);
    });
  });
});
