// StakeVotes: bonded stake as votes of the staker's own. EdgeStaking records every bond and
// unbond; a slash is recorded by anyone's sync. On the Ignition deployment (Contracts module),
// where StakeVotes is bound to the staking contract right after both are deployed.
import { expect } from "chai";

import {
  type Connection,
  connect,
  CREDIT_WINDOW,
  deployWithEdge,
  goToEpoch,
  initialParameters,
  MIN_SELF_BOND,
  profile,
  signKeyClaim,
  TOKEN,
} from "../../helpers/protocol.ts";

describe("StakeVotes", () => {
  let conn: Connection;
  before(async () => {
    conn = await connect();
  });

  async function deployed() {
    const env = await deployWithEdge(conn);
    const stakeVotes = await conn.ethers.getContractAt("StakeVotes", await env.staking.stakeVotes());
    return { ...env, stakeVotes };
  }

  /** deployed() with alice's 10,000 delegated to edge 1 and warmed up, so that she can unbond. */
  async function aliceBonded() {
    const env = await deployed();
    await env.staking.connect(env.alice).delegate(env.edgeId, 10_000n * TOKEN);
    await goToEpoch(conn, env.staking, (await env.staking.currentEpoch()) + CREDIT_WINDOW + 1n);
    return env;
  }

  describe("binding", () => {
    it("is bound by the deployment to the staking contract, whose bonds it records", async () => {
      const { staking, stakeVotes } = await conn.networkHelpers.loadFixture(deployed);
      expect(await stakeVotes.staking()).to.equal(await staking.getAddress());
    });

    it("binds once, and only from the binder named at deployment", async () => {
      const { admin, outsider, staking } = await conn.networkHelpers.loadFixture(deployed);
      const fresh = await conn.ethers.deployContract("StakeVotes", [admin.address]);
      await expect(fresh.connect(outsider).bind(await staking.getAddress()))
        .to.be.revertedWithCustomError(fresh, "StakeVotesNotBinder")
        .withArgs(outsider.address, admin.address);
      await expect(fresh.connect(admin).bind(conn.ethers.ZeroAddress)).to.be.revertedWithCustomError(fresh, "StakeVotesZeroAddress");
      await expect(fresh.connect(admin).bind(await staking.getAddress()))
        .to.emit(fresh, "StakingBound")
        .withArgs(await staking.getAddress());
      await expect(fresh.connect(admin).bind(outsider.address))
        .to.be.revertedWithCustomError(fresh, "StakeVotesAlreadyBound")
        .withArgs(await staking.getAddress());
    });

    it("records nothing before it is bound", async () => {
      const { admin, alice } = await conn.networkHelpers.loadFixture(deployed);
      const fresh = await conn.ethers.deployContract("StakeVotes", [admin.address]);
      await expect(fresh.sync(1n, alice.address)).to.be.revertedWithCustomError(fresh, "StakeVotesUnbound");
    });

    it("refuses a zero binder, and EdgeStaking refuses a zero StakeVotes", async () => {
      const { token, registry, admin } = await conn.networkHelpers.loadFixture(deployed);
      const factory = await conn.ethers.getContractFactory("StakeVotes");
      await expect(conn.ethers.deployContract("StakeVotes", [conn.ethers.ZeroAddress])).to.be.revertedWithCustomError(
        factory,
        "StakeVotesZeroAddress",
      );
      const stakingFactory = await conn.ethers.getContractFactory("EdgeStaking");
      await expect(
        conn.ethers.deployContract("EdgeStaking", [
          await token.getAddress(),
          await registry.getAddress(),
          conn.ethers.ZeroAddress,
          admin.address,
          0n,
          3_600n,
          CREDIT_WINDOW,
          initialParameters,
        ]),
      ).to.be.revertedWithCustomError(stakingFactory, "StakingZeroAddress");
    });
  });

  describe("recording bonds and unbonds", () => {
    it("gives a bond its votes at once, to the staker, who delegated to itself", async () => {
      const { staking, stakeVotes, token, operator, alice, edgeId } = await conn.networkHelpers.loadFixture(deployed);
      // The operator's self-bond, bonded by the fixture.
      expect(await stakeVotes.getVotes(operator.address)).to.equal(MIN_SELF_BOND);
      const bond = staking.connect(alice).delegate(edgeId, 2_500n * TOKEN);
      await expect(bond)
        .to.emit(stakeVotes, "StakeVotesSynced")
        .withArgs(edgeId, alice.address, 0n, 2_500n * TOKEN);
      await expect(bond).to.emit(stakeVotes, "DelegateChanged").withArgs(alice.address, conn.ethers.ZeroAddress, alice.address);
      expect(await stakeVotes.getVotes(alice.address)).to.equal(2_500n * TOKEN);
      expect(await stakeVotes.recordedStake(edgeId, alice.address)).to.equal(2_500n * TOKEN);
      expect(await stakeVotes.stakeOf(alice.address)).to.equal(2_500n * TOKEN);
      expect(await stakeVotes.delegates(alice.address)).to.equal(alice.address);
      // The staked tokens left alice's token votes: the staking contract holds them and never votes.
      expect(await token.balanceOf(await staking.getAddress())).to.equal(MIN_SELF_BOND + 2_500n * TOKEN);
    });

    it("takes an unbond's votes away at once: unbonding stake does not vote", async () => {
      const { staking, stakeVotes, alice, edgeId } = await conn.networkHelpers.loadFixture(aliceBonded);
      await expect(staking.connect(alice).unbond(edgeId, 4_000n * TOKEN))
        .to.emit(stakeVotes, "StakeVotesSynced")
        .withArgs(edgeId, alice.address, 10_000n * TOKEN, 6_000n * TOKEN);
      expect(await stakeVotes.getVotes(alice.address)).to.equal(6_000n * TOKEN);
      await staking.connect(alice).unbond(edgeId, 6_000n * TOKEN);
      expect(await stakeVotes.getVotes(alice.address)).to.equal(0n);
      await conn.networkHelpers.mine();
      expect(await stakeVotes.getPastTotalSupply((await stakeVotes.clock()) - 1n)).to.equal(MIN_SELF_BOND);
    });

    it("sums an account's stake over edges and keeps each edge's record apart", async () => {
      const { registry, staking, stakeVotes, operator, alice, edgeId } = await conn.networkHelpers.loadFixture(deployed);
      const key2 = conn.ethers.Wallet.createRandom();
      await registry.connect(operator).registerEdge(key2.address, profile(), await signKeyClaim(registry, operator.address, key2));
      await staking.connect(operator).stake(2n, MIN_SELF_BOND);
      await staking.connect(alice).delegate(edgeId, 1_000n * TOKEN);
      await staking.connect(alice).delegate(2n, 3_000n * TOKEN);
      expect(await stakeVotes.getVotes(alice.address)).to.equal(4_000n * TOKEN);
      expect(await stakeVotes.recordedStake(2n, alice.address)).to.equal(3_000n * TOKEN);
      expect(await stakeVotes.getVotes(operator.address)).to.equal(2n * MIN_SELF_BOND);
    });

    it("moves stake votes to the delegate the staker chose, later bonds included", async () => {
      const { staking, stakeVotes, alice, bob, edgeId } = await conn.networkHelpers.loadFixture(deployed);
      await staking.connect(alice).delegate(edgeId, 1_000n * TOKEN);
      await stakeVotes.connect(alice).delegate(bob.address);
      await staking.connect(alice).delegate(edgeId, 500n * TOKEN);
      expect(await stakeVotes.getVotes(alice.address)).to.equal(0n);
      expect(await stakeVotes.getVotes(bob.address)).to.equal(1_500n * TOKEN);
      expect(await stakeVotes.delegates(alice.address)).to.equal(bob.address);
    });
  });

  describe("a slash", () => {
    it("leaves the slashed position's votes until synced, and anyone may sync them down to its stake", async () => {
      const { staking, stakeVotes, slasher, outsider, alice, operator, edgeId } = await conn.networkHelpers.loadFixture(aliceBonded);
      await staking.connect(slasher).slash(edgeId, (await staking.currentEpoch()) - 1n, 3_000n, conn.ethers.ZeroAddress);
      const [earning, warmingUp] = await staking.position(edgeId, alice.address);
      const stake = earning + warmingUp;
      expect(stake).to.be.lessThan(10_000n * TOKEN);
      expect(await stakeVotes.getVotes(alice.address)).to.equal(10_000n * TOKEN);

      await expect(stakeVotes.connect(outsider).sync(edgeId, alice.address))
        .to.emit(stakeVotes, "StakeVotesSynced")
        .withArgs(edgeId, alice.address, 10_000n * TOKEN, stake);
      expect(await stakeVotes.getVotes(alice.address)).to.equal(stake);
      const [opEarning, opWarming] = await staking.position(edgeId, operator.address);
      await stakeVotes.connect(outsider).sync(edgeId, operator.address);
      expect(await stakeVotes.getVotes(operator.address)).to.equal(opEarning + opWarming);
      await conn.networkHelpers.mine();
      expect(await stakeVotes.getPastTotalSupply((await stakeVotes.clock()) - 1n)).to.equal(stake + opEarning + opWarming);
    });

    it("a sync that finds nothing changed records and emits nothing", async () => {
      const { stakeVotes, outsider, alice, edgeId } = await conn.networkHelpers.loadFixture(aliceBonded);
      await expect(stakeVotes.connect(outsider).sync(edgeId, alice.address)).not.to.emit(stakeVotes, "StakeVotesSynced");
      await expect(stakeVotes.connect(outsider).sync(edgeId, outsider.address)).not.to.emit(stakeVotes, "StakeVotesSynced");
      expect(await stakeVotes.getVotes(outsider.address)).to.equal(0n);
      expect(await stakeVotes.delegates(outsider.address)).to.equal(conn.ethers.ZeroAddress);
    });
  });
});
