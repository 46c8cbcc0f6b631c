import { expect } from "chai";

import { connect, type Connection, deployWithEdge, goToEpoch, TOKEN, UNBONDING_DELAY } from "../../helpers/protocol.ts";
import { expectTotalsMatchBalance, MAX_UINT256, nextTxAt } from "../../helpers/stakingCore.ts";

describe("EdgeStaking: unbonding", () => {
  let conn: Connection;
  before(async () => {
    conn = await connect();
  });

  /**
   * Edge 1: operator 1,000, alice 3,000 and bob 1,000 bonded in epoch 0; the chain is at the
   * start of epoch 4, so all of it is earning; the creditor has parked a reward reserve.
   */
  async function earning() {
    const env = await deployWithEdge(conn);
    await env.staking.connect(env.alice).delegate(env.edgeId, 3_000n * TOKEN);
    await env.staking.connect(env.bob).delegate(env.edgeId, 1_000n * TOKEN);
    await goToEpoch(conn, env.staking, 4n);
    await env.staking.connect(env.creditor).depositRewardReserve(100_000n * TOKEN);
    return env;
  }

  const load = () => conn.networkHelpers.loadFixture(earning);
  /** When an unbonding requested during `epoch` matures under the initial delay. */
  const maturityOf = async (env: Awaited<ReturnType<typeof earning>>, epoch: bigint) =>
    (await env.staking.epochStartTime(epoch + 1n)) + UNBONDING_DELAY;

  describe("unbond", () => {
    it("unbonds an exact amount of earning stake and emits Unbonded", async () => {
      const env = await load();
      const { staking, token, alice, edgeId } = env;
      const at = await maturityOf(env, 4n);
      const tx = staking.connect(alice).unbond(edgeId, 400n * TOKEN);
      await expect(tx)
        .to.emit(staking, "Unbonded")
        .withArgs(edgeId, alice.address, 0n, 400n * TOKEN, 400n * TOKEN, at);
      // Nothing leaves the contract until withdrawal.
      await expect(tx).to.changeTokenBalances(conn.ethers, token, [alice, staking], [0n, 0n]);
      expect(await staking.position(edgeId, alice.address)).to.deep.equal([2_600n * TOKEN, 0n, 0n, 0n]);
      expect(await staking.unbonding(edgeId, alice.address, 0n)).to.deep.equal([400n * TOKEN, at, true]);
      expect(await staking.unbondingCount(edgeId, alice.address)).to.equal(1n);
      expect(await staking.edgeStake(edgeId)).to.deep.equal([4_600n * TOKEN, 4_600n * TOKEN, 400n * TOKEN]);
      expect((await staking.totals()).slice(0, 2)).to.deep.equal([4_600n * TOKEN, 400n * TOKEN]);
      await expectTotalsMatchBalance(env);
    });

    it("unbonds all earning stake for type(uint256).max", async () => {
      const env = await load();
      const { staking, alice, edgeId } = env;
      await expect(staking.connect(alice).unbond(edgeId, MAX_UINT256))
        .to.emit(staking, "Unbonded")
        .withArgs(edgeId, alice.address, 0n, 3_000n * TOKEN, 3_000n * TOKEN, await maturityOf(env, 4n));
      expect(await staking.position(edgeId, alice.address)).to.deep.equal([0n, 0n, 0n, 0n]);
      expect((await staking.unbonding(edgeId, alice.address, 0n))[0]).to.equal(3_000n * TOKEN);
      await expectTotalsMatchBalance(env);
    });

    it("unbonds only the earning part with type(uint256).max when younger stake is warming up", async () => {
      const env = await load();
      const { staking, alice, edgeId } = env;
      await staking.connect(alice).delegate(edgeId, 500n * TOKEN); // epoch 4, earns from 8
      await expect(staking.connect(alice).unbond(edgeId, MAX_UINT256))
        .to.emit(staking, "Unbonded")
        .withArgs(edgeId, alice.address, 0n, 3_000n * TOKEN, 3_000n * TOKEN, await maturityOf(env, 4n));
      expect(await staking.position(edgeId, alice.address)).to.deep.equal([0n, 500n * TOKEN, 8n, 0n]);
    });

    it("reverts with StakingStillWarmingUp when the stake is still warming up", async () => {
      const { staking, alice, carol, edgeId } = await load();
      await staking.connect(carol).delegate(edgeId, 1_000n * TOKEN); // epoch 4, earns from 8
      await goToEpoch(conn, staking, 5n);
      for (const amount of [1n, 1_000n * TOKEN, MAX_UINT256]) {
        await expect(staking.connect(carol).unbond(edgeId, amount))
          .to.be.revertedWithCustomError(staking, "StakingStillWarmingUp")
          .withArgs(edgeId, carol.address, 8n);
      }
      // With earning and young stake, asking for more than the earning part names the young part.
      await staking.connect(alice).delegate(edgeId, 100n * TOKEN); // epoch 5, earns from 9
      await expect(staking.connect(alice).unbond(edgeId, 3_000n * TOKEN + 1n))
        .to.be.revertedWithCustomError(staking, "StakingStillWarmingUp")
        .withArgs(edgeId, alice.address, 9n);
      await expect(staking.connect(alice).unbond(edgeId, 3_000n * TOKEN)).to.emit(staking, "Unbonded");
      // From epoch 8 on carol's stake can leave.
      await goToEpoch(conn, staking, 8n);
      await expect(staking.connect(carol).unbond(edgeId, MAX_UINT256))
        .to.emit(staking, "Unbonded")
        .withArgs(edgeId, carol.address, 0n, 1_000n * TOKEN, 1_000n * TOKEN, (await staking.epochStartTime(9n)) + UNBONDING_DELAY);
    });

    it("reverts with StakingInsufficientEarningStake when asking for more than the earning stake", async () => {
      const { staking, alice, outsider, edgeId } = await load();
      await expect(staking.connect(alice).unbond(edgeId, 3_000n * TOKEN + 1n))
        .to.be.revertedWithCustomError(staking, "StakingInsufficientEarningStake")
        .withArgs(3_000n * TOKEN + 1n, 3_000n * TOKEN);
      // An account without stake has nothing to unbond, even with type(uint256).max.
      await expect(staking.connect(outsider).unbond(edgeId, MAX_UINT256))
        .to.be.revertedWithCustomError(staking, "StakingInsufficientEarningStake")
        .withArgs(MAX_UINT256, 0n);
    });

    it("reverts with StakingZeroAmount for a zero amount", async () => {
      const { staking, alice, edgeId } = await load();
      await expect(staking.connect(alice).unbond(edgeId, 0n)).to.be.revertedWithCustomError(staking, "StakingZeroAmount");
    });

    it("numbers each account's entries from 0 and returns the index", async () => {
      const { staking, alice, bob, edgeId } = await load();
      expect(await staking.connect(alice).unbond.staticCall(edgeId, TOKEN)).to.equal(0n);
      await staking.connect(alice).unbond(edgeId, TOKEN);
      expect(await staking.connect(alice).unbond.staticCall(edgeId, 2n * TOKEN)).to.equal(1n);
      await expect(staking.connect(alice).unbond(edgeId, 2n * TOKEN))
        .to.emit(staking, "Unbonded")
        .withArgs(edgeId, alice.address, 1n, 2n * TOKEN, 2n * TOKEN, (await staking.epochStartTime(5n)) + UNBONDING_DELAY);
      await expect(staking.connect(bob).unbond(edgeId, TOKEN))
        .to.emit(staking, "Unbonded")
        .withArgs(edgeId, bob.address, 0n, TOKEN, TOKEN, (await staking.epochStartTime(5n)) + UNBONDING_DELAY);
      expect(await staking.unbondingCount(edgeId, alice.address)).to.equal(2n);
      expect(await staking.unbondingCount(edgeId, bob.address)).to.equal(1n);
      expect((await staking.unbonding(edgeId, alice.address, 0n))[0]).to.equal(TOKEN);
      expect((await staking.unbonding(edgeId, alice.address, 1n))[0]).to.equal(2n * TOKEN);
    });

    it("matures unbondingDelay after the start of the next epoch, wherever in the epoch it is requested", async () => {
      const { staking, alice, edgeId } = await load();
      const start5 = await staking.epochStartTime(5n);
      await nextTxAt(conn, start5 - 1n); // last second of epoch 4
      await staking.connect(alice).unbond(edgeId, TOKEN);
      expect((await staking.unbonding(edgeId, alice.address, 0n))[1]).to.equal(start5 + UNBONDING_DELAY);
      await nextTxAt(conn, start5); // first second of epoch 5
      await staking.connect(alice).unbond(edgeId, TOKEN);
      expect((await staking.unbonding(edgeId, alice.address, 1n))[1]).to.equal(start5 + 3_600n + UNBONDING_DELAY);
    });

    it("never lets a maturity fall below an earlier one when governance shortens the delay", async () => {
      const { staking, admin, alice, bob, edgeId } = await load();
      await staking.connect(alice).unbond(edgeId, 100n * TOKEN); // epoch 4
      const first = (await staking.epochStartTime(5n)) + UNBONDING_DELAY;
      await staking.connect(admin).setUnbondingDelay(60n);

      // Same epoch: start(5) + 60 would be earlier than the queued entry, so it waits for it.
      await expect(staking.connect(bob).unbond(edgeId, 100n * TOKEN))
        .to.emit(staking, "Unbonded")
        .withArgs(edgeId, bob.address, 0n, 100n * TOKEN, 100n * TOKEN, first);
      // One epoch later: start(6) + 60 is still before `first`.
      await goToEpoch(conn, staking, 5n);
      await expect(staking.connect(alice).unbond(edgeId, 100n * TOKEN))
        .to.emit(staking, "Unbonded")
        .withArgs(edgeId, alice.address, 1n, 100n * TOKEN, 100n * TOKEN, first);
      // Three epochs later the short delay gives a later time on its own: start(8) + 60.
      await goToEpoch(conn, staking, 7n);
      const own = (await staking.epochStartTime(8n)) + 60n;
      expect(own).to.be.greaterThan(first);
      await expect(staking.connect(bob).unbond(edgeId, 100n * TOKEN))
        .to.emit(staking, "Unbonded")
        .withArgs(edgeId, bob.address, 1n, 100n * TOKEN, 100n * TOKEN, own);
      // The first entry keeps its own maturity.
      expect((await staking.unbonding(edgeId, alice.address, 0n))[1]).to.equal(first);
    });

    it("stops the unbonded stake from earning at once, keeping rewards accrued before", async () => {
      const env = await load();
      const { staking, token, operator, alice, bob, creditor, edgeId } = env;
      await goToEpoch(conn, staking, 5n);
      // 5,000 earning: operator 1,000, alice 3,000, bob 1,000 (commission 0).
      await staking.connect(creditor).creditReward(edgeId, 4n, 500n * TOKEN);
      expect((await staking.position(edgeId, alice.address))[3]).to.equal(300n * TOKEN);

      await staking.connect(alice).unbond(edgeId, MAX_UINT256);
      expect((await staking.edgeStake(edgeId))[1]).to.equal(2_000n * TOKEN);
      // A further reward for epoch 4, in which alice was bonded, is credited after she unbonded.
      await staking.connect(creditor).creditReward(edgeId, 4n, 400n * TOKEN);
      expect((await staking.position(edgeId, alice.address))[3]).to.equal(300n * TOKEN);
      expect((await staking.position(edgeId, operator.address))[3]).to.equal(300n * TOKEN);
      expect((await staking.position(edgeId, bob.address))[3]).to.equal(300n * TOKEN);

      await expect(staking.connect(alice).claimRewards(edgeId, alice.address)).to.changeTokenBalances(
        conn.ethers,
        token,
        [alice, staking],
        [300n * TOKEN, -300n * TOKEN],
      );
      await expectTotalsMatchBalance(env);
    });
  });

  describe("withdraw", () => {
    it("reverts with StakingUnbondingNotMature before withdrawableAt", async () => {
      const { staking, alice, edgeId } = await load();
      await staking.connect(alice).unbond(edgeId, 400n * TOKEN);
      const [, at] = await staking.unbonding(edgeId, alice.address, 0n);
      await nextTxAt(conn, at - 1n);
      await expect(staking.connect(alice).withdraw(edgeId, 0n))
        .to.be.revertedWithCustomError(staking, "StakingUnbondingNotMature")
        .withArgs(at, at - 1n);
    });

    it("pays the entry's amount at maturity, emits Withdrawn and deletes the entry", async () => {
      const env = await load();
      const { staking, token, alice, edgeId } = env;
      await staking.connect(alice).unbond(edgeId, 400n * TOKEN);
      const [, at] = await staking.unbonding(edgeId, alice.address, 0n);
      await conn.networkHelpers.time.increaseTo(at);
      expect(await staking.connect(alice).withdraw.staticCall(edgeId, 0n)).to.equal(400n * TOKEN);
      const tx = staking.connect(alice).withdraw(edgeId, 0n);
      await expect(tx)
        .to.emit(staking, "Withdrawn")
        .withArgs(edgeId, alice.address, 0n, 400n * TOKEN);
      await expect(tx).to.changeTokenBalances(conn.ethers, token, [alice, staking], [400n * TOKEN, -400n * TOKEN]);
      expect(await staking.unbonding(edgeId, alice.address, 0n)).to.deep.equal([0n, 0n, false]);
      // The count is of entries ever created, so indices are never reused.
      expect(await staking.unbondingCount(edgeId, alice.address)).to.equal(1n);
      expect((await staking.totals())[1]).to.equal(0n);
      expect(await staking.position(edgeId, alice.address)).to.deep.equal([2_600n * TOKEN, 0n, 0n, 0n]);
      await expectTotalsMatchBalance(env);
    });

    it("reverts with StakingUnknownUnbonding for an index never created and for a second withdrawal", async () => {
      const { staking, alice, edgeId } = await load();
      await staking.connect(alice).unbond(edgeId, 400n * TOKEN);
      await expect(staking.connect(alice).withdraw(edgeId, 1n))
        .to.be.revertedWithCustomError(staking, "StakingUnknownUnbonding")
        .withArgs(edgeId, alice.address, 1n);
      const [, at] = await staking.unbonding(edgeId, alice.address, 0n);
      await conn.networkHelpers.time.increaseTo(at);
      await staking.connect(alice).withdraw(edgeId, 0n);
      await expect(staking.connect(alice).withdraw(edgeId, 0n))
        .to.be.revertedWithCustomError(staking, "StakingUnknownUnbonding")
        .withArgs(edgeId, alice.address, 0n);
    });

    it("lets only the account that unbonded withdraw its entry", async () => {
      const { staking, token, alice, bob, edgeId } = await load();
      await staking.connect(alice).unbond(edgeId, 400n * TOKEN);
      const [, at] = await staking.unbonding(edgeId, alice.address, 0n);
      await conn.networkHelpers.time.increaseTo(at);
      await expect(staking.connect(bob).withdraw(edgeId, 0n))
        .to.be.revertedWithCustomError(staking, "StakingUnknownUnbonding")
        .withArgs(edgeId, bob.address, 0n);
      // The same index in another edge is another entry.
      await expect(staking.connect(alice).withdraw(2n, 0n))
        .to.be.revertedWithCustomError(staking, "StakingUnknownUnbonding")
        .withArgs(2n, alice.address, 0n);
      await expect(staking.connect(alice).withdraw(edgeId, 0n)).to.changeTokenBalance(conn.ethers, token, alice, 400n * TOKEN);
    });

    it("withdraws several entries independently, in any order", async () => {
      const env = await load();
      const { staking, token, alice, edgeId } = env;
      await staking.connect(alice).unbond(edgeId, 100n * TOKEN);
      await goToEpoch(conn, staking, 5n);
      await staking.connect(alice).unbond(edgeId, 200n * TOKEN);
      const [, first] = await staking.unbonding(edgeId, alice.address, 0n);
      const [, second] = await staking.unbonding(edgeId, alice.address, 1n);
      expect(second - first).to.equal(3_600n);
      await conn.networkHelpers.time.increaseTo(second);
      await expect(staking.connect(alice).withdraw(edgeId, 1n)).to.changeTokenBalance(conn.ethers, token, alice, 200n * TOKEN);
      expect(await staking.unbonding(edgeId, alice.address, 0n)).to.deep.equal([100n * TOKEN, first, true]);
      await expect(staking.connect(alice).withdraw(edgeId, 0n)).to.changeTokenBalance(conn.ethers, token, alice, 100n * TOKEN);
      await expectTotalsMatchBalance(env);
    });
  });

  describe("unbonding and unbondingCount views", () => {
    it("report nothing for an account that never unbonded", async () => {
      const { staking, carol, edgeId } = await load();
      expect(await staking.unbonding(edgeId, carol.address, 0n)).to.deep.equal([0n, 0n, false]);
      expect(await staking.unbondingCount(edgeId, carol.address)).to.equal(0n);
    });
  });

  describe("operator unbonding (leaving self-bond)", () => {
    it("keeps the operator's unbonded self-bond in the pool as one leaving tranche that earns nothing", async () => {
      const env = await load();
      const { staking, operator, creditor, edgeId } = env;
      const index = await staking.OPERATOR_UNBONDING_INDEX();
      expect(index).to.equal(MAX_UINT256);
      const [activeBefore] = await staking.edgeStake(edgeId);
      await expect(staking.connect(operator).unbond(edgeId, 300n * TOKEN))
        .to.emit(staking, "Unbonded")
        .withArgs(edgeId, operator.address, index, 300n * TOKEN, 300n * TOKEN, await maturityOf(env, 4n));
      // Still active stake of the edge (it backs the edge until withdrawn), but no longer self-bond.
      const [activeAfter, earningAfter] = await staking.edgeStake(edgeId);
      expect(activeAfter).to.equal(activeBefore);
      expect(earningAfter).to.equal(activeBefore - 300n * TOKEN);
      expect(await staking.selfBond(edgeId)).to.equal(700n * TOKEN);
      expect(await staking.unbondingCount(edgeId, operator.address)).to.equal(0n);
      expect(await staking.unbonding(edgeId, operator.address, index)).to.deep.equal([300n * TOKEN, await maturityOf(env, 4n), true]);
      // It earns nothing: a reward of 4,700 for epoch 3 goes to the 4,700 earning tokens only.
      await staking.connect(creditor).creditReward(edgeId, 3n, 4_700n * TOKEN);
      expect((await staking.position(edgeId, operator.address))[3]).to.equal(700n * TOKEN);
      await expectTotalsMatchBalance(env);
    });

    it("merges later operator unbonds into the tranche, which matures with the latest", async () => {
      const env = await load();
      const { staking, operator, edgeId } = env;
      const index = await staking.OPERATOR_UNBONDING_INDEX();
      await staking.connect(operator).unbond(edgeId, 100n * TOKEN);
      await goToEpoch(conn, staking, 6n);
      await staking.connect(operator).unbond(edgeId, 200n * TOKEN);
      expect(await staking.unbonding(edgeId, operator.address, index)).to.deep.equal([300n * TOKEN, await maturityOf(env, 6n), true]);
      // Shortening the delay does not let the tranche out earlier than promised.
      await staking.setUnbondingDelay(60n);
      await staking.connect(operator).unbond(edgeId, 1n * TOKEN);
      expect((await staking.unbonding(edgeId, operator.address, index))[1]).to.equal(await maturityOf(env, 6n));
    });

    it("lets only the operator withdraw it, and only once it has matured", async () => {
      const env = await load();
      const { staking, token, operator, alice, edgeId } = env;
      const index = await staking.OPERATOR_UNBONDING_INDEX();
      await expect(staking.connect(operator).withdraw(edgeId, index))
        .to.be.revertedWithCustomError(staking, "StakingUnknownUnbonding")
        .withArgs(edgeId, operator.address, index);
      await staking.connect(operator).unbond(edgeId, MAX_UINT256);
      const at = await maturityOf(env, 4n);
      await nextTxAt(conn, at - 1n);
      await expect(staking.connect(operator).withdraw(edgeId, index))
        .to.be.revertedWithCustomError(staking, "StakingUnbondingNotMature")
        .withArgs(at, at - 1n);
      await conn.networkHelpers.time.increaseTo(at);
      await expect(staking.connect(alice).withdraw(edgeId, index))
        .to.be.revertedWithCustomError(staking, "StakingUnknownUnbonding")
        .withArgs(edgeId, alice.address, index);
      expect(await staking.unbonding(edgeId, alice.address, index)).to.deep.equal([0n, 0n, false]);
      const [activeBefore] = await staking.edgeStake(edgeId);
      const tx = staking.connect(operator).withdraw(edgeId, index);
      await expect(tx)
        .to.emit(staking, "Withdrawn")
        .withArgs(edgeId, operator.address, index, 1_000n * TOKEN);
      await expect(tx).to.changeTokenBalance(conn.ethers, token, operator, 1_000n * TOKEN);
      expect((await staking.edgeStake(edgeId))[0]).to.equal(activeBefore - 1_000n * TOKEN);
      await expect(staking.connect(operator).withdraw(edgeId, index))
        .to.be.revertedWithCustomError(staking, "StakingUnknownUnbonding")
        .withArgs(edgeId, operator.address, index);
      await expectTotalsMatchBalance(env);
    });
  });
});
