import { expect } from "chai";

import { COMMISSION_DELAY, connect, type Connection, CREDIT_WINDOW, deployWithEdge, goToEpoch, TOKEN } from "../../helpers/protocol.ts";
import { ACC_SCALE, Decline, expectTotalsMatchBalance, MAX_UINT256 } from "../../helpers/stakingCore.ts";

const RESERVE = 100_000n * TOKEN;

describe("EdgeStaking: rewards and commission", () => {
  let conn: Connection;
  before(async () => {
    conn = await connect();
  });

  function withEdge() {
    return deployWithEdge(conn);
  }
  /**
   * Edge 1: the operator sets a 10% commission in epoch 0 (effective from epoch 2); operator
   * 1,000, alice 3,000 and bob 1,000 bonded in epoch 0; reserve of 100,000; chain at the start
   * of epoch 4, where all 5,000 earn.
   */
  async function earning() {
    const env = await deployWithEdge(conn);
    const { staking, operator, alice, bob, creditor, edgeId } = env;
    await staking.connect(operator).setCommission(edgeId, 1_000n);
    await staking.connect(alice).delegate(edgeId, 3_000n * TOKEN);
    await staking.connect(bob).delegate(edgeId, 1_000n * TOKEN);
    await staking.connect(creditor).depositRewardReserve(RESERVE);
    await goToEpoch(conn, staking, 4n);
    return env;
  }
  /** Odd stakes that do not divide rewards evenly; no commission; chain at epoch 4. */
  async function uneven() {
    const env = await deployWithEdge(conn);
    const { staking, alice, bob, creditor, edgeId } = env;
    await staking.connect(alice).delegate(edgeId, 333n * TOKEN + 1n);
    await staking.connect(bob).delegate(edgeId, 777n * TOKEN + 7n);
    await staking.connect(creditor).depositRewardReserve(RESERVE);
    await goToEpoch(conn, staking, 4n);
    return env;
  }

  const load = <T>(fixture: () => Promise<T>) => conn.networkHelpers.loadFixture(fixture);
  const rewardsOf = async (env: Awaited<ReturnType<typeof earning>>, who: { address: string }) =>
    (await env.staking.position(env.edgeId, who.address))[3];

  describe("depositRewardReserve", () => {
    it("pulls the tokens into the reserve and emits RewardReserveDeposited", async () => {
      const env = await load(withEdge);
      const { staking, token, creditor } = env;
      const tx = staking.connect(creditor).depositRewardReserve(1_000n * TOKEN);
      await expect(tx)
        .to.emit(staking, "RewardReserveDeposited")
        .withArgs(creditor.address, 1_000n * TOKEN);
      await expect(tx).to.changeTokenBalances(conn.ethers, token, [creditor, staking], [-1_000n * TOKEN, 1_000n * TOKEN]);
      expect((await staking.totals())[3]).to.equal(1_000n * TOKEN);
      await staking.connect(creditor).depositRewardReserve(1n);
      expect((await staking.totals())[3]).to.equal(1_000n * TOKEN + 1n);
      await expectTotalsMatchBalance(env);
    });

    it("reverts for a caller without REWARD_CREDITOR_ROLE, governance included", async () => {
      const { staking, admin, alice } = await load(withEdge);
      const role = await staking.REWARD_CREDITOR_ROLE();
      for (const caller of [alice, admin]) {
        await expect(staking.connect(caller).depositRewardReserve(TOKEN))
          .to.be.revertedWithCustomError(staking, "AccessControlUnauthorizedAccount")
          .withArgs(caller.address, role);
      }
    });

    it("reverts with StakingZeroAmount for a zero amount", async () => {
      const { staking, creditor } = await load(withEdge);
      await expect(staking.connect(creditor).depositRewardReserve(0n)).to.be.revertedWithCustomError(staking, "StakingZeroAmount");
    });
  });

  describe("withdrawRewardReserve", () => {
    it("sends unused reserve to the given address and emits RewardReserveWithdrawn", async () => {
      const env = await load(withEdge);
      const { staking, token, creditor, outsider } = env;
      await staking.connect(creditor).depositRewardReserve(1_000n * TOKEN);
      const tx = staking.connect(creditor).withdrawRewardReserve(outsider.address, 400n * TOKEN);
      await expect(tx)
        .to.emit(staking, "RewardReserveWithdrawn")
        .withArgs(creditor.address, outsider.address, 400n * TOKEN);
      await expect(tx).to.changeTokenBalances(conn.ethers, token, [staking, outsider, creditor], [-400n * TOKEN, 400n * TOKEN, 0n]);
      expect((await staking.totals())[3]).to.equal(600n * TOKEN);
      await expectTotalsMatchBalance(env);
    });

    it("reverts for a caller without REWARD_CREDITOR_ROLE", async () => {
      const { staking, admin, creditor } = await load(withEdge);
      await staking.connect(creditor).depositRewardReserve(TOKEN);
      await expect(staking.connect(admin).withdrawRewardReserve(admin.address, TOKEN))
        .to.be.revertedWithCustomError(staking, "AccessControlUnauthorizedAccount")
        .withArgs(admin.address, await staking.REWARD_CREDITOR_ROLE());
    });

    it("reverts with StakingZeroAddress for a zero receiver", async () => {
      const { staking, creditor } = await load(withEdge);
      await staking.connect(creditor).depositRewardReserve(TOKEN);
      await expect(staking.connect(creditor).withdrawRewardReserve(conn.ethers.ZeroAddress, TOKEN)).to.be.revertedWithCustomError(
        staking,
        "StakingZeroAddress",
      );
    });

    it("reverts with StakingInsufficientRewardReserve beyond the reserve, which credited rewards have left", async () => {
      const env = await load(earning);
      const { staking, creditor, edgeId } = env;
      await expect(staking.connect(creditor).withdrawRewardReserve(creditor.address, RESERVE + 1n))
        .to.be.revertedWithCustomError(staking, "StakingInsufficientRewardReserve")
        .withArgs(RESERVE + 1n, RESERVE);
      await staking.connect(creditor).creditReward(edgeId, 3n, 1_000n * TOKEN);
      await expect(staking.connect(creditor).withdrawRewardReserve(creditor.address, RESERVE))
        .to.be.revertedWithCustomError(staking, "StakingInsufficientRewardReserve")
        .withArgs(RESERVE, RESERVE - 1_000n * TOKEN);
      await staking.connect(creditor).withdrawRewardReserve(creditor.address, RESERVE - 1_000n * TOKEN);
      expect((await staking.totals())[3]).to.equal(0n);
      await expectTotalsMatchBalance(env);
    });
  });

  describe("creditReward", () => {
    it("reverts for a caller without REWARD_CREDITOR_ROLE", async () => {
      const { staking, operator, edgeId } = await load(earning);
      await expect(staking.connect(operator).creditReward(edgeId, 3n, TOKEN))
        .to.be.revertedWithCustomError(staking, "AccessControlUnauthorizedAccount")
        .withArgs(operator.address, await staking.REWARD_CREDITOR_ROLE());
    });

    it("reverts with StakingEpochNotEnded for the current or a future epoch", async () => {
      const { staking, creditor, edgeId } = await load(earning);
      for (const epoch of [4n, 5n, 100n]) {
        await expect(staking.connect(creditor).creditReward(edgeId, epoch, TOKEN))
          .to.be.revertedWithCustomError(staking, "StakingEpochNotEnded")
          .withArgs(epoch, 4n);
      }
    });

    it("reverts with StakingCreditWindowClosed once creditWindow epochs have passed", async () => {
      const { staking, creditor, edgeId } = await load(earning);
      await goToEpoch(conn, staking, 8n);
      for (const epoch of [0n, 4n]) {
        await expect(staking.connect(creditor).creditReward(edgeId, epoch, TOKEN))
          .to.be.revertedWithCustomError(staking, "StakingCreditWindowClosed")
          .withArgs(epoch, 8n);
      }
      // Epoch 5 is 8 - creditWindow: its last chance.
      await expect(staking.connect(creditor).creditReward(edgeId, 8n - CREDIT_WINDOW, TOKEN)).to.emit(staking, "RewardCredited");
    });

    it("reverts with StakingZeroAmount or StakingInsufficientRewardReserve", async () => {
      const { staking, creditor, edgeId } = await load(earning);
      await expect(staking.connect(creditor).creditReward(edgeId, 3n, 0n)).to.be.revertedWithCustomError(staking, "StakingZeroAmount");
      await expect(staking.connect(creditor).creditReward(edgeId, 3n, RESERVE + 1n))
        .to.be.revertedWithCustomError(staking, "StakingInsufficientRewardReserve")
        .withArgs(RESERVE + 1n, RESERVE);
    });

    it("pays the commission to the operator and the rest pro rata to the earning stake", async () => {
      const env = await load(earning);
      const { staking, operator, alice, bob, creditor, edgeId } = env;
      await goToEpoch(conn, staking, 5n);
      const amount = 1_000n * TOKEN;
      expect(await staking.connect(creditor).creditReward.staticCall(edgeId, 4n, amount)).to.equal(amount);
      await expect(staking.connect(creditor).creditReward(edgeId, 4n, amount))
        .to.emit(staking, "RewardCredited")
        .withArgs(edgeId, 4n, amount, 100n * TOKEN);
      // 900 over 5,000 earning: 180 per 1,000.
      expect(await rewardsOf(env, operator)).to.equal(100n * TOKEN + 180n * TOKEN);
      expect(await rewardsOf(env, alice)).to.equal(540n * TOKEN);
      expect(await rewardsOf(env, bob)).to.equal(180n * TOKEN);
      expect((await staking.totals()).slice(2)).to.deep.equal([amount, RESERVE - amount]);
      await expectTotalsMatchBalance(env);
    });

    it("applies the commission rate in force in the rewarded epoch, not at crediting time", async () => {
      const env = await load(earning);
      const { staking, operator, creditor, edgeId } = env;
      // Epoch 1 predates the 10% (effective from epoch 2).
      await expect(staking.connect(creditor).creditReward(edgeId, 1n, 1_000n * TOKEN))
        .to.emit(staking, "RewardCredited")
        .withArgs(edgeId, 1n, 1_000n * TOKEN, 0n);
      await expect(staking.connect(creditor).creditReward(edgeId, 2n, 1_000n * TOKEN))
        .to.emit(staking, "RewardCredited")
        .withArgs(edgeId, 2n, 1_000n * TOKEN, 100n * TOKEN);

      await goToEpoch(conn, staking, 6n);
      await staking.connect(operator).setCommission(edgeId, 2_500n); // effective from epoch 8
      await goToEpoch(conn, staking, 9n);
      await expect(staking.connect(creditor).creditReward(edgeId, 6n, 1_000n * TOKEN))
        .to.emit(staking, "RewardCredited")
        .withArgs(edgeId, 6n, 1_000n * TOKEN, 100n * TOKEN);
      await expect(staking.connect(creditor).creditReward(edgeId, 7n, 1_000n * TOKEN))
        .to.emit(staking, "RewardCredited")
        .withArgs(edgeId, 7n, 1_000n * TOKEN, 100n * TOKEN);
      await expect(staking.connect(creditor).creditReward(edgeId, 8n, 1_000n * TOKEN))
        .to.emit(staking, "RewardCredited")
        .withArgs(edgeId, 8n, 1_000n * TOKEN, 250n * TOKEN);
      await expectTotalsMatchBalance(env);
    });

    it("declines with RewardDeclined(reason Jailed) for an epoch the edge was jailed in, paying nothing", async () => {
      const env = await load(earning);
      const { staking, alice, slasher, creditor, edgeId } = env;
      await goToEpoch(conn, staking, 5n);
      await staking.connect(slasher).slash(edgeId, 4n, 1_000n, slasher.address); // fault in epoch 4
      const before = await staking.totals();
      const aliceBefore = await staking.position(edgeId, alice.address);

      expect(await staking.connect(creditor).creditReward.staticCall(edgeId, 4n, 1_000n * TOKEN)).to.equal(0n);
      await expect(staking.connect(creditor).creditReward(edgeId, 4n, 1_000n * TOKEN))
        .to.emit(staking, "RewardDeclined")
        .withArgs(edgeId, 4n, 1_000n * TOKEN, Decline.Jailed)
        .and.not.to.emit(staking, "RewardCredited");
      expect(await staking.totals()).to.deep.equal(before);
      expect(await staking.position(edgeId, alice.address)).to.deep.equal(aliceBefore);

      // The epoch before the fault is still paid.
      expect(await staking.connect(creditor).creditReward.staticCall(edgeId, 3n, 1_000n * TOKEN)).to.equal(1_000n * TOKEN);
      await expect(staking.connect(creditor).creditReward(edgeId, 3n, 1_000n * TOKEN)).to.emit(staking, "RewardCredited");
      expect((await staking.totals())[3]).to.equal(before[3] - 1_000n * TOKEN);
      await expectTotalsMatchBalance(env);
    });

    it("declines with RewardDeclined(reason NoEarningStake) while nothing is earning, paying nothing", async () => {
      const env = await load(withEdge);
      const { staking, creditor, edgeId } = env;
      await staking.connect(creditor).depositRewardReserve(RESERVE);
      await goToEpoch(conn, staking, 1n); // the operator's bond is still warming up
      expect(await staking.connect(creditor).creditReward.staticCall(edgeId, 0n, 1_000n * TOKEN)).to.equal(0n);
      await expect(staking.connect(creditor).creditReward(edgeId, 0n, 1_000n * TOKEN))
        .to.emit(staking, "RewardDeclined")
        .withArgs(edgeId, 0n, 1_000n * TOKEN, Decline.NoEarningStake)
        .and.not.to.emit(staking, "RewardCredited");
      expect(await staking.totals()).to.deep.equal([1_000n * TOKEN, 0n, 0n, RESERVE]);
      // Even an amount above the reserve is declined rather than reverting.
      await expect(staking.connect(creditor).creditReward(edgeId, 0n, RESERVE + 1n))
        .to.emit(staking, "RewardDeclined")
        .withArgs(edgeId, 0n, RESERVE + 1n, Decline.NoEarningStake);
      await expectTotalsMatchBalance(env);
    });

    it("declines with reason NoEarningStake once every holder has unbonded", async () => {
      const env = await load(earning);
      const { staking, operator, alice, bob, creditor, edgeId } = env;
      for (const who of [operator, alice, bob]) await staking.connect(who).unbond(edgeId, MAX_UINT256);
      await expect(staking.connect(creditor).creditReward(edgeId, 3n, TOKEN))
        .to.emit(staking, "RewardDeclined")
        .withArgs(edgeId, 3n, TOKEN, Decline.NoEarningStake);
      expect((await staking.totals())[3]).to.equal(RESERVE);
      await expectTotalsMatchBalance(env);
    });

    it("rounds every share down: claims never exceed what was credited and the dust stays in the contract", async () => {
      const env = await load(uneven);
      const { staking, token, operator, alice, bob, creditor, edgeId } = env;
      const holders = [
        { signer: operator, shares: 1_000n * TOKEN },
        { signer: alice, shares: 333n * TOKEN + 1n },
        { signer: bob, shares: 777n * TOKEN + 7n },
      ];
      const earningShares = holders.reduce((sum, h) => sum + h.shares, 0n);
      const credits = [1n * TOKEN + 1n, 7n * TOKEN + 3n, 10n ** 9n + 11n];
      let acc = 0n;
      for (const [i, amount] of credits.entries()) {
        await staking.connect(creditor).creditReward(edgeId, BigInt(1 + i), amount);
        acc += (amount * ACC_SCALE) / earningShares; // the per-share index, rounded down
      }
      const credited = credits.reduce((a, b) => a + b, 0n);

      let claimed = 0n;
      for (const { signer, shares } of holders) {
        const expected = (shares * acc) / ACC_SCALE;
        // Never more than the exact pro-rata share.
        expect(expected * earningShares).to.be.at.most(shares * credited);
        await expect(staking.connect(signer).claimRewards(edgeId, signer.address)).to.changeTokenBalance(
          conn.ethers,
          token,
          signer,
          expected,
        );
        claimed += expected;
      }
      const dust = credited - claimed;
      expect(dust).to.be.greaterThan(0n);
      expect((await staking.totals())[2]).to.equal(dust);
      await expectTotalsMatchBalance(env);
    });
  });

  describe("claimRewards", () => {
    async function credited() {
      const env = await earning();
      await goToEpoch(conn, env.staking, 5n);
      await env.staking.connect(env.creditor).creditReward(env.edgeId, 4n, 1_000n * TOKEN);
      return env;
    }

    it("pays the caller's accrued rewards and emits RewardsClaimed", async () => {
      const env = await load(credited);
      const { staking, token, alice, edgeId } = env;
      expect(await staking.connect(alice).claimRewards.staticCall(edgeId, alice.address)).to.equal(540n * TOKEN);
      const tx = staking.connect(alice).claimRewards(edgeId, alice.address);
      await expect(tx)
        .to.emit(staking, "RewardsClaimed")
        .withArgs(edgeId, alice.address, alice.address, 540n * TOKEN);
      await expect(tx).to.changeTokenBalances(conn.ethers, token, [alice, staking], [540n * TOKEN, -540n * TOKEN]);
      expect(await staking.position(edgeId, alice.address)).to.deep.equal([3_000n * TOKEN, 0n, 0n, 0n]);
      expect((await staking.totals())[2]).to.equal(460n * TOKEN);
      await expectTotalsMatchBalance(env);
    });

    it("pays to another address when asked", async () => {
      const env = await load(credited);
      const { staking, token, bob, outsider, edgeId } = env;
      const tx = staking.connect(bob).claimRewards(edgeId, outsider.address);
      await expect(tx)
        .to.emit(staking, "RewardsClaimed")
        .withArgs(edgeId, bob.address, outsider.address, 180n * TOKEN);
      await expect(tx).to.changeTokenBalances(conn.ethers, token, [bob, outsider], [0n, 180n * TOKEN]);
      await expectTotalsMatchBalance(env);
    });

    it("pays the operator its commission together with its share of the pool", async () => {
      const env = await load(credited);
      const { staking, token, operator, edgeId } = env;
      await expect(staking.connect(operator).claimRewards(edgeId, operator.address)).to.changeTokenBalance(
        conn.ethers,
        token,
        operator,
        100n * TOKEN + 180n * TOKEN,
      );
      await expectTotalsMatchBalance(env);
    });

    it("reverts with StakingNothingToClaim without accrued rewards, including right after a claim", async () => {
      const { staking, alice, carol, edgeId } = await load(credited);
      await expect(staking.connect(carol).claimRewards(edgeId, carol.address)).to.be.revertedWithCustomError(
        staking,
        "StakingNothingToClaim",
      );
      await staking.connect(alice).claimRewards(edgeId, alice.address);
      await expect(staking.connect(alice).claimRewards(edgeId, alice.address)).to.be.revertedWithCustomError(
        staking,
        "StakingNothingToClaim",
      );
    });

    it("reverts with StakingZeroAddress for a zero receiver", async () => {
      const { staking, alice, edgeId } = await load(credited);
      await expect(staking.connect(alice).claimRewards(edgeId, conn.ethers.ZeroAddress)).to.be.revertedWithCustomError(
        staking,
        "StakingZeroAddress",
      );
    });
  });

  describe("setCommission", () => {
    it("reverts with StakingNotOperator for anyone but the operator, and StakingUnknownEdge for an unknown edge", async () => {
      const { staking, operator, alice, edgeId } = await load(withEdge);
      await expect(staking.connect(alice).setCommission(edgeId, 100n))
        .to.be.revertedWithCustomError(staking, "StakingNotOperator")
        .withArgs(edgeId, alice.address, operator.address);
      await expect(staking.connect(operator).setCommission(9n, 100n))
        .to.be.revertedWithCustomError(staking, "StakingUnknownEdge")
        .withArgs(9n);
    });

    it("reverts with StakingCommissionTooHigh above 10,000 bps and accepts exactly 10,000", async () => {
      const { staking, operator, edgeId } = await load(withEdge);
      await expect(staking.connect(operator).setCommission(edgeId, 10_001n))
        .to.be.revertedWithCustomError(staking, "StakingCommissionTooHigh")
        .withArgs(10_001n);
      await expect(staking.connect(operator).setCommission(edgeId, 10_000n))
        .to.emit(staking, "CommissionChangeScheduled")
        .withArgs(edgeId, 0n, 10_000n, COMMISSION_DELAY);
    });

    it("schedules the new rate commissionDelay epochs ahead and emits CommissionChangeScheduled", async () => {
      const env = await load(withEdge);
      const { staking, operator, edgeId } = env;
      await goToEpoch(conn, staking, 3n);
      await expect(staking.connect(operator).setCommission(edgeId, 1_500n))
        .to.emit(staking, "CommissionChangeScheduled")
        .withArgs(edgeId, 0n, 1_500n, 3n + COMMISSION_DELAY);
      expect(await staking.commissionAt(edgeId, 3n)).to.equal(0n);
      expect(await staking.commissionAt(edgeId, 4n)).to.equal(0n);
      expect(await staking.commissionAt(edgeId, 5n)).to.equal(1_500n);
      expect(await staking.commissionAt(edgeId, 50n)).to.equal(1_500n);
    });

    it("uses the commissionDelay in force when the change is requested", async () => {
      const { staking, admin, operator, edgeId } = await load(withEdge);
      await staking.connect(admin).setCommissionDelay(5n);
      await expect(staking.connect(operator).setCommission(edgeId, 700n))
        .to.emit(staking, "CommissionChangeScheduled")
        .withArgs(edgeId, 0n, 700n, 5n);
      expect(await staking.commissionAt(edgeId, 4n)).to.equal(0n);
      expect(await staking.commissionAt(edgeId, 5n)).to.equal(700n);
    });

    it("rejects another change with StakingCommissionChangePending until commissionEpoch + creditWindow + 1", async () => {
      const { staking, operator, edgeId } = await load(withEdge);
      await goToEpoch(conn, staking, 3n);
      await staking.connect(operator).setCommission(edgeId, 1_500n); // effective from epoch 5
      const changeableFrom = 5n + CREDIT_WINDOW + 1n; // rewards of epoch 4 can be credited until epoch 7
      for (const epoch of [3n, 5n, changeableFrom - 1n]) {
        await goToEpoch(conn, staking, epoch);
        await expect(staking.connect(operator).setCommission(edgeId, 3_000n))
          .to.be.revertedWithCustomError(staking, "StakingCommissionChangePending")
          .withArgs(edgeId, changeableFrom);
      }
      await goToEpoch(conn, staking, changeableFrom);
      await expect(staking.connect(operator).setCommission(edgeId, 3_000n))
        .to.emit(staking, "CommissionChangeScheduled")
        .withArgs(edgeId, 1_500n, 3_000n, changeableFrom + COMMISSION_DELAY);
      expect(await staking.commissionAt(edgeId, changeableFrom + COMMISSION_DELAY - 1n)).to.equal(1_500n);
      expect(await staking.commissionAt(edgeId, changeableFrom + COMMISSION_DELAY)).to.equal(3_000n);
    });
  });
});
