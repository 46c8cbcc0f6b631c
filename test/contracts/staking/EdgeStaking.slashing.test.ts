import { expect } from "chai";

import {
  BURN_BPS,
  connect,
  type Connection,
  deployProtocol,
  deployWithEdge,
  FIRST_LOSS_BPS,
  goToEpoch,
  MAX_SLASH_BPS,
  MIN_SELF_BOND,
  profile,
  signKeyClaim,
  TOKEN,
  UNBONDING_DELAY,
} from "../../helpers/protocol.ts";
import {
  BPS,
  entriesValue,
  expectSolvent,
  mulDiv,
  nextPhi,
  nextTimestamp,
  PHI_SCALE,
  predictSlash,
  splitSlash,
  toTokens,
} from "../../helpers/stakingSlash.ts";

// Stakes of the main fixture, all bonded in epoch 0 and earning from epoch 4 on.
const OP = MIN_SELF_BOND; // 1,000
const ALICE = 3_000n * TOKEN;
const BOB = 1_000n * TOKEN;
const CAROL = 1_000n * TOKEN;
const ALL = OP + ALICE + BOB + CAROL; // 6,000
/** Φ is kept to 1e-18: an entry of up to 1,000 tokens may lose up to 1,000 wei to its rounding. */
const PHI_ROUNDING = 1_000n;

describe("EdgeStaking slashing", () => {
  let conn: Connection;
  before(async () => {
    conn = await connect();
  });

  /** Operator 1,000, alice 3,000, bob 1,000, carol 1,000, all bonded in epoch 0; now at epoch 4. */
  async function stakedFixture() {
    const env = await deployWithEdge(conn);
    const { staking, alice, bob, carol, edgeId } = env;
    await staking.connect(alice).delegate(edgeId, ALICE);
    await staking.connect(bob).delegate(edgeId, BOB);
    await staking.connect(carol).delegate(edgeId, CAROL);
    await goToEpoch(conn, staking, 4n);
    return env;
  }

  /** Alice delegates 3,000 in epoch 0, the operator bonds 1,000 only in epoch 2; now at epoch 4. */
  async function operatorWarmingFixture() {
    const env = await deployProtocol(conn);
    const { staking, registry, operator, alice } = env;
    const key = conn.ethers.Wallet.createRandom();
    await registry.connect(operator).registerEdge(key.address, profile(), await signKeyClaim(registry, operator.address, key));
    await staking.connect(alice).delegate(1n, ALICE);
    await goToEpoch(conn, staking, 2n);
    await staking.connect(operator).stake(1n, OP);
    await goToEpoch(conn, staking, 4n);
    return { ...env, edgeId: 1n };
  }

  function holders(env: Awaited<ReturnType<typeof stakedFixture>>) {
    return [env.operator.address, env.alice.address, env.bob.address, env.carol.address];
  }

  async function solvent(env: Awaited<ReturnType<typeof stakedFixture>>) {
    await expectSolvent(env.staking, env.token, env.edgeId, holders(env));
  }

  describe("slash: access and arguments", () => {
    it("reverts when the caller does not have SLASHER_ROLE", async () => {
      const { staking, edgeId, outsider, admin, operator } = await conn.networkHelpers.loadFixture(stakedFixture);
      const role = await staking.SLASHER_ROLE();
      for (const caller of [outsider, admin, operator]) {
        await expect(staking.connect(caller).slash(edgeId, 3n, 1_000n, caller.address))
          .to.be.revertedWithCustomError(staking, "AccessControlUnauthorizedAccount")
          .withArgs(caller.address, role);
      }
    });

    it("reverts for a zero fraction", async () => {
      const { staking, edgeId, slasher } = await conn.networkHelpers.loadFixture(stakedFixture);
      await expect(staking.connect(slasher).slash(edgeId, 3n, 0n, slasher.address))
        .to.be.revertedWithCustomError(staking, "StakingSlashFractionOutOfBounds")
        .withArgs(0n, MAX_SLASH_BPS);
    });

    it("reverts for a fraction above maxSlashBps and accepts exactly maxSlashBps", async () => {
      const env = await conn.networkHelpers.loadFixture(stakedFixture);
      const { staking, edgeId, slasher } = env;
      await expect(staking.connect(slasher).slash(edgeId, 3n, MAX_SLASH_BPS + 1n, slasher.address))
        .to.be.revertedWithCustomError(staking, "StakingSlashFractionOutOfBounds")
        .withArgs(MAX_SLASH_BPS + 1n, MAX_SLASH_BPS);
      const total = mulDiv(ALL, MAX_SLASH_BPS, BPS); // 1,800
      const burned = mulDiv(total, BURN_BPS, BPS);
      await expect(staking.connect(slasher).slash(edgeId, 3n, MAX_SLASH_BPS, slasher.address))
        .to.emit(staking, "Slashed")
        .withArgs(edgeId, 3n, slasher.address, MAX_SLASH_BPS, total, burned, total - burned);
      await solvent(env);
    });

    it("reverts for a fault epoch in the future and accepts the current epoch", async () => {
      const env = await conn.networkHelpers.loadFixture(stakedFixture);
      const { staking, edgeId, slasher } = env;
      const cur = await staking.currentEpoch();
      expect(cur).to.equal(4n);
      await expect(staking.connect(slasher).slash(edgeId, cur + 1n, 1_000n, slasher.address))
        .to.be.revertedWithCustomError(staking, "StakingFaultEpochInFuture")
        .withArgs(cur + 1n, cur);
      await expect(staking.connect(slasher).slash(edgeId, cur, 1_000n, slasher.address))
        .to.emit(staking, "Jailed")
        .withArgs(edgeId, cur, (until: bigint) => until > 0n);
      await solvent(env);
    });

    it("reverts for an edge that was never registered", async () => {
      const { staking, slasher } = await conn.networkHelpers.loadFixture(stakedFixture);
      await expect(staking.connect(slasher).slash(99n, 3n, 1_000n, slasher.address))
        .to.be.revertedWithCustomError(staking, "StakingUnknownEdge")
        .withArgs(99n);
    });
  });

  describe("slash: amount", () => {
    it("takes the fraction of active plus still-slashable unbonding stake", async () => {
      const env = await conn.networkHelpers.loadFixture(stakedFixture);
      const { staking, edgeId, bob, slasher } = env;
      await staking.connect(bob).unbond(edgeId, 400n * TOKEN);
      const [active, , unbondingSlashable] = await staking.edgeStake(edgeId);
      expect(active).to.equal(ALL - 400n * TOKEN);
      expect(unbondingSlashable).to.equal(400n * TOKEN);
      // 20% of everything bonded in epoch 0, whether still active or unbonding.
      const expected = mulDiv(ALL, 2_000n, BPS);
      expect(expected).to.equal(1_200n * TOKEN);
      expect(await staking.connect(slasher).slash.staticCall(edgeId, 4n, 2_000n, slasher.address)).to.equal(expected);
      await expect(staking.connect(slasher).slash(edgeId, 4n, 2_000n, slasher.address))
        .to.emit(staking, "Slashed")
        .withArgs(
          edgeId,
          4n,
          slasher.address,
          2_000n,
          expected,
          mulDiv(expected, BURN_BPS, BPS),
          expected - mulDiv(expected, BURN_BPS, BPS),
        );
      const [activeAfter, , unbondingAfter] = await staking.edgeStake(edgeId);
      // Φ is rounded down, so the unbonding side may lose a few wei more than its exact share
      // (at most one wei per 1e18 wei unbonding), never less.
      const taken = active + unbondingSlashable - activeAfter - unbondingAfter;
      expect(taken).to.be.gte(expected);
      expect(taken - expected).to.be.lte(PHI_ROUNDING);
      await solvent(env);
    });
  });

  describe("slash: operator first loss", () => {
    it("lets the operator's earning self-bond absorb a small slash entirely", async () => {
      const env = await conn.networkHelpers.loadFixture(stakedFixture);
      const { staking, edgeId, operator, alice, bob, carol, slasher } = env;
      // 8% of 6,000 = 480, below the cap of 50% of the 1,000 self-bond.
      const total = mulDiv(ALL, 800n, BPS);
      expect(total).to.be.lt(mulDiv(OP, FIRST_LOSS_BPS, BPS));
      await expect(staking.connect(slasher).slash(edgeId, 4n, 800n, slasher.address))
        .to.emit(staking, "SlashDistributed")
        .withArgs(edgeId, total, 0n, 0n);
      expect(await staking.selfBond(edgeId)).to.equal(OP - total);
      expect((await staking.position(edgeId, alice.address))[0]).to.equal(ALICE);
      expect((await staking.position(edgeId, bob.address))[0]).to.equal(BOB);
      expect((await staking.position(edgeId, carol.address))[0]).to.equal(CAROL);
      expect((await staking.position(edgeId, operator.address))[0]).to.equal(OP - total);
      await solvent(env);
    });

    it("caps the first loss and spreads the rest pro rata over delegators and unbonding entries", async () => {
      const env = await conn.networkHelpers.loadFixture(stakedFixture);
      const { staking, edgeId, operator, alice, bob, carol, slasher } = env;
      await staking.connect(bob).unbond(edgeId, BOB);
      // 30% of 6,000 = 1,800: the operator takes 500 (half its self-bond), 1,300 remain for
      // the 4,500 still active and bob's 1,000 unbonding.
      const total = mulDiv(ALL, 3_000n, BPS);
      const firstLoss = mulDiv(OP, FIRST_LOSS_BPS, BPS);
      const rest = total - firstLoss;
      const activeAfterFirstLoss = ALL - BOB - firstLoss;
      // The unbonding side is rounded down, the pool takes the remainder.
      const fromUnbonding = mulDiv(rest, BOB, activeAfterFirstLoss + BOB);
      const fromPool = rest - fromUnbonding;
      await expect(staking.connect(slasher).slash(edgeId, 4n, 3_000n, slasher.address))
        .to.emit(staking, "SlashDistributed")
        .withArgs(edgeId, firstLoss, fromPool, fromUnbonding);

      // Every share was worth one token; the first loss burned 500 of the operator's shares.
      const poolTokens = activeAfterFirstLoss - fromPool;
      const poolShares = activeAfterFirstLoss;
      const aliceValue = toTokens(ALICE, poolTokens, poolShares);
      const carolValue = toTokens(CAROL, poolTokens, poolShares);
      const operatorValue = toTokens(OP - firstLoss, poolTokens, poolShares);
      const bobValue = mulDiv(BOB, nextPhi(PHI_SCALE, BOB, fromUnbonding), PHI_SCALE);
      expect((await staking.position(edgeId, alice.address))[0]).to.equal(aliceValue);
      expect((await staking.position(edgeId, carol.address))[0]).to.equal(carolValue);
      expect(await staking.selfBond(edgeId)).to.equal(operatorValue);
      expect((await staking.unbonding(edgeId, bob.address, 0n))[0]).to.equal(bobValue);

      // Pro rata: alice (3,000 active) loses three times what bob (1,000 unbonding) loses, and
      // both lose rest / (active after first loss + unbonding) = 1,300 / 5,500 of their stake.
      const aliceLoss = ALICE - aliceValue;
      const bobLoss = BOB - bobValue;
      // (Φ is rounded down: bob's entry may lose up to 1,000 wei more than its exact share.)
      expect(3n * bobLoss).to.be.gte(aliceLoss);
      expect(aliceLoss).to.be.closeTo(3n * bobLoss, 3n * PHI_ROUNDING);
      expect(bobLoss).to.be.closeTo(mulDiv(BOB, rest, activeAfterFirstLoss + BOB), PHI_ROUNDING);
      // The operator loses its first loss plus the same pro rata share on what is left.
      expect(OP - operatorValue).to.be.closeTo(firstLoss + mulDiv(OP - firstLoss, rest, activeAfterFirstLoss + BOB), 10n);
      expect((await staking.position(edgeId, operator.address))[0]).to.equal(operatorValue);
      await solvent(env);
    });

    it("burns only the operator's earning self-bond, not the part still warming up", async () => {
      const env = await conn.networkHelpers.loadFixture(stakedFixture);
      const { staking, edgeId, operator, alice, slasher } = env;
      // The operator adds 3,000 in epoch 4: its self-bond is 4,000, of which 1,000 earns.
      const topUp = 3_000n * TOKEN;
      await staking.connect(operator).stake(edgeId, topUp);
      const [earning, warming] = await staking.position(edgeId, operator.address);
      expect([earning, warming]).to.deep.equal([OP, topUp]);
      const active = ALL + topUp;
      const total = mulDiv(active, 3_000n, BPS); // 2,700
      // Half of the self-bond would be 2,000, but only the 1,000 earning can be burned.
      const firstLoss = OP;
      const fromPool = total - firstLoss;
      await expect(staking.connect(slasher).slash(edgeId, 4n, 3_000n, slasher.address))
        .to.emit(staking, "SlashDistributed")
        .withArgs(edgeId, firstLoss, fromPool, 0n);
      const poolTokens = active - firstLoss - fromPool;
      const poolShares = active - firstLoss;
      const [opEarning, opWarming] = await staking.position(edgeId, operator.address);
      expect(opEarning).to.equal(0n);
      expect(opWarming).to.equal(toTokens(topUp, poolTokens, poolShares));
      expect((await staking.position(edgeId, alice.address))[0]).to.equal(toTokens(ALICE, poolTokens, poolShares));
      await solvent(env);
    });

    it("takes no first loss from an operator whose self-bond is still warming up", async () => {
      const env = await conn.networkHelpers.loadFixture(operatorWarmingFixture);
      const { staking, edgeId, operator, alice, slasher, token } = env;
      const [opEarning, opWarming, activation] = await staking.position(edgeId, operator.address);
      expect([opEarning, opWarming, activation]).to.deep.equal([0n, OP, 6n]);
      expect((await staking.position(edgeId, alice.address))[0]).to.equal(ALICE);
      const active = ALICE + OP;
      const total = mulDiv(active, 1_000n, BPS); // 400
      await expect(staking.connect(slasher).slash(edgeId, 4n, 1_000n, slasher.address))
        .to.emit(staking, "SlashDistributed")
        .withArgs(edgeId, 0n, total, 0n);
      // Everyone loses 10%.
      const [, opWarmingAfter] = await staking.position(edgeId, operator.address);
      const [aliceAfter] = await staking.position(edgeId, alice.address);
      expect(opWarmingAfter).to.equal(toTokens(OP, active - total, active));
      expect(aliceAfter).to.equal(toTokens(ALICE, active - total, active));
      expect(opWarmingAfter).to.be.closeTo(mulDiv(OP, 9n, 10n), 1n);
      expect(aliceAfter).to.be.closeTo(mulDiv(ALICE, 9n, 10n), 1n);
      await expectSolvent(staking, token, edgeId, [operator.address, alice.address]);
    });

    it("spreads everything pro rata once governance sets operatorFirstLossBps to 0", async () => {
      const env = await conn.networkHelpers.loadFixture(stakedFixture);
      const { staking, edgeId, operator, alice, bob, slasher } = env;
      await staking.setOperatorFirstLossBps(0n);
      await staking.connect(bob).unbond(edgeId, BOB);
      const total = mulDiv(ALL, 1_000n, BPS); // 600
      const active = ALL - BOB;
      const fromPool = mulDiv(total, active, ALL);
      const fromUnbonding = total - fromPool;
      await expect(staking.connect(slasher).slash(edgeId, 4n, 1_000n, slasher.address))
        .to.emit(staking, "SlashDistributed")
        .withArgs(edgeId, 0n, fromPool, fromUnbonding);
      expect(await staking.selfBond(edgeId)).to.equal(toTokens(OP, active - fromPool, active));
      expect(await staking.selfBond(edgeId)).to.be.closeTo(mulDiv(OP, 9n, 10n), 1n);
      expect((await staking.position(edgeId, alice.address))[0]).to.be.closeTo(mulDiv(ALICE, 9n, 10n), 1n);
      expect((await staking.position(edgeId, operator.address))[0]).to.be.closeTo(mulDiv(OP, 9n, 10n), 1n);
      expect((await staking.unbonding(edgeId, bob.address, 0n))[0]).to.be.closeTo(mulDiv(BOB, 9n, 10n), 1_000n);
      await solvent(env);
    });
  });

  describe("slash: unbonding entries", () => {
    it("does not slash entries that have matured and slashes the live ones, which later pay the slashed value", async () => {
      const env = await conn.networkHelpers.loadFixture(stakedFixture);
      const { staking, token, edgeId, bob, carol, slasher } = env;
      await staking.connect(bob).unbond(edgeId, BOB); // epoch 4: matures at the start of epoch 7
      await goToEpoch(conn, staking, 6n);
      await staking.connect(carol).unbond(edgeId, CAROL); // epoch 6: matures at the start of epoch 9
      const [, bobMaturity] = await staking.unbonding(edgeId, bob.address, 0n);
      const [, carolMaturity] = await staking.unbonding(edgeId, carol.address, 0n);
      expect(bobMaturity).to.equal((await staking.epochStartTime(5n)) + UNBONDING_DELAY);
      expect(carolMaturity).to.equal((await staking.epochStartTime(7n)) + UNBONDING_DELAY);

      // Slash exactly when bob's entry matures: it is no longer at stake, carol's is.
      await conn.networkHelpers.time.increaseTo(bobMaturity - 10n);
      await conn.networkHelpers.time.setNextBlockTimestamp(bobMaturity);
      const active = OP + ALICE;
      const split = splitSlash(active, CAROL, OP, OP, 2_000n, FIRST_LOSS_BPS);
      expect(split.total).to.equal(mulDiv(active + CAROL, 2_000n, BPS));
      await expect(staking.connect(slasher).slash(edgeId, 5n, 2_000n, slasher.address))
        .to.emit(staking, "SlashDistributed")
        .withArgs(edgeId, split.firstLoss, split.fromPool, split.fromUnbonding);
      expect(split.fromUnbonding).to.be.gt(0n);
      const carolValue = mulDiv(CAROL, nextPhi(PHI_SCALE, CAROL, split.fromUnbonding), PHI_SCALE);
      expect((await staking.unbonding(edgeId, bob.address, 0n))[0]).to.equal(BOB);
      expect((await staking.unbonding(edgeId, carol.address, 0n))[0]).to.equal(carolValue);
      await solvent(env);

      const stakingAddress = await staking.getAddress();
      await expect(staking.connect(bob).withdraw(edgeId, 0n)).to.changeTokenBalances(
        conn.ethers,
        token,
        [bob, stakingAddress],
        [BOB, -BOB],
      );
      await conn.networkHelpers.time.increaseTo(carolMaturity);
      const tx = staking.connect(carol).withdraw(edgeId, 0n);
      await expect(tx).to.emit(staking, "Withdrawn").withArgs(edgeId, carol.address, 0n, carolValue);
      await expect(tx).to.changeTokenBalances(conn.ethers, token, [carol, stakingAddress], [carolValue, -carolValue]);
      await solvent(env);
    });

    it("still slashes an entry one second before it matures", async () => {
      const env = await conn.networkHelpers.loadFixture(stakedFixture);
      const { staking, edgeId, bob, slasher } = env;
      await staking.connect(bob).unbond(edgeId, BOB);
      const [, maturity] = await staking.unbonding(edgeId, bob.address, 0n);
      await conn.networkHelpers.time.increaseTo(maturity - 10n);
      await conn.networkHelpers.time.setNextBlockTimestamp(maturity - 1n);
      const split = splitSlash(ALL - BOB, BOB, OP, OP, 2_000n, FIRST_LOSS_BPS);
      expect(split.total).to.equal(mulDiv(ALL, 2_000n, BPS));
      await expect(staking.connect(slasher).slash(edgeId, 5n, 2_000n, slasher.address))
        .to.emit(staking, "SlashDistributed")
        .withArgs(edgeId, split.firstLoss, split.fromPool, split.fromUnbonding);
      const bobValue = mulDiv(BOB, nextPhi(PHI_SCALE, BOB, split.fromUnbonding), PHI_SCALE);
      expect(bobValue).to.be.lt(BOB);
      expect((await staking.unbonding(edgeId, bob.address, 0n))[0]).to.equal(bobValue);
      await expect(staking.connect(bob).withdraw(edgeId, 0n)).to.changeTokenBalances(conn.ethers, env.token, [bob], [bobValue]);
      await solvent(env);
    });
  });

  describe("slash: burn and reporter reward", () => {
    it("burns slashBurnBps of the total and pays the rest to the reporter", async () => {
      const env = await conn.networkHelpers.loadFixture(stakedFixture);
      const { staking, token, edgeId, slasher, outsider } = env;
      const total = mulDiv(ALL, 2_000n, BPS);
      const burned = mulDiv(total, BURN_BPS, BPS);
      const reward = total - burned;
      expect(burned).to.equal(600n * TOKEN);
      const supply = await token.totalSupply();
      const tx = staking.connect(slasher).slash(edgeId, 4n, 2_000n, outsider.address);
      await expect(tx).to.emit(staking, "Slashed").withArgs(edgeId, 4n, outsider.address, 2_000n, total, burned, reward);
      await expect(tx).to.changeTokenBalances(conn.ethers, token, [await staking.getAddress(), outsider, slasher], [-total, reward, 0n]);
      expect(await token.totalSupply()).to.equal(supply - burned);
      await solvent(env);
    });

    it("burns everything when the reporter is the zero address", async () => {
      const env = await conn.networkHelpers.loadFixture(stakedFixture);
      const { staking, token, edgeId, slasher } = env;
      const total = mulDiv(ALL, 2_000n, BPS);
      const supply = await token.totalSupply();
      const tx = staking.connect(slasher).slash(edgeId, 4n, 2_000n, conn.ethers.ZeroAddress);
      await expect(tx).to.emit(staking, "Slashed").withArgs(edgeId, 4n, conn.ethers.ZeroAddress, 2_000n, total, total, 0n);
      await expect(tx).to.changeTokenBalances(conn.ethers, token, [await staking.getAddress(), slasher], [-total, 0n]);
      expect(await token.totalSupply()).to.equal(supply - total);
      await solvent(env);
    });
  });

  describe("slash: events", () => {
    it("emits Slashed, SlashDistributed whose parts add up to the total, and Jailed", async () => {
      const env = await conn.networkHelpers.loadFixture(stakedFixture);
      const { staking, edgeId, operator, bob, slasher, outsider } = env;
      await staking.connect(bob).unbond(edgeId, 500n * TOKEN);
      await goToEpoch(conn, staking, 5n);
      const split = await predictSlash(staking, edgeId, operator.address, 2_500n);
      expect(split.total).to.equal(mulDiv(ALL, 2_500n, BPS));
      const t = await nextTimestamp(conn);
      const tx = await staking.connect(slasher).slash(edgeId, 4n, 2_500n, outsider.address);
      const burned = mulDiv(split.total, BURN_BPS, BPS);
      await expect(tx)
        .to.emit(staking, "Slashed")
        .withArgs(edgeId, 4n, outsider.address, 2_500n, split.total, burned, split.total - burned);
      await expect(tx).to.emit(staking, "SlashDistributed").withArgs(edgeId, split.firstLoss, split.fromPool, split.fromUnbonding);
      await expect(tx)
        .to.emit(staking, "Jailed")
        .withArgs(edgeId, 4n, t + 3_600n);

      const receipt = await tx.wait();
      const logs = receipt!.logs.map((l) => staking.interface.parseLog(l)).filter((l) => l !== null);
      const distributed = logs.find((l) => l.name === "SlashDistributed")!;
      const slashed = logs.find((l) => l.name === "Slashed")!;
      const [, firstLoss, fromPool, fromUnbonding] = distributed.args;
      expect(firstLoss > 0n && fromPool > 0n && fromUnbonding > 0n).to.equal(true);
      expect(firstLoss + fromPool + fromUnbonding).to.equal(slashed.args[4]);
      expect(logs.map((l) => l.name)).to.deep.equal(["Slashed", "SlashDistributed", "Jailed"]);
      await solvent(env);
    });
  });

  describe("slash: solvency", () => {
    it("keeps the books equal to the balance and lets everyone withdraw exactly what is left", async () => {
      const env = await conn.networkHelpers.loadFixture(stakedFixture);
      const { staking, token, edgeId, operator, alice, bob, carol, slasher, creditor, outsider } = env;
      const stakingAddress = await staking.getAddress();
      // Rewards owed and a reserve, so that every bucket of the books is non-zero.
      await staking.connect(creditor).depositRewardReserve(1_000n * TOKEN);
      await staking.connect(creditor).creditReward(edgeId, 3n, 300n * TOKEN);
      await staking.connect(alice).unbond(edgeId, 1_234n * TOKEN);
      await staking.connect(bob).unbond(edgeId, 333n * TOKEN);
      await staking.connect(bob).unbond(edgeId, 111n * TOKEN);
      await solvent(env);
      await staking.connect(slasher).slash(edgeId, 4n, 2_345n, outsider.address);
      await solvent(env);
      await goToEpoch(conn, staking, 5n);
      await staking.connect(carol).unbond(edgeId, 77n * TOKEN);
      await staking.connect(slasher).slash(edgeId, 5n, 1_111n, conn.ethers.ZeroAddress);
      await solvent(env);

      // Everybody leaves: unbond all, withdraw every entry after maturity, claim rewards.
      const accounts = [operator, alice, bob, carol];
      for (const a of accounts) await staking.connect(a).unbond(edgeId, conn.ethers.MaxUint256);
      await solvent(env);
      await goToEpoch(conn, staking, 9n);
      for (const a of accounts) {
        const n = await staking.unbondingCount(edgeId, a.address);
        for (let i = 0n; i < n; i++) {
          const [value, , exists] = await staking.unbonding(edgeId, a.address, i);
          expect(exists).to.equal(true);
          await expect(staking.connect(a).withdraw(edgeId, i)).to.changeTokenBalances(conn.ethers, token, [a], [value]);
        }
        // The operator's unbonded self-bond is withdrawn under its own index.
        const operatorIndex = await staking.OPERATOR_UNBONDING_INDEX();
        const [leaving, , isLeaving] = await staking.unbonding(edgeId, a.address, operatorIndex);
        expect(isLeaving).to.equal(a === operator);
        if (isLeaving) {
          await expect(staking.connect(a).withdraw(edgeId, operatorIndex)).to.changeTokenBalances(conn.ethers, token, [a], [leaving]);
        }
        await staking.connect(a).claimRewards(edgeId, a.address);
      }
      const [active, unbonding, owed, reserve] = await staking.totals();
      expect(reserve).to.equal(700n * TOKEN);
      expect(active + unbonding + owed + reserve).to.equal(await token.balanceOf(stakingAddress));
      // Only rounding dust stays behind.
      expect(active + unbonding + owed).to.be.lte(1_000_000n);
    });
  });

  describe("slash: repeated slashes", () => {
    it("compounds: the second slash takes its fraction of what the first one left", async () => {
      const env = await conn.networkHelpers.loadFixture(stakedFixture);
      const { staking, edgeId, operator, bob, slasher } = env;
      await staking.connect(bob).unbond(edgeId, BOB);
      const first = splitSlash(ALL - BOB, BOB, OP, OP, 1_000n, FIRST_LOSS_BPS);
      await expect(staking.connect(slasher).slash(edgeId, 4n, 1_000n, slasher.address))
        .to.emit(staking, "SlashDistributed")
        .withArgs(edgeId, first.firstLoss, first.fromPool, first.fromUnbonding);
      await solvent(env);
      const activeLeft = ALL - BOB - first.firstLoss - first.fromPool;
      const unbondingLeft = BOB - first.fromUnbonding;
      const second = await predictSlash(staking, edgeId, operator.address, 2_000n);
      // Not 20% of the original 6,000 but 20% of what is left.
      expect(second.total).to.be.closeTo(mulDiv(activeLeft + unbondingLeft, 2_000n, BPS), PHI_ROUNDING);
      expect(second.total).to.be.lt(mulDiv(ALL, 2_000n, BPS));
      await expect(staking.connect(slasher).slash(edgeId, 4n, 2_000n, slasher.address))
        .to.emit(staking, "Slashed")
        .withArgs(
          edgeId,
          4n,
          slasher.address,
          2_000n,
          second.total,
          mulDiv(second.total, BURN_BPS, BPS),
          second.total - mulDiv(second.total, BURN_BPS, BPS),
        );
      const [activeAfter, , unbondingAfter] = await staking.edgeStake(edgeId);
      expect(activeAfter).to.be.closeTo(activeLeft - second.firstLoss - second.fromPool, 1n);
      expect(unbondingAfter).to.be.closeTo(unbondingLeft - second.fromUnbonding, 2n * PHI_ROUNDING);
      await solvent(env);
    });

    it("compounds pro rata on every holder and entry without first loss: 10% then 20% leaves 72%", async () => {
      const env = await conn.networkHelpers.loadFixture(stakedFixture);
      const { staking, edgeId, operator, alice, bob, slasher } = env;
      await staking.setOperatorFirstLossBps(0n);
      await staking.connect(bob).unbond(edgeId, BOB);
      await staking.connect(slasher).slash(edgeId, 4n, 1_000n, slasher.address);
      await solvent(env);
      // 20% of the 5,400 left after the first 10%.
      const second = mulDiv(mulDiv(ALL, 9n, 10n), 2n, 10n);
      expect(second).to.equal(1_080n * TOKEN);
      await expect(staking.connect(slasher).slash(edgeId, 4n, 2_000n, slasher.address))
        .to.emit(staking, "Slashed")
        .withArgs(edgeId, 4n, slasher.address, 2_000n, second, second / 2n, second - second / 2n);
      expect((await staking.position(edgeId, alice.address))[0]).to.be.closeTo(mulDiv(ALICE, 72n, 100n), 10n);
      expect(await staking.selfBond(edgeId)).to.be.closeTo(mulDiv(OP, 72n, 100n), 10n);
      expect((await staking.position(edgeId, operator.address))[0]).to.be.closeTo(mulDiv(OP, 72n, 100n), 10n);
      expect(await entriesValue(staking, edgeId, bob.address)).to.be.closeTo(mulDiv(BOB, 72n, 100n), 10_000n);
      await solvent(env);
    });
  });
});
