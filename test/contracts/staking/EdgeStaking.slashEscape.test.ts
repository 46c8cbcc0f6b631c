// Attack: escaping a slash by unbonding. An operator and a delegator know that the edge misbehaved
// in epoch 5 and try to get their stake out before the fault is reported. Unbonded stake stays
// slashable until its delay, counted from the end of the epoch of unbonding, has passed, so the
// slash must still reach them, and the operator's unbonded self-bond still takes the first loss;
// only stake that left before the fault and whose delay has passed is out of reach.
import { expect } from "chai";

import { connect, type Connection, deployWithEdge, goToEpoch, MIN_SELF_BOND, TOKEN, UNBONDING_DELAY } from "../../helpers/protocol.ts";
import { BPS, expectSolvent, mulDiv, nextPhi, PHI_SCALE } from "../../helpers/stakingSlash.ts";

const OP = 2_000n * TOKEN;
const ALICE = 3_000n * TOKEN;
const BOB = 2_000n * TOKEN;
const CAROL = 1_000n * TOKEN;
const FAULT_EPOCH = 5n;
const FRACTION = 2_000n; // 20%

describe("Attack: escaping a slash by unbonding", () => {
  let conn: Connection;
  before(async () => {
    conn = await connect();
  });

  /**
   * Operator 2,000, alice 3,000, bob 2,000, carol 1,000, all bonded in epoch 0. Carol leaves in
   * epoch 4, before the fault. Now at epoch 5, the faulty epoch.
   */
  async function escapeFixture() {
    const env = await deployWithEdge(conn);
    const { staking, operator, alice, bob, carol, edgeId } = env;
    await staking.connect(operator).stake(edgeId, OP - MIN_SELF_BOND);
    await staking.connect(alice).delegate(edgeId, ALICE);
    await staking.connect(bob).delegate(edgeId, BOB);
    await staking.connect(carol).delegate(edgeId, CAROL);
    await goToEpoch(conn, staking, 4n);
    await staking.connect(carol).unbond(edgeId, conn.ethers.MaxUint256);
    await goToEpoch(conn, staking, FAULT_EPOCH);
    return env;
  }

  type Env = Awaited<ReturnType<typeof escapeFixture>>;

  async function solvent(env: Env) {
    const accounts = [env.operator.address, env.alice.address, env.bob.address, env.carol.address];
    await expectSolvent(env.staking, env.token, env.edgeId, accounts);
  }

  it("slashes the stake of an operator and a delegator who unbonded everything right after the fault, before the report", async () => {
    const env = await conn.networkHelpers.loadFixture(escapeFixture);
    const { staking, token, operator, alice, bob, carol, slasher, outsider, edgeId } = env;
    const stakingAddress = await staking.getAddress();

    // Epoch 6: the attackers unbond everything (the operator in two pieces). The operator's
    // self-bond leaves as one tranche of "leaving" shares that stays in the pool until withdrawn.
    await goToEpoch(conn, staking, FAULT_EPOCH + 1n);
    const OPERATOR_INDEX = await staking.OPERATOR_UNBONDING_INDEX();
    await staking.connect(alice).unbond(edgeId, conn.ethers.MaxUint256);
    await expect(staking.connect(operator).unbond(edgeId, 500n * TOKEN))
      .to.emit(staking, "Unbonded")
      .withArgs(edgeId, operator.address, OPERATOR_INDEX, 500n * TOKEN, 500n * TOKEN, (t: bigint) => t > 0n);
    await staking.connect(operator).unbond(edgeId, conn.ethers.MaxUint256);
    expect(await staking.selfBond(edgeId)).to.equal(0n);
    const maturity = (await staking.epochStartTime(FAULT_EPOCH + 2n)) + UNBONDING_DELAY;
    expect((await staking.unbonding(edgeId, alice.address, 0n))[1]).to.equal(maturity);
    expect(await staking.unbonding(edgeId, operator.address, OPERATOR_INDEX)).to.deep.equal([OP, maturity, true]);

    // Epoch 7: the fault is reported. The attackers cannot have withdrawn yet.
    await goToEpoch(conn, staking, FAULT_EPOCH + 2n);
    const now = BigInt(await conn.networkHelpers.time.latest());
    for (const [who, i] of [
      [alice, 0n],
      [operator, OPERATOR_INDEX],
    ] as const) {
      await expect(staking.connect(who).withdraw(edgeId, i))
        .to.be.revertedWithCustomError(staking, "StakingUnbondingNotMature")
        .withArgs(maturity, (t: bigint) => t > now && t < maturity);
    }

    // At stake: the pool (bob's 2,000 and the operator's 2,000 leaving) and alice's 3,000 in the
    // queue; carol's entry has matured (start of epoch 7) and is out of reach. 20% of 7,000 = 1,400.
    // The operator's first loss still applies to its leaving self-bond: 50% of its 2,000 = 1,000,
    // burned from the leaving shares. The other 400 fall pro rata on the pool (3,000) and the queue
    // (3,000): 200 each. Had the unbonding let the operator escape, bob would have lost 400.
    const [, carolMaturity] = await staking.unbonding(edgeId, carol.address, 0n);
    expect(carolMaturity).to.be.lte(now);
    const total = mulDiv(BOB + OP + ALICE, FRACTION, BPS);
    const firstLoss = mulDiv(OP, 5_000n, BPS);
    const poolAfterFirstLoss = BOB + OP - firstLoss;
    const fromPool = mulDiv(total - firstLoss, poolAfterFirstLoss, poolAfterFirstLoss + ALICE);
    const fromUnbonding = total - firstLoss - fromPool;
    expect([total, firstLoss, fromPool, fromUnbonding]).to.deep.equal([1_400n * TOKEN, 1_000n * TOKEN, 200n * TOKEN, 200n * TOKEN]);
    await expect(staking.connect(slasher).slash(edgeId, FAULT_EPOCH, FRACTION, outsider.address))
      .to.emit(staking, "SlashDistributed")
      .withArgs(edgeId, firstLoss, fromPool, fromUnbonding);
    await solvent(env);

    // Pool: 2,800 tokens over 3,000 shares (bob 2,000, operator leaving 1,000).
    const poolTokens = poolAfterFirstLoss - fromPool;
    const poolShares = BOB + OP - firstLoss;
    const bobValue = mulDiv(BOB, poolTokens, poolShares);
    const opValue = mulDiv(OP - firstLoss, poolTokens, poolShares);
    const phi = nextPhi(PHI_SCALE, ALICE, fromUnbonding);
    const aliceValue = mulDiv(ALICE, phi, PHI_SCALE);
    expect((await staking.position(edgeId, bob.address))[0]).to.equal(bobValue);
    expect((await staking.unbonding(edgeId, alice.address, 0n))[0]).to.equal(aliceValue);
    expect((await staking.unbonding(edgeId, operator.address, OPERATOR_INDEX))[0]).to.equal(opValue);
    expect((await staking.unbonding(edgeId, carol.address, 0n))[0]).to.equal(CAROL);
    // The operator bears far more than its pro-rata 20%; the delegators bear far less.
    expect(OP - opValue).to.be.gt(mulDiv(OP, 5n, 10n));
    expect(BOB - bobValue).to.be.lt(mulDiv(BOB, 1n, 10n));

    // Carol, whose delay had passed, gets everything back.
    await expect(staking.connect(carol).withdraw(edgeId, 0n)).to.changeTokenBalances(
      conn.ethers,
      token,
      [carol, stakingAddress],
      [CAROL, -CAROL],
    );

    // After maturity the attackers get only the slashed value; nobody else can take the operator's.
    await conn.networkHelpers.time.increaseTo(maturity);
    await expect(staking.connect(alice).withdraw(edgeId, 0n)).to.changeTokenBalances(
      conn.ethers,
      token,
      [alice, stakingAddress],
      [aliceValue, -aliceValue],
    );
    await expect(staking.connect(bob).withdraw(edgeId, OPERATOR_INDEX))
      .to.be.revertedWithCustomError(staking, "StakingUnknownUnbonding")
      .withArgs(edgeId, bob.address, OPERATOR_INDEX);
    await expect(staking.connect(operator).withdraw(edgeId, OPERATOR_INDEX))
      .to.emit(staking, "Withdrawn")
      .withArgs(edgeId, operator.address, OPERATOR_INDEX, opValue);
    expect((await staking.unbonding(edgeId, operator.address, OPERATOR_INDEX))[2]).to.equal(false);
    await solvent(env);
  });

  it("slashes stake unbonded during the faulty epoch itself until its delay is over, and not after", async () => {
    const env = await conn.networkHelpers.loadFixture(escapeFixture);
    const { staking, alice, bob, slasher, edgeId } = env;
    await staking.connect(alice).unbond(edgeId, conn.ethers.MaxUint256);
    // Unbonded in epoch 5: slashable until UNBONDING_DELAY after the end of epoch 5.
    const maturity = (await staking.epochStartTime(FAULT_EPOCH + 1n)) + UNBONDING_DELAY;
    expect((await staking.unbonding(edgeId, alice.address, 0n))[1]).to.equal(maturity);

    // Reported one second before maturity: alice still pays her 20%.
    // (Without first loss, so that every holder visibly loses the same 20%.)
    await staking.setOperatorFirstLossBps(0n);
    const snapshot = await conn.networkHelpers.takeSnapshot();
    await conn.networkHelpers.time.increaseTo(maturity - 10n);
    await conn.networkHelpers.time.setNextBlockTimestamp(maturity - 1n);
    const active = OP + BOB;
    const total = mulDiv(active + ALICE, FRACTION, BPS);
    await expect(staking.connect(slasher).slash(edgeId, FAULT_EPOCH, FRACTION, slasher.address))
      .to.emit(staking, "SlashDistributed")
      .withArgs(edgeId, 0n, mulDiv(total, active, active + ALICE), total - mulDiv(total, active, active + ALICE));
    expect((await staking.unbonding(edgeId, alice.address, 0n))[0]).to.equal(mulDiv(ALICE, 8n, 10n));
    await solvent(env);

    // Reported at maturity: too late for alice's entry, only the bonded stake pays.
    await snapshot.restore();
    await conn.networkHelpers.time.increaseTo(maturity - 10n);
    await conn.networkHelpers.time.setNextBlockTimestamp(maturity);
    await expect(staking.connect(slasher).slash(edgeId, FAULT_EPOCH, FRACTION, slasher.address))
      .to.emit(staking, "SlashDistributed")
      .withArgs(edgeId, 0n, mulDiv(active, FRACTION, BPS), 0n);
    expect((await staking.unbonding(edgeId, alice.address, 0n))[0]).to.equal(ALICE);
    expect((await staking.position(edgeId, bob.address))[0]).to.equal(mulDiv(BOB, 8n, 10n));
    await solvent(env);
  });

  it("does not let a delegator withdraw before the delay, however the unbonding is timed", async () => {
    const env = await conn.networkHelpers.loadFixture(escapeFixture);
    const { staking, token, bob, edgeId } = env;
    // Unbonding in the last second of an epoch gains nothing: the delay runs from the epoch's end.
    const end = await staking.epochStartTime(FAULT_EPOCH + 1n);
    await conn.networkHelpers.time.setNextBlockTimestamp(end - 1n);
    await staking.connect(bob).unbond(edgeId, 1_000n * TOKEN);
    const early = end + UNBONDING_DELAY;
    // Unbonding at the first second of the next epoch waits a whole epoch longer.
    await staking.connect(bob).unbond(edgeId, 1_000n * TOKEN);
    const late = (await staking.epochStartTime(FAULT_EPOCH + 2n)) + UNBONDING_DELAY;
    expect((await staking.unbonding(edgeId, bob.address, 0n))[1]).to.equal(early);
    expect((await staking.unbonding(edgeId, bob.address, 1n))[1]).to.equal(late);

    await expect(staking.connect(bob).withdraw(edgeId, 0n))
      .to.be.revertedWithCustomError(staking, "StakingUnbondingNotMature")
      .withArgs(early, (v: bigint) => v < early);
    await conn.networkHelpers.time.increaseTo(early - 10n);
    await conn.networkHelpers.time.setNextBlockTimestamp(early - 1n);
    await expect(staking.connect(bob).withdraw(edgeId, 0n))
      .to.be.revertedWithCustomError(staking, "StakingUnbondingNotMature")
      .withArgs(early, early - 1n);
    // (A reverted call mines no block, so the next one is timed explicitly.)
    await conn.networkHelpers.time.setNextBlockTimestamp(early);
    await expect(staking.connect(bob).withdraw(edgeId, 0n)).to.changeTokenBalances(conn.ethers, token, [bob], [1_000n * TOKEN]);
    await conn.networkHelpers.time.setNextBlockTimestamp(late - 1n);
    await expect(staking.connect(bob).withdraw(edgeId, 1n))
      .to.be.revertedWithCustomError(staking, "StakingUnbondingNotMature")
      .withArgs(late, late - 1n);
    await conn.networkHelpers.time.setNextBlockTimestamp(late);
    await expect(staking.connect(bob).withdraw(edgeId, 1n)).to.changeTokenBalances(conn.ethers, token, [bob], [1_000n * TOKEN]);
    // Nothing is left to withdraw twice.
    await expect(staking.connect(bob).withdraw(edgeId, 0n))
      .to.be.revertedWithCustomError(staking, "StakingUnknownUnbonding")
      .withArgs(edgeId, bob.address, 0n);
  });
});
