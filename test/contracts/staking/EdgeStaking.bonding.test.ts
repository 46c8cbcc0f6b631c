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
  MIN_SELF_BOND,
  TOKEN,
  UNBONDING_DELAY,
} from "../../helpers/protocol.ts";
import { expectTotalsMatchBalance, registerEdge, sharesFor, Status, tokensFor } from "../../helpers/stakingCore.ts";

describe("EdgeStaking: bonding", () => {
  let conn: Connection;
  before(async () => {
    conn = await connect();
  });

  /** Protocol plus edge 1, registered by `operator`, nothing bonded. */
  async function registered() {
    const env = await deployProtocol(conn);
    const edgeId = await registerEdge(conn, env, env.operator);
    return { ...env, edgeId };
  }
  /** Edge 1 with the operator's minimum self-bond, bonded in epoch 0. */
  function withEdge() {
    return deployWithEdge(conn);
  }
  /** Edge 1: operator 1,000 and alice 3,000 bonded in epoch 0, chain at the start of epoch 4 (all earning). */
  async function earning() {
    const env = await deployWithEdge(conn);
    await env.staking.connect(env.alice).delegate(env.edgeId, 3_000n * TOKEN);
    await goToEpoch(conn, env.staking, 4n);
    await env.staking.connect(env.creditor).depositRewardReserve(100_000n * TOKEN);
    return env;
  }

  const load = <T>(fixture: () => Promise<T>) => conn.networkHelpers.loadFixture(fixture);

  describe("stake", () => {
    it("bonds the operator's tokens 1:1 into a fresh pool and emits Bonded with activation current + window + 1", async () => {
      const env = await load(registered);
      const { staking, token, operator, edgeId } = env;
      await goToEpoch(conn, staking, 2n);
      const amount = 500n * TOKEN;
      const tx = staking.connect(operator).stake(edgeId, amount);
      await expect(tx)
        .to.emit(staking, "Bonded")
        .withArgs(edgeId, operator.address, amount, amount, 2n + CREDIT_WINDOW + 1n);
      await expect(tx).to.changeTokenBalances(conn.ethers, token, [operator, staking], [-amount, amount]);
      expect(await staking.selfBond(edgeId)).to.equal(amount);
      expect(await staking.position(edgeId, operator.address)).to.deep.equal([0n, amount, 6n, 0n]);
      await expectTotalsMatchBalance(env);
    });

    it("reverts with StakingNotOperator when the caller is not the edge's operator", async () => {
      const { staking, alice, operator, edgeId } = await load(withEdge);
      await expect(staking.connect(alice).stake(edgeId, TOKEN))
        .to.be.revertedWithCustomError(staking, "StakingNotOperator")
        .withArgs(edgeId, alice.address, operator.address);
    });

    it("reverts with StakingUnknownEdge for an edge that is not registered", async () => {
      const { staking, operator } = await load(withEdge);
      await expect(staking.connect(operator).stake(2n, TOKEN)).to.be.revertedWithCustomError(staking, "StakingUnknownEdge").withArgs(2n);
    });

    it("reverts with StakingZeroAmount for a zero amount", async () => {
      const { staking, operator, edgeId } = await load(withEdge);
      await expect(staking.connect(operator).stake(edgeId, 0n)).to.be.revertedWithCustomError(staking, "StakingZeroAmount");
    });

    it("reverts with StakingEdgeNotAcceptingStake(edgeId, Exiting) once the edge is deregistered", async () => {
      const { staking, registry, operator, edgeId } = await load(withEdge);
      await registry.connect(operator).deregisterEdge(edgeId);
      await expect(staking.connect(operator).stake(edgeId, TOKEN))
        .to.be.revertedWithCustomError(staking, "StakingEdgeNotAcceptingStake")
        .withArgs(edgeId, Status.Exiting);
    });

    it("is allowed while the edge is paused", async () => {
      const env = await load(withEdge);
      const { staking, registry, operator, edgeId } = env;
      await registry.connect(operator).pauseEdge(edgeId);
      await expect(staking.connect(operator).stake(edgeId, 10n * TOKEN))
        .to.emit(staking, "Bonded")
        .withArgs(edgeId, operator.address, 10n * TOKEN, 10n * TOKEN, 4n);
      expect(await staking.selfBond(edgeId)).to.equal(MIN_SELF_BOND + 10n * TOKEN);
      expect(await staking.edgeStatus(edgeId)).to.equal(Status.Paused);
      await expectTotalsMatchBalance(env);
    });
  });

  describe("delegate", () => {
    it("lets anyone delegate, pulls the tokens and emits Bonded", async () => {
      const env = await load(withEdge);
      const { staking, token, outsider, edgeId } = env;
      await goToEpoch(conn, staking, 1n);
      const amount = 2_000n * TOKEN;
      const tx = staking.connect(outsider).delegate(edgeId, amount);
      await expect(tx)
        .to.emit(staking, "Bonded")
        .withArgs(edgeId, outsider.address, amount, amount, 1n + CREDIT_WINDOW + 1n);
      await expect(tx).to.changeTokenBalances(conn.ethers, token, [outsider, staking], [-amount, amount]);
      expect(await staking.position(edgeId, outsider.address)).to.deep.equal([0n, amount, 5n, 0n]);
      // A delegation is not self-bond.
      expect(await staking.selfBond(edgeId)).to.equal(MIN_SELF_BOND);
      await expectTotalsMatchBalance(env);
    });

    it("adds to the self-bond when the operator delegates", async () => {
      const { staking, operator, edgeId } = await load(withEdge);
      await staking.connect(operator).delegate(edgeId, 5n * TOKEN);
      expect(await staking.selfBond(edgeId)).to.equal(MIN_SELF_BOND + 5n * TOKEN);
    });

    it("accepts delegations to an edge that is registered below the minimum or paused", async () => {
      const { staking, registry, operator, alice, edgeId } = await load(registered);
      expect(await staking.edgeStatus(edgeId)).to.equal(Status.Registered);
      await expect(staking.connect(alice).delegate(edgeId, TOKEN)).to.emit(staking, "Bonded");
      await registry.connect(operator).pauseEdge(edgeId);
      await expect(staking.connect(alice).delegate(edgeId, TOKEN)).to.emit(staking, "Bonded");
      expect((await staking.position(edgeId, alice.address))[1]).to.equal(2n * TOKEN);
    });

    it("rejects delegators on a jailed edge but lets its operator top up", async () => {
      const env = await load(withEdge);
      const { staking, operator, alice, slasher, edgeId } = env;
      await staking.connect(slasher).slash(edgeId, 0n, 1_000n, slasher.address);
      expect(await staking.edgeStatus(edgeId)).to.equal(Status.Jailed);
      await expect(staking.connect(alice).delegate(edgeId, TOKEN))
        .to.be.revertedWithCustomError(staking, "StakingEdgeNotAcceptingStake")
        .withArgs(edgeId, Status.Jailed);
      const before = await staking.selfBond(edgeId);
      await expect(staking.connect(operator).stake(edgeId, 100n * TOKEN)).to.emit(staking, "Bonded");
      await expect(staking.connect(operator).delegate(edgeId, 50n * TOKEN)).to.emit(staking, "Bonded");
      // The operator's 1,000 is still warming up, so it takes no first loss: the 10% falls on
      // the pool, whose only holder is the operator. Its self-bond is the pool's whole stake.
      expect(before).to.equal(900n * TOKEN);
      expect(await staking.selfBond(edgeId)).to.equal(1_050n * TOKEN);
      await expectTotalsMatchBalance(env);
    });

    it("rejects delegations with StakingEdgeNotAcceptingStake(edgeId, Exiting) once the edge is deregistered", async () => {
      const { staking, registry, operator, alice, edgeId } = await load(withEdge);
      await registry.connect(operator).deregisterEdge(edgeId);
      await expect(staking.connect(alice).delegate(edgeId, TOKEN))
        .to.be.revertedWithCustomError(staking, "StakingEdgeNotAcceptingStake")
        .withArgs(edgeId, Status.Exiting);
      await expect(staking.connect(operator).delegate(edgeId, TOKEN))
        .to.be.revertedWithCustomError(staking, "StakingEdgeNotAcceptingStake")
        .withArgs(edgeId, Status.Exiting);
    });

    it("reverts with StakingZeroAmount or StakingUnknownEdge", async () => {
      const { staking, alice, edgeId } = await load(withEdge);
      await expect(staking.connect(alice).delegate(edgeId, 0n)).to.be.revertedWithCustomError(staking, "StakingZeroAmount");
      await expect(staking.connect(alice).delegate(7n, TOKEN)).to.be.revertedWithCustomError(staking, "StakingUnknownEdge").withArgs(7n);
    });
  });

  describe("shares and price", () => {
    it("mints shares 1:1 while no slash has lowered the price", async () => {
      const { staking, alice, bob, edgeId } = await load(withEdge);
      await expect(staking.connect(alice).delegate(edgeId, 2_000n * TOKEN))
        .to.emit(staking, "Bonded")
        .withArgs(edgeId, alice.address, 2_000n * TOKEN, 2_000n * TOKEN, 4n);
      await expect(staking.connect(bob).delegate(edgeId, 1n)).to.emit(staking, "Bonded").withArgs(edgeId, bob.address, 1n, 1n, 4n);
      const [active] = await staking.edgeStake(edgeId);
      expect(active).to.equal(MIN_SELF_BOND + 2_000n * TOKEN + 1n);
    });

    it("prices bonds after a slash at the pool price, rounding in the pool's favour", async () => {
      const env = await load(withEdge);
      const { staking, operator, alice, bob, slasher, edgeId } = env;
      await staking.connect(alice).delegate(edgeId, 9_000n * TOKEN);
      await goToEpoch(conn, staking, 4n);

      // 30% of 10,000 = 3,000. The operator's first loss is capped at 50% of its 1,000 self-bond:
      // 500 tokens, burning 500 of its shares at price 1. The other 2,500 fall on the pool's tokens.
      await staking.connect(slasher).slash(edgeId, 4n, 3_000n, slasher.address);
      let tokens = 7_000n * TOKEN;
      let shares = 9_500n * TOKEN;
      expect((await staking.edgeStake(edgeId))[0]).to.equal(tokens);
      expect(await staking.selfBond(edgeId)).to.equal(tokensFor(500n * TOKEN, tokens, shares));
      const aliceBefore = (await staking.position(edgeId, alice.address))[0];
      expect(aliceBefore).to.equal(tokensFor(9_000n * TOKEN, tokens, shares));

      // The jailed operator tops up 1,400 tokens: exactly 1,900 shares at 7,000/9,500.
      const topUp = 1_400n * TOKEN;
      const topUpShares = sharesFor(topUp, tokens, shares);
      expect(topUpShares).to.equal(1_900n * TOKEN);
      await expect(staking.connect(operator).stake(edgeId, topUp))
        .to.emit(staking, "Bonded")
        .withArgs(edgeId, operator.address, topUp, topUpShares, 8n);
      tokens += topUp;
      shares += topUpShares;
      expect((await staking.edgeStake(edgeId))[0]).to.equal(tokens);
      // Existing holders are not diluted by the new bond (they may gain the rounding wei).
      const aliceAfter = (await staking.position(edgeId, alice.address))[0];
      expect(aliceAfter).to.equal(tokensFor(9_000n * TOKEN, tokens, shares));
      expect(aliceAfter - aliceBefore).to.be.within(0n, 1n);

      // Even at a price below 1, one wei buys one share; shares are never zero (StakingZeroShares
      // needs a price above 1 token per share, which neither rewards nor slashes can create).
      await expect(staking.connect(operator).stake(edgeId, 1n)).to.emit(staking, "Bonded").withArgs(edgeId, operator.address, 1n, 1n, 8n);
      tokens += 1n;
      shares += 1n;

      // After the jail period and unjail, a delegator bonds at the same price.
      await conn.networkHelpers.time.increase(JAIL_PERIOD);
      await staking.connect(operator).unjail(edgeId);
      const deposit = 700n * TOKEN;
      const bobShares = sharesFor(deposit, tokens, shares);
      const cur = await staking.currentEpoch();
      await expect(staking.connect(bob).delegate(edgeId, deposit))
        .to.emit(staking, "Bonded")
        .withArgs(edgeId, bob.address, deposit, bobShares, cur + CREDIT_WINDOW + 1n);
      // 700 tokens at (8,400 + 1 wei)/(11,400 + 1 wei) buy just under 950 shares, rounded down.
      expect(bobShares).to.be.within(950n * TOKEN - 1n, 950n * TOKEN);
      const [, bobWarming] = await staking.position(edgeId, bob.address);
      expect(bobWarming).to.equal(tokensFor(bobShares, tokens + deposit, shares + bobShares));
      // Worth its deposit up to rounding, never more.
      expect(bobWarming).to.be.within(deposit - 2n, deposit);
      await expectTotalsMatchBalance(env);
    });
  });

  describe("warm-up", () => {
    it("shows young stake as warming up until current + creditWindow + 1, then as earning", async () => {
      const { staking, alice, edgeId } = await load(earning);
      const before = await staking.edgeStake(edgeId);
      await staking.connect(alice).delegate(edgeId, 1_000n * TOKEN); // epoch 4
      expect(await staking.position(edgeId, alice.address)).to.deep.equal([3_000n * TOKEN, 1_000n * TOKEN, 8n, 0n]);
      expect(await staking.edgeStake(edgeId)).to.deep.equal([before[0] + 1_000n * TOKEN, before[1], 0n]);

      await goToEpoch(conn, staking, 7n);
      expect(await staking.position(edgeId, alice.address)).to.deep.equal([3_000n * TOKEN, 1_000n * TOKEN, 8n, 0n]);
      expect((await staking.edgeStake(edgeId))[1]).to.equal(4_000n * TOKEN);

      // From epoch 8 on it is earning, even before anything touches the pool.
      await goToEpoch(conn, staking, 8n);
      expect(await staking.position(edgeId, alice.address)).to.deep.equal([4_000n * TOKEN, 0n, 0n, 0n]);
      expect((await staking.edgeStake(edgeId))[1]).to.equal(5_000n * TOKEN);
    });

    it("never pays young stake rewards credited before its activation epoch, nor the reward of its join epoch", async () => {
      const env = await load(withEdge);
      const { staking, operator, alice, creditor, edgeId } = env;
      await staking.connect(creditor).depositRewardReserve(100_000n * TOKEN);
      await goToEpoch(conn, staking, 4n); // the operator's 1,000 is earning
      await staking.connect(alice).delegate(edgeId, 1_000n * TOKEN); // joins in epoch 4, earns from epoch 8

      await goToEpoch(conn, staking, 5n);
      await staking.connect(creditor).creditReward(edgeId, 4n, 100n * TOKEN); // alice's join epoch
      await goToEpoch(conn, staking, 6n);
      await staking.connect(creditor).creditReward(edgeId, 5n, 200n * TOKEN);
      await goToEpoch(conn, staking, 7n);
      await staking.connect(creditor).creditReward(edgeId, 4n, 300n * TOKEN); // join epoch, last chance
      await staking.connect(creditor).creditReward(edgeId, 6n, 400n * TOKEN);
      expect((await staking.position(edgeId, alice.address))[3]).to.equal(0n);
      expect((await staking.position(edgeId, operator.address))[3]).to.equal(1_000n * TOKEN);

      await goToEpoch(conn, staking, 8n);
      expect(await staking.position(edgeId, alice.address)).to.deep.equal([1_000n * TOKEN, 0n, 0n, 0n]);
      // The join epoch can no longer be credited at all.
      await expect(staking.connect(creditor).creditReward(edgeId, 4n, TOKEN))
        .to.be.revertedWithCustomError(staking, "StakingCreditWindowClosed")
        .withArgs(4n, 8n);
      // From its activation epoch on it shares the rewards of epochs after its join epoch,
      // half each with the operator's 1,000.
      await staking.connect(creditor).creditReward(edgeId, 7n, 600n * TOKEN);
      expect((await staking.position(edgeId, alice.address))[3]).to.equal(300n * TOKEN);
      expect((await staking.position(edgeId, operator.address))[3]).to.equal(1_300n * TOKEN);
      // Epoch 5 (after its join epoch, bonded throughout) credited once it earns: shared too.
      await staking.connect(creditor).creditReward(edgeId, 5n, 200n * TOKEN);
      expect((await staking.position(edgeId, alice.address))[3]).to.equal(400n * TOKEN);
      expect((await staking.position(edgeId, operator.address))[3]).to.equal(1_400n * TOKEN);
      await expectTotalsMatchBalance(env);
    });

    it("keeps a second addition in its own tranche, so each warms up on its own schedule", async () => {
      const { staking, alice, bob, edgeId } = await load(earning);
      await staking.connect(bob).delegate(edgeId, 1_000n * TOKEN); // epoch 4: earns from epoch 8
      await goToEpoch(conn, staking, 6n);
      await expect(staking.connect(bob).delegate(edgeId, 500n * TOKEN))
        .to.emit(staking, "Bonded")
        .withArgs(edgeId, bob.address, 500n * TOKEN, 500n * TOKEN, 10n);
      // position() reports the earliest activation among the tranches still warming up.
      expect(await staking.position(edgeId, bob.address)).to.deep.equal([0n, 1_500n * TOKEN, 8n, 0n]);

      // Epoch 8 activates the first 1,000 (the pool is touched); the 500 wait until epoch 10.
      await goToEpoch(conn, staking, 8n);
      await staking.connect(alice).delegate(edgeId, TOKEN);
      expect(await staking.position(edgeId, bob.address)).to.deep.equal([1_000n * TOKEN, 500n * TOKEN, 10n, 0n]);
      await expect(staking.connect(bob).unbond(edgeId, 1_000n * TOKEN + 1n))
        .to.be.revertedWithCustomError(staking, "StakingStillWarmingUp")
        .withArgs(edgeId, bob.address, 10n);
      await goToEpoch(conn, staking, 10n);
      expect(await staking.position(edgeId, bob.address)).to.deep.equal([1_500n * TOKEN, 0n, 0n, 0n]);
    });

    it("activates both tranches in one step when the pool is touched after both are due", async () => {
      const { staking, creditor, alice, bob, edgeId } = await load(earning);
      await staking.connect(bob).delegate(edgeId, 1_000n * TOKEN); // epoch 4 -> earns from 8
      await goToEpoch(conn, staking, 5n);
      await staking.connect(bob).delegate(edgeId, 500n * TOKEN); // epoch 5 -> earns from 9
      // Nobody touches the pool until epoch 9: one activation then covers both cohorts.
      await goToEpoch(conn, staking, 9n);
      await staking.connect(alice).delegate(edgeId, 1n);
      const [, earningStake] = await staking.edgeStake(edgeId);
      // One token of reward per earning token for epoch 8: bob's 1,500 earn 1,500.
      await staking.connect(creditor).creditReward(edgeId, 8n, earningStake);
      await expect(staking.connect(bob).claimRewards(edgeId, bob.address))
        .to.emit(staking, "RewardsClaimed")
        .withArgs(edgeId, bob.address, bob.address, (paid: bigint) => paid <= 1_500n * TOKEN && paid >= 1_500n * TOKEN - 1n);
      expect(await staking.position(edgeId, bob.address)).to.deep.equal([1_500n * TOKEN, 0n, 0n, 0n]);
    });

    it("folds additions from a third epoch into the newer tranche, never activating them early", async () => {
      const { staking, creditor, bob, edgeId } = await load(earning);
      await staking.connect(bob).delegate(edgeId, 1_000n * TOKEN); // epoch 4 -> earns from 8
      await goToEpoch(conn, staking, 5n);
      await staking.connect(bob).delegate(edgeId, 200n * TOKEN); // epoch 5 -> second tranche
      await goToEpoch(conn, staking, 6n);
      await staking.connect(bob).delegate(edgeId, 300n * TOKEN); // epoch 6: joins the second, now from 10
      await goToEpoch(conn, staking, 8n);
      expect(await staking.position(edgeId, bob.address)).to.deep.equal([1_000n * TOKEN, 500n * TOKEN, 10n, 0n]);
      // A reward for epoch 7, credited in epoch 8 at one token per earning token, pays bob's
      // activated 1,000 only: his 500 still warming up get nothing (the 200 from epoch 5 now wait
      // with the epoch-6 addition, later than their own cohort, never earlier).
      const [, earningBefore] = await staking.edgeStake(edgeId);
      await staking.connect(creditor).creditReward(edgeId, 7n, earningBefore);
      const [, , , rewards] = await staking.position(edgeId, bob.address);
      expect(rewards).to.be.lte(1_000n * TOKEN);
      expect(rewards).to.be.gte(1_000n * TOKEN - 1n);
      await goToEpoch(conn, staking, 10n);
      expect((await staking.position(edgeId, bob.address))[0]).to.equal(1_500n * TOKEN);
    });
  });

  describe("edgeStatus", () => {
    it("is None for an edge that is not registered", async () => {
      const { staking } = await load(withEdge);
      expect(await staking.edgeStatus(2n)).to.equal(Status.None);
    });

    it("moves from Registered to Active when the operator's self-bond reaches minSelfBond", async () => {
      const { staking, operator, alice, edgeId } = await load(registered);
      expect(await staking.edgeStatus(edgeId)).to.equal(Status.Registered);
      await staking.connect(operator).stake(edgeId, MIN_SELF_BOND - 1n);
      expect(await staking.edgeStatus(edgeId)).to.equal(Status.Registered);
      // Delegations do not count towards the self-bond.
      await staking.connect(alice).delegate(edgeId, 10n * MIN_SELF_BOND);
      expect(await staking.edgeStatus(edgeId)).to.equal(Status.Registered);
      await staking.connect(operator).stake(edgeId, 1n);
      expect(await staking.edgeStatus(edgeId)).to.equal(Status.Active);
    });

    it("falls back to Registered when the operator unbonds below the minimum", async () => {
      const { staking, operator, edgeId } = await load(earning);
      expect(await staking.edgeStatus(edgeId)).to.equal(Status.Active);
      await staking.connect(operator).unbond(edgeId, 1n);
      expect(await staking.selfBond(edgeId)).to.equal(MIN_SELF_BOND - 1n);
      expect(await staking.edgeStatus(edgeId)).to.equal(Status.Registered);
    });

    it("is Paused while the operator has paused the edge and Active again after resuming", async () => {
      const { staking, registry, operator, edgeId } = await load(withEdge);
      await registry.connect(operator).pauseEdge(edgeId);
      expect(await staking.edgeStatus(edgeId)).to.equal(Status.Paused);
      await registry.connect(operator).resumeEdge(edgeId);
      expect(await staking.edgeStatus(edgeId)).to.equal(Status.Active);
    });

    it("is Jailed after a slash and Exiting after deregistration, whatever the self-bond", async () => {
      const { staking, registry, operator, slasher, edgeId } = await load(withEdge);
      await staking.connect(slasher).slash(edgeId, 0n, 100n, slasher.address);
      expect(await staking.edgeStatus(edgeId)).to.equal(Status.Jailed);
      await staking.connect(operator).stake(edgeId, MIN_SELF_BOND);
      await registry.connect(operator).deregisterEdge(edgeId);
      expect(await staking.edgeStatus(edgeId)).to.equal(Status.Exiting);
    });
  });

  describe("selfBond, edgeStake, totalActiveStake and totals", () => {
    it("reports active, earning and still-slashable unbonding stake as the edge evolves", async () => {
      const env = await load(withEdge);
      const { staking, alice, bob, edgeId } = env;
      await staking.connect(alice).delegate(edgeId, 3_000n * TOKEN);
      expect(await staking.edgeStake(edgeId)).to.deep.equal([4_000n * TOKEN, 0n, 0n]);
      await goToEpoch(conn, staking, 4n);
      expect(await staking.edgeStake(edgeId)).to.deep.equal([4_000n * TOKEN, 4_000n * TOKEN, 0n]);

      await staking.connect(bob).delegate(edgeId, 1_000n * TOKEN);
      expect(await staking.edgeStake(edgeId)).to.deep.equal([5_000n * TOKEN, 4_000n * TOKEN, 0n]);
      await staking.connect(alice).unbond(edgeId, 500n * TOKEN);
      expect(await staking.edgeStake(edgeId)).to.deep.equal([4_500n * TOKEN, 3_500n * TOKEN, 500n * TOKEN]);
      expect(await staking.totals()).to.deep.equal([4_500n * TOKEN, 500n * TOKEN, 0n, 0n]);
      expect(await staking.selfBond(edgeId)).to.equal(MIN_SELF_BOND);

      // The entry stays slashable until its maturity, then only waits for withdrawal.
      const [, maturity] = await staking.unbonding(edgeId, alice.address, 0n);
      expect(maturity).to.equal((await staking.epochStartTime(5n)) + UNBONDING_DELAY);
      await conn.networkHelpers.time.increaseTo(maturity - 1n);
      expect((await staking.edgeStake(edgeId))[2]).to.equal(500n * TOKEN);
      await conn.networkHelpers.time.increaseTo(maturity);
      expect(await staking.edgeStake(edgeId)).to.deep.equal([4_500n * TOKEN, 3_500n * TOKEN, 0n]);
      expect((await staking.totals())[1]).to.equal(500n * TOKEN);

      await goToEpoch(conn, staking, 8n); // bob's cohort (epoch 4) earns
      expect(await staking.edgeStake(edgeId)).to.deep.equal([4_500n * TOKEN, 4_500n * TOKEN, 0n]);
      await expectTotalsMatchBalance(env);
    });

    it("totalActiveStake sums the active stake of all edges", async () => {
      const env = await load(withEdge);
      const { staking, operator, alice, edgeId } = env;
      const second = await registerEdge(conn, env, operator);
      await staking.connect(operator).stake(second, 2_000n * TOKEN);
      await staking.connect(alice).delegate(edgeId, 3_000n * TOKEN);
      expect(await staking.totalActiveStake()).to.equal(6_000n * TOKEN);

      await goToEpoch(conn, staking, 4n);
      await staking.connect(alice).unbond(edgeId, 1_000n * TOKEN);
      expect(await staking.totalActiveStake()).to.equal(5_000n * TOKEN);
      const [activeOne] = await staking.edgeStake(edgeId);
      const [activeTwo] = await staking.edgeStake(second);
      expect(activeOne + activeTwo).to.equal(5_000n * TOKEN);
      expect((await staking.totals())[0]).to.equal(5_000n * TOKEN);
      await expectTotalsMatchBalance(env);
    });

    it("totals() splits the contract balance into active, unbonding, rewards owed and reserve", async () => {
      const env = await load(earning);
      const { staking, alice, creditor, edgeId } = env;
      expect(await staking.totals()).to.deep.equal([4_000n * TOKEN, 0n, 0n, 100_000n * TOKEN]);
      await expectTotalsMatchBalance(env);

      await staking.connect(alice).unbond(edgeId, 1_000n * TOKEN);
      await staking.connect(creditor).creditReward(edgeId, 3n, 400n * TOKEN);
      expect(await staking.totals()).to.deep.equal([3_000n * TOKEN, 1_000n * TOKEN, 400n * TOKEN, 99_600n * TOKEN]);
      await expectTotalsMatchBalance(env);

      await staking.connect(alice).claimRewards(edgeId, alice.address);
      await conn.networkHelpers.time.increase(EPOCH + UNBONDING_DELAY);
      await staking.connect(alice).withdraw(edgeId, 0n);
      // alice earned 2,000/3,000 of the 400 (the operator has 1,000 of the 3,000 earning).
      const owed = 400n * TOKEN - (400n * TOKEN * 2n) / 3n;
      expect(await staking.totals()).to.deep.equal([3_000n * TOKEN, 0n, owed, 99_600n * TOKEN]);
      await expectTotalsMatchBalance(env);
    });
  });
});
