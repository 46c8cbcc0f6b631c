import { expect } from "chai";
import type { BaseWallet } from "ethers";

import {
  connect,
  type Connection,
  deployWithEdge,
  EPOCH,
  JAIL_PERIOD,
  keyClaimDomain,
  MIN_SELF_BOND,
  profile,
  SIGNING_KEY_CLAIM_TYPES,
  signKeyClaim,
  TOKEN,
} from "../../helpers/protocol.ts";

// IEdgeStaking.EdgeStatus
const STATUS_ACTIVE = 2n;
const STATUS_JAILED = 4n;
const STATUS_EXITING = 5n;

const SLASH_BPS = 1_000n;

/** The profile as the ABI decoder returns it inside an event (capacity as a bigint). */
function asTuple(p: ReturnType<typeof profile>) {
  return [p.endpoint, p.region, BigInt(p.capacity), p.models, p.metadataURI];
}

describe("Registry attacks", () => {
  let conn: Connection;
  before(async () => {
    conn = await connect();
  });

  type Env = Awaited<ReturnType<typeof deployWithEdge>>;
  type Registry = Env["registry"];
  type Account = Env["operator"];

  /** A fresh signing key: a wallet, so the test can produce its proofs of possession. */
  function newKey() {
    return conn.ethers.Wallet.createRandom();
  }

  /** registerEdge by `caller` with `key` and a valid proof of possession for `caller`. */
  async function register(registry: Registry, caller: Account, key: BaseWallet) {
    return registry.connect(caller).registerEdge(key.address, profile(), await signKeyClaim(registry, caller.address, key));
  }

  /** rotateSigningKey by `caller` to `key` with a valid proof of possession for `caller`. */
  async function rotate(registry: Registry, caller: Account, edgeId: bigint, key: BaseWallet) {
    return registry.connect(caller).rotateSigningKey(edgeId, key.address, await signKeyClaim(registry, caller.address, key));
  }

  function withEdge() {
    return deployWithEdge(conn);
  }

  describe("allowlist bypass", () => {
    it("a non-allowlisted account cannot register in the trusted phase", async () => {
      const { registry, outsider } = await conn.networkHelpers.loadFixture(withEdge);
      expect(await registry.trustedPhase()).to.equal(true);
      expect(await registry.isAllowlisted(outsider.address)).to.equal(false);
      await expect(register(registry, outsider, newKey()))
        .to.be.revertedWithCustomError(registry, "RegistryOperatorNotAllowlisted")
        .withArgs(outsider.address);
      expect(await registry.edgeCount()).to.equal(1n);
    });

    it("cannot register on behalf of an allowlisted operator: the rejected operator is always the caller", async () => {
      const { registry, operator, outsider } = await conn.networkHelpers.loadFixture(withEdge);
      // Whatever it passes (a key with the allowlisted operator's proof, a key with its own proof,
      // the operator's profile), the registry judges the caller, not anything in the arguments.
      const operatorsKey = newKey();
      const ownKey = newKey();
      const attempts: [string, string][] = [
        [operatorsKey.address, await signKeyClaim(registry, operator.address, operatorsKey)],
        [ownKey.address, await signKeyClaim(registry, outsider.address, ownKey)],
      ];
      for (const [key, proof] of attempts) {
        await expect(registry.connect(outsider).registerEdge(key, profile(), proof))
          .to.be.revertedWithCustomError(registry, "RegistryOperatorNotAllowlisted")
          .withArgs(outsider.address);
        expect(await registry.signingKeyUsed(key)).to.equal(false);
      }
      expect(await registry.edgeCount()).to.equal(1n);
    });

    it("the operator of a new edge is msg.sender, whatever key it names", async () => {
      const { registry, admin, operator, outsider } = await conn.networkHelpers.loadFixture(withEdge);
      // The allowlisted operator registering a key the outsider holds (which signed a claim for the
      // operator) still operates the edge itself: the key does not make its holder the operator.
      const outsidersKey = newKey();
      await register(registry, operator, outsidersKey);
      expect((await registry.edge(2n)).operator).to.equal(operator.address);
      // With the gate open, the outsider gets an edge of its own, not one the allowlisted operator
      // controls; closing the gate stops it again.
      await registry.connect(admin).setTrustedPhase(false);
      await register(registry, outsider, newKey());
      expect((await registry.edge(3n)).operator).to.equal(outsider.address);
      await expect(registry.connect(operator).pauseEdge(3n))
        .to.be.revertedWithCustomError(registry, "RegistryNotOperator")
        .withArgs(3n, operator.address, outsider.address);
      await registry.connect(admin).setTrustedPhase(true);
      await expect(register(registry, outsider, newKey()))
        .to.be.revertedWithCustomError(registry, "RegistryOperatorNotAllowlisted")
        .withArgs(outsider.address);
    });

    it("cannot update, rotate, pause, resume or deregister an allowlisted operator's edge", async () => {
      const { registry, operator, outsider, edgeId, signingKey } = await conn.networkHelpers.loadFixture(withEdge);
      const before = await registry.edge(edgeId);
      const r = registry.connect(outsider);
      // The attacker's key comes with a valid proof, so only the operator check can stop it.
      const attackersKey = newKey();
      const attempts = [
        () => r.updateEdge(edgeId, profile({ endpoint: "https://attacker.example.org" })),
        () => rotate(registry, outsider, edgeId, attackersKey),
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
      expect(await registry.signingKeyUsed(attackersKey.address)).to.equal(false);
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
      await expect(register(registry, operator, newKey()))
        .to.be.revertedWithCustomError(registry, "RegistryOperatorNotAllowlisted")
        .withArgs(operator.address);
      expect(await registry.edgeCount()).to.equal(1n);
      // Its existing edge is unaffected.
      expect((await registry.edge(edgeId)).operator).to.equal(operator.address);
    });
  });

  describe("signing-key squatting", () => {
    // Keys are never reusable, so naming someone else's intended key used to burn it for good.
    // Each scenario ends with the victim still able to claim its key.

    /** withEdge, plus alice as a second allowlisted operator (the squatter) with an edge of her own (id 2). */
    async function withSquatter() {
      const env = await deployWithEdge(conn);
      await env.registry.connect(env.admin).setOperatorAllowlisted(env.alice.address, true);
      await register(env.registry, env.alice, newKey());
      return env;
    }

    /** Whom the registry recovers from `signature` when `caller` claims `key` with it. */
    async function recoveredFor(registry: Registry, caller: string, key: string, signature: string) {
      const claim = { operator: caller, signingKey: key };
      return conn.ethers.verifyTypedData(await keyClaimDomain(registry), SIGNING_KEY_CLAIM_TYPES, claim, signature);
    }

    it("copying the victim's registration (key and proof, e.g. from the mempool) is rejected", async () => {
      const { registry, admin, operator, alice, outsider } = await conn.networkHelpers.loadFixture(withSquatter);
      const victimsKey = newKey();
      const proof = await signKeyClaim(registry, operator.address, victimsKey);
      await registry.connect(admin).setTrustedPhase(false); // so the outsider may register too
      for (const squatter of [alice, outsider]) {
        const recovered = await recoveredFor(registry, squatter.address, victimsKey.address, proof);
        expect(recovered).to.not.equal(victimsKey.address);
        await expect(registry.connect(squatter).registerEdge(victimsKey.address, profile(), proof))
          .to.be.revertedWithCustomError(registry, "RegistryInvalidKeySignature")
          .withArgs(victimsKey.address, recovered);
      }
      expect(await registry.signingKeyUsed(victimsKey.address)).to.equal(false);
      await expect(registry.connect(operator).registerEdge(victimsKey.address, profile(), proof))
        .to.emit(registry, "EdgeRegistered")
        .withArgs(3n, operator.address, victimsKey.address, asTuple(profile()));
      expect(await registry.edgeOfSigner(victimsKey.address)).to.equal(3n);
    });

    it("copying the victim's rotation proof into a rotation of the squatter's own edge is rejected", async () => {
      const { registry, operator, alice, edgeId } = await conn.networkHelpers.loadFixture(withSquatter);
      const squattersEdge = 2n;
      const victimsKey = newKey();
      const proof = await signKeyClaim(registry, operator.address, victimsKey);
      const recovered = await recoveredFor(registry, alice.address, victimsKey.address, proof);
      await expect(registry.connect(alice).rotateSigningKey(squattersEdge, victimsKey.address, proof))
        .to.be.revertedWithCustomError(registry, "RegistryInvalidKeySignature")
        .withArgs(victimsKey.address, recovered);
      expect(await registry.signingKeyUsed(victimsKey.address)).to.equal(false);
      await registry.connect(operator).rotateSigningKey(edgeId, victimsKey.address, proof);
      expect(await registry.edgeOfSigner(victimsKey.address)).to.equal(edgeId);
    });

    it("naming the key with no proof, a malformed one, or a claim signed by the squatter's own key is rejected", async () => {
      const { registry, operator, alice } = await conn.networkHelpers.loadFixture(withSquatter);
      const victimsKey = newKey();
      const squattersWallet = newKey();
      const forged = await squattersWallet.signTypedData(await keyClaimDomain(registry), SIGNING_KEY_CLAIM_TYPES, {
        operator: alice.address,
        signingKey: victimsKey.address,
      });
      const attempts: [string, string][] = [
        ["0x", conn.ethers.ZeroAddress],
        [conn.ethers.zeroPadBytes("0x", 65), conn.ethers.ZeroAddress], // r = s = v = 0: ecrecover fails
        [forged, squattersWallet.address],
      ];
      for (const [signature, recovered] of attempts) {
        await expect(registry.connect(alice).registerEdge(victimsKey.address, profile(), signature))
          .to.be.revertedWithCustomError(registry, "RegistryInvalidKeySignature")
          .withArgs(victimsKey.address, recovered);
      }
      expect(await registry.signingKeyUsed(victimsKey.address)).to.equal(false);
      await register(registry, operator, victimsKey);
      expect((await registry.edge(3n)).signingKey).to.equal(victimsKey.address);
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
      // The old key still proves possession: availability, not the proof, stops it.
      await expect(register(registry, operator, signingKey))
        .to.be.revertedWithCustomError(registry, "RegistrySigningKeyUnavailable")
        .withArgs(signingKey.address);
      // Nor through an accomplice, nor once the gate is open.
      await registry.connect(admin).setOperatorAllowlisted(alice.address, true);
      await registry.connect(admin).setTrustedPhase(false);
      await expect(register(registry, alice, signingKey))
        .to.be.revertedWithCustomError(registry, "RegistrySigningKeyUnavailable")
        .withArgs(signingKey.address);
      expect(await registry.edgeCount()).to.equal(1n);
    });

    it("rotating the jailed edge's key does not free the old key, and the edge stays jailed", async () => {
      const { registry, staking, admin, operator, alice, edgeId, signingKey } = await conn.networkHelpers.loadFixture(jailedEdge);
      await registry.connect(admin).setOperatorAllowlisted(alice.address, true);
      const next = newKey();
      await expect(rotate(registry, operator, edgeId, next))
        .to.emit(registry, "SigningKeyRotated")
        .withArgs(edgeId, signingKey.address, next.address);
      expect(await registry.edgeOfSigner(signingKey.address)).to.equal(0n);
      expect(await registry.signingKeyUsed(signingKey.address)).to.equal(true);
      for (const registrant of [operator, alice]) {
        await expect(register(registry, registrant, signingKey))
          .to.be.revertedWithCustomError(registry, "RegistrySigningKeyUnavailable")
          .withArgs(signingKey.address);
      }
      expect(await registry.edgeCount()).to.equal(1n);
      // The new key is bound to the jailed edge, so answers signed with it are the jailed edge's.
      expect(await registry.edgeOfSigner(next.address)).to.equal(edgeId);
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
      await expect(register(registry, operator, signingKey))
        .to.be.revertedWithCustomError(registry, "RegistrySigningKeyUnavailable")
        .withArgs(signingKey.address);
      // A brand-new edge needs a brand-new key and starts with no stake at all.
      await register(registry, operator, newKey());
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
      await expect(staking.connect(operator).unjail(edgeId)).to.be.revertedWithCustomError(staking, "StakingEdgeExiting").withArgs(edgeId);
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
      await rotate(registry, operator, edgeId, newKey());
      await expect(staking.connect(alice).delegate(edgeId, 100n * TOKEN))
        .to.be.revertedWithCustomError(staking, "StakingEdgeNotAcceptingStake")
        .withArgs(edgeId, STATUS_JAILED);
    });
  });
});
