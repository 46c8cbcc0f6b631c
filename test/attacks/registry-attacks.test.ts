import { expect } from "chai";

import { connect, type Connection, deployWithEdge, EPOCH, JAIL_PERIOD, MIN_SELF_BOND, profile, TOKEN } from "../helpers/protocol.js";

// IEdgeStaking.EdgeStatus
const STATUS_ACTIVE = 2n;
const STATUS_JAILED = 4n;
const STATUS_EXITING = 5n;

const SLASH_BPS = 1_000n;

describe("Registry attacks", () => {
  let conn: Connection;
  before(async () => {
    conn = await connect();
  });

  function newKey() {
    return conn.ethers.Wallet.createRandom().address;
  }

  function withEdge() {
    return deployWithEdge(conn);
  }

  describe("allowlist bypass", () => {
    it("a non-allowlisted account cannot register in the trusted phase", async () => {
      const { registry, outsider } = await conn.networkHelpers.loadFixture(withEdge);
      expect(await registry.trustedPhase()).to.equal(true);
      expect(await registry.isAllowlisted(outsider.address)).to.equal(false);
      await expect(registry.connect(outsider).registerEdge(newKey(), profile()))
        .to.be.revertedWithCustomError(registry, "RegistryOperatorNotAllowlisted")
        .withArgs(outsider.address);
      expect(await registry.edgeCount()).to.equal(1n);
    });

    it("cannot register on behalf of an allowlisted operator: the rejected operator is always the caller", async () => {
      const { registry, operator, outsider } = await conn.networkHelpers.loadFixture(withEdge);
      // Whatever it passes (the operator's own address as key, a fresh key, the operator's profile),
      // the registry judges the caller, not anything in the arguments.
      for (const key of [operator.address, newKey()]) {
        await expect(registry.connect(outsider).registerEdge(key, profile()))
          .to.be.revertedWithCustomError(registry, "RegistryOperatorNotAllowlisted")
          .withArgs(outsider.address);
      }
      expect(await registry.edgeCount()).to.equal(1n);
      expect(await registry.signingKeyUsed(operator.address)).to.equal(false);
    });

    it("the operator of a new edge is msg.sender, whatever key it names", async () => {
      const { registry, admin, operator, outsider } = await conn.networkHelpers.loadFixture(withEdge);
      // The allowlisted operator naming the outsider's address as key still operates the edge itself.
      await registry.connect(operator).registerEdge(outsider.address, profile());
      expect((await registry.edge(2n)).operator).to.equal(operator.address);
      // With the gate open, the outsider naming the operator's address as key gets an edge of its
      // own, not one the allowlisted operator controls; closing the gate stops it again.
      await registry.connect(admin).setTrustedPhase(false);
      await registry.connect(outsider).registerEdge(operator.address, profile());
      expect((await registry.edge(3n)).operator).to.equal(outsider.address);
      await expect(registry.connect(operator).pauseEdge(3n))
        .to.be.revertedWithCustomError(registry, "RegistryNotOperator")
        .withArgs(3n, operator.address, outsider.address);
      await registry.connect(admin).setTrustedPhase(true);
      await expect(registry.connect(outsider).registerEdge(newKey(), profile()))
        .to.be.revertedWithCustomError(registry, "RegistryOperatorNotAllowlisted")
        .withArgs(outsider.address);
    });

    it("cannot update, rotate, pause, resume or deregister an allowlisted operator's edge", async () => {
      const { registry, operator, outsider, edgeId, signingKey } = await conn.networkHelpers.loadFixture(withEdge);
      const before = await registry.edge(edgeId);
      const r = registry.connect(outsider);
      const attempts = [
        () => r.updateEdge(edgeId, profile({ endpoint: "https://attacker.example.org" })),
        () => r.rotateSigningKey(edgeId, outsider.address),
        () => r.pauseEdge(edgeId),
        () => r.deregisterEdge(edgeId),
      ];
      for (const attempt of attempts) {
        await expect(attempt())
          .to.be.revertedWithCustomError(registry, "RegistryNotOperator")
          .withArgs(edgeId, outsider.address, operator.address);
      }
      await registry.connect(operator).pauseEdge(edgeId);
      await expect(r.resumeEdge(edgeId))
        .to.be.revertedWithCustomError(registry, "RegistryNotOperator")
        .withArgs(edgeId, outsider.address, operator.address);
      const after = await registry.edge(edgeId);
      expect(after.profileHash).to.equal(before.profileHash);
      expect(after.signingKey).to.equal(signingKey.address);
      expect(await registry.signingKeyUsed(outsider.address)).to.equal(false);
    });

    it("cannot put itself on the allowlist or open the gate", async () => {
      const { registry, outsider } = await conn.networkHelpers.loadFixture(withEdge);
      const governance = await registry.GOVERNANCE_ROLE();
      await expect(registry.connect(outsider).setOperatorAllowlisted(outsider.address, true))
        .to.be.revertedWithCustomError(registry, "AccessControlUnauthorizedAccount")
        .withArgs(outsider.address, governance);
      await expect(registry.connect(outsider).setTrustedPhase(false))
        .to.be.revertedWithCustomError(registry, "AccessControlUnauthorizedAccount")
        .withArgs(outsider.address, governance);
    });

    it("an operator removed from the allowlist cannot register a new edge", async () => {
      const { registry, admin, operator, edgeId } = await conn.networkHelpers.loadFixture(withEdge);
      await registry.connect(admin).setOperatorAllowlisted(operator.address, false);
      await expect(registry.connect(operator).registerEdge(newKey(), profile()))
        .to.be.revertedWithCustomError(registry, "RegistryOperatorNotAllowlisted")
        .withArgs(operator.address);
      expect(await registry.edgeCount()).to.equal(1n);
      // Its existing edge is unaffected.
      expect((await registry.edge(edgeId)).operator).to.equal(operator.address);
    });
  });

  describe("re-registering a jailed edge", () => {
    /** deployWithEdge, then the slasher slashes edge 1 for a fault in the current epoch. */
    async function jailedEdge() {
      const env = await deployWithEdge(conn);
      const { staking, slasher, outsider, edgeId } = env;
      const faultEpoch = await staking.currentEpoch();
      const tx = await staking.connect(slasher).slash(edgeId, faultEpoch, SLASH_BPS, outsider.address);
      const receipt = await tx.wait();
      const block = await conn.ethers.provider.getBlock(receipt!.blockNumber);
      const jailedUntil = BigInt(block!.timestamp) + JAIL_PERIOD;
      return { ...env, faultEpoch, slashTx: tx, jailedUntil };
    }

    it("the slash jails the edge (setup)", async () => {
      const { staking, registry, edgeId, faultEpoch, slashTx, jailedUntil } = await conn.networkHelpers.loadFixture(jailedEdge);
      await expect(slashTx).to.emit(staking, "Jailed").withArgs(edgeId, faultEpoch, jailedUntil);
      expect(await staking.edgeStatus(edgeId)).to.equal(STATUS_JAILED);
      // The operator's bond lost the slashed fraction, so it is below the minimum too.
      expect(await staking.selfBond(edgeId)).to.equal(MIN_SELF_BOND - (MIN_SELF_BOND * SLASH_BPS) / 10_000n);
      // The registry itself does not know about the jail: the edge is still Registered there.
      expect((await registry.edge(edgeId)).state).to.equal(1n);
    });

    it("re-registering with the same signing key reverts", async () => {
      const { registry, admin, operator, alice, signingKey } = await conn.networkHelpers.loadFixture(jailedEdge);
      await expect(registry.connect(operator).registerEdge(signingKey.address, profile()))
        .to.be.revertedWithCustomError(registry, "RegistrySigningKeyUnavailable")
        .withArgs(signingKey.address);
      // Nor through an accomplice, nor once the gate is open.
      await registry.connect(admin).setOperatorAllowlisted(alice.address, true);
      await registry.connect(admin).setTrustedPhase(false);
      await expect(registry.connect(alice).registerEdge(signingKey.address, profile()))
        .to.be.revertedWithCustomError(registry, "RegistrySigningKeyUnavailable")
        .withArgs(signingKey.address);
      expect(await registry.edgeCount()).to.equal(1n);
    });

    it("rotating the jailed edge's key does not free the old key, and the edge stays jailed", async () => {
      const { registry, staking, admin, operator, alice, edgeId, signingKey } = await conn.networkHelpers.loadFixture(jailedEdge);
      await registry.connect(admin).setOperatorAllowlisted(alice.address, true);
      const next = newKey();
      await expect(registry.connect(operator).rotateSigningKey(edgeId, next))
        .to.emit(registry, "SigningKeyRotated")
        .withArgs(edgeId, signingKey.address, next);
      expect(await registry.edgeOfSigner(signingKey.address)).to.equal(0n);
      expect(await registry.signingKeyUsed(signingKey.address)).to.equal(true);
      for (const registrant of [operator, alice]) {
        await expect(registry.connect(registrant).registerEdge(signingKey.address, profile()))
          .to.be.revertedWithCustomError(registry, "RegistrySigningKeyUnavailable")
          .withArgs(signingKey.address);
      }
      expect(await registry.edgeCount()).to.equal(1n);
      // The new key is bound to the jailed edge, so answers signed with it are the jailed edge's.
      expect(await registry.edgeOfSigner(next)).to.equal(edgeId);
      expect(await staking.edgeStatus(edgeId)).to.equal(STATUS_JAILED);
    });

    it("pausing and resuming does not clear the jail", async () => {
      const { registry, staking, operator, edgeId } = await conn.networkHelpers.loadFixture(jailedEdge);
      await registry.connect(operator).pauseEdge(edgeId);
      expect(await staking.edgeStatus(edgeId)).to.equal(STATUS_JAILED);
      await registry.connect(operator).resumeEdge(edgeId);
      expect(await staking.edgeStatus(edgeId)).to.equal(STATUS_JAILED);
    });

    it("deregistering and registering again with the same key reverts", async () => {
      const { registry, staking, operator, edgeId, signingKey } = await conn.networkHelpers.loadFixture(jailedEdge);
      await registry.connect(operator).deregisterEdge(edgeId);
      expect(await staking.edgeStatus(edgeId)).to.equal(STATUS_EXITING);
      await expect(registry.connect(operator).registerEdge(signingKey.address, profile()))
        .to.be.revertedWithCustomError(registry, "RegistrySigningKeyUnavailable")
        .withArgs(signingKey.address);
      // A brand-new edge needs a brand-new key and starts with no stake at all.
      await registry.connect(operator).registerEdge(newKey(), profile());
      expect(await staking.selfBond(2n)).to.equal(0n);
      expect(await staking.edgeStatus(2n)).to.equal(1n);
    });

    it("cannot be unjailed before the jail period is over", async () => {
      const { staking, operator, edgeId, jailedUntil } = await conn.networkHelpers.loadFixture(jailedEdge);
      // Top up first, so the only obstacle left is the period.
      await staking.connect(operator).stake(edgeId, 200n * TOKEN);
      await expect(staking.connect(operator).unjail(edgeId))
        .to.be.revertedWithCustomError(staking, "StakingJailPeriodNotOver")
        .withArgs(edgeId, jailedUntil);
      await conn.networkHelpers.time.setNextBlockTimestamp(jailedUntil - 1n);
      await expect(staking.connect(operator).unjail(edgeId))
        .to.be.revertedWithCustomError(staking, "StakingJailPeriodNotOver")
        .withArgs(edgeId, jailedUntil);
      expect(await staking.edgeStatus(edgeId)).to.equal(STATUS_JAILED);
      // Control: at the end of the period the same call goes through.
      await conn.networkHelpers.time.setNextBlockTimestamp(jailedUntil);
      const epochAtRelease = (jailedUntil - (await staking.epochStartTime(0n))) / EPOCH;
      await expect(staking.connect(operator).unjail(edgeId)).to.emit(staking, "Unjailed").withArgs(edgeId, epochAtRelease);
      expect(await staking.edgeStatus(edgeId)).to.equal(STATUS_ACTIVE);
    });

    it("after deregistration unjail reverts with StakingEdgeExiting, even once the period is over", async () => {
      const { registry, staking, operator, edgeId, jailedUntil } = await conn.networkHelpers.loadFixture(jailedEdge);
      await registry.connect(operator).deregisterEdge(edgeId);
      await conn.networkHelpers.time.increaseTo(jailedUntil + 1n);
      await expect(staking.connect(operator).unjail(edgeId))
        .to.be.revertedWithCustomError(staking, "StakingEdgeExiting")
        .withArgs(edgeId);
      // It cannot be topped up either: an exiting edge accepts no stake.
      await expect(staking.connect(operator).stake(edgeId, MIN_SELF_BOND))
        .to.be.revertedWithCustomError(staking, "StakingEdgeNotAcceptingStake")
        .withArgs(edgeId, STATUS_EXITING);
      expect(await staking.edgeStatus(edgeId)).to.equal(STATUS_EXITING);
    });

    it("delegators cannot delegate into the jailed edge", async () => {
      const { registry, staking, operator, alice, bob, edgeId } = await conn.networkHelpers.loadFixture(jailedEdge);
      for (const delegator of [alice, bob]) {
        await expect(staking.connect(delegator).delegate(edgeId, 100n * TOKEN))
          .to.be.revertedWithCustomError(staking, "StakingEdgeNotAcceptingStake")
          .withArgs(edgeId, STATUS_JAILED);
      }
      // Not after a key rotation either: the jail belongs to the edge, not to its key.
      await registry.connect(operator).rotateSigningKey(edgeId, newKey());
      await expect(staking.connect(alice).delegate(edgeId, 100n * TOKEN))
        .to.be.revertedWithCustomError(staking, "StakingEdgeNotAcceptingStake")
        .withArgs(edgeId, STATUS_JAILED);
    });
  });
});
