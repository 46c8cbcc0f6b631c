import { expect } from "chai";
import { anyValue } from "@nomicfoundation/hardhat-ethers-chai-matchers/withArgs";
import { type BaseWallet, keccak256, type TypedDataDomain } from "ethers";

import {
  connect,
  type Connection,
  CREDIT_WINDOW,
  BURN_BPS,
  DISPUTE_WINDOW,
  EPOCH,
  goToEpoch,
  JAIL_PERIOD,
  MIN_SELF_BOND,
  TOKEN,
  VERIFIER_EXIT_DELAY,
  VERIFIER_MIN_BOND,
  QUORUM,
} from "../../helpers/protocol.ts";
import {
  type Attestation,
  buildTree,
  EPOCH_ATTESTATION_TYPES,
  QUALITY_ONE,
  signAttestation,
  signFault,
  VERIFIER_KEY_CLAIM_TYPES,
  verifierDomain,
} from "../../helpers/settlement.ts";
import {
  ALICE_STAKE,
  defaultResults,
  deploySettlementBase,
  E,
  commitAndReport,
  expectedFunding,
  MAJORITY,
  MAX_FAULT_AGE,
  rewardOf,
  settleFinal,
  sign,
  State,
  submitTree,
} from "../../helpers/epochSettlement.ts";

const OTHER_ROOT = keccak256("0x01");

describe("EpochSettlement attacks", () => {
  let conn: Connection;
  before(async () => {
    conn = await connect();
  });

  async function baseFixture() {
    return deploySettlementBase(conn);
  }
  /** Base, in epoch E + 1 (E has ended, nothing submitted). */
  async function afterEpochFixture() {
    const env = await deploySettlementBase(conn);
    await goToEpoch(conn, env.staking, E + 1n);
    return env;
  }
  async function finalFixture() {
    const env = await deploySettlementBase(conn);
    const settled = await settleFinal(conn, env, E, defaultResults(env));
    return { ...env, settled };
  }

  /** The address the contract recovers from the first packed signature over `attestation` in `domain`. */
  function firstRecovered(domain: TypedDataDomain, attestation: Attestation, packed: string) {
    return conn.ethers.verifyTypedData(domain, EPOCH_ATTESTATION_TYPES, attestation, `0x${packed.slice(2, 132)}`);
  }

  describe("signature replay", () => {
    it("a quorum signed in another chain's domain does not count here", async () => {
      const env = await conn.networkHelpers.loadFixture(afterEpochFixture);
      const t = buildTree(E, defaultResults(env));
      const a = { epoch: E, root: t.root, totalWeight: t.totalWeight };
      const foreign = { ...env.domain, chainId: BigInt(env.domain.chainId!) + 1n };
      const sigs = await signAttestation(foreign, env.keys.slice(0, 3), a);
      const recovered = firstRecovered(env.domain, a, sigs);
      expect(env.keys.map((k) => k.address)).to.not.include(recovered);
      await expect(env.settlement.submitEpoch(a, sigs))
        .to.be.revertedWithCustomError(env.verifierSet, "VerifierSetNotActiveVerifier")
        .withArgs(0n, recovered);
      expect((await env.settlement.epochRecord(E)).state).to.equal(State.None);
    });

    it("a quorum signed in a second VerifierSet deployment's domain does not count here", async () => {
      const env = await conn.networkHelpers.loadFixture(afterEpochFixture);
      const p = await env.verifierSet.parameters();
      const second = await conn.ethers.deployContract("VerifierSet", [
        await env.token.getAddress(),
        env.admin.address,
        true,
        { minBond: VERIFIER_MIN_BOND, exitDelay: VERIFIER_EXIT_DELAY, quorum: QUORUM, slashBps: p.slashBps, reporterBps: p.reporterBps },
      ]);
      const otherDomain = await verifierDomain({ verifierSet: second });
      expect(otherDomain.verifyingContract).to.not.equal(env.domain.verifyingContract);
      const t = buildTree(E, defaultResults(env));
      const a = { epoch: E, root: t.root, totalWeight: t.totalWeight };
      const sigs = await signAttestation(otherDomain, env.keys.slice(0, 3), a);
      const recovered = firstRecovered(env.domain, a, sigs);
      await expect(env.settlement.submitEpoch(a, sigs))
        .to.be.revertedWithCustomError(env.verifierSet, "VerifierSetNotActiveVerifier")
        .withArgs(0n, recovered);
    });

    it("epoch E's signatures replayed for epoch E + 1 do not recover to verifiers", async () => {
      const env = await conn.networkHelpers.loadFixture(finalFixture);
      await goToEpoch(conn, env.staking, E + 2n);
      const replayed = { ...env.settled.attestation, epoch: E + 1n };
      const recovered = firstRecovered(env.domain, replayed, env.settled.signatures);
      await expect(env.settlement.submitEpoch(replayed, env.settled.signatures))
        .to.be.revertedWithCustomError(env.verifierSet, "VerifierSetNotActiveVerifier")
        .withArgs(0n, recovered);
      expect((await env.settlement.epochRecord(E + 1n)).state).to.equal(State.None);
    });

    it("fault signatures cannot be replayed as an epoch attestation (different type hash)", async () => {
      const env = await conn.networkHelpers.loadFixture(afterEpochFixture);
      const fault = { edgeId: env.edgeA, epoch: E, kind: 0, evidenceHash: OTHER_ROOT, reporter: env.admin.address };
      const sigs = await signFault(env.domain, env.keys.slice(0, 3), fault);
      const a = { epoch: E, root: OTHER_ROOT, totalWeight: 1n };
      await expect(env.settlement.submitEpoch(a, sigs))
        .to.be.revertedWithCustomError(env.verifierSet, "VerifierSetNotActiveVerifier")
        .withArgs(0n, firstRecovered(env.domain, a, sigs));
    });
  });

  describe("quorum forgery", () => {
    it("one verifier's signature twice is not two signers", async () => {
      const env = await conn.networkHelpers.loadFixture(afterEpochFixture);
      const a = { epoch: E, root: OTHER_ROOT, totalWeight: 1n };
      const one = await sign(env, [env.keys[0]], a);
      await expect(env.settlement.submitEpoch(a, one + one.slice(2) + one.slice(2)))
        .to.be.revertedWithCustomError(env.verifierSet, "VerifierSetSignersNotAscending")
        .withArgs(1n, env.keys[0].address);
    });

    it("the malleable twin of a verifier's signature (high s) is rejected, not counted as a second signer", async () => {
      const env = await conn.networkHelpers.loadFixture(afterEpochFixture);
      const a = { epoch: E, root: OTHER_ROOT, totalWeight: 1n };
      const sig = conn.ethers.Signature.from(await env.keys[0].signTypedData(env.domain, EPOCH_ATTESTATION_TYPES, a));
      // The malleable twin (s' = n - s, v flipped) is rejected as a high-s signature.
      const n = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
      const twinS = n - BigInt(sig.s);
      const twin = sig.r.slice(2) + twinS.toString(16).padStart(64, "0") + (sig.v === 27 ? "1c" : "1b");
      await expect(env.settlement.submitEpoch(a, sig.serialized + twin + twin))
        .to.be.revertedWithCustomError(env.verifierSet, "VerifierSetInvalidSignature")
        .withArgs(1n);
    });

    it("below quorum, and a quorum padded with an outsider's key, are rejected", async () => {
      const env = await conn.networkHelpers.loadFixture(afterEpochFixture);
      const a = { epoch: E, root: OTHER_ROOT, totalWeight: 1n };
      await expect(env.settlement.submitEpoch(a, await sign(env, [env.keys[4]], a)))
        .to.be.revertedWithCustomError(env.verifierSet, "VerifierSetBelowQuorum")
        .withArgs(1n, MAJORITY);
      const stranger = conn.ethers.Wallet.createRandom();
      const signers = [env.keys[3], env.keys[4], stranger];
      const index = BigInt(
        signers
          .map((k) => k.address)
          .sort((x, y) => (BigInt(x) < BigInt(y) ? -1 : 1))
          .indexOf(stranger.address),
      );
      await expect(env.settlement.submitEpoch(a, await sign(env, signers, a)))
        .to.be.revertedWithCustomError(env.verifierSet, "VerifierSetNotActiveVerifier")
        .withArgs(index, stranger.address);
    });
  });

  describe("double claims", () => {
    it("claim then claim reverts SettlementAlreadyClaimed", async () => {
      const env = await conn.networkHelpers.loadFixture(finalFixture);
      const a = env.settled.claimOf(env.edgeA);
      await env.settlement.claim(env.settled.attestation, a);
      const claimed = (await env.settlement.epochFunds(E)).claimed;
      await expect(env.settlement.claim(env.settled.attestation, a))
        .to.be.revertedWithCustomError(env.settlement, "SettlementAlreadyClaimed")
        .withArgs(E, env.edgeA);
      expect((await env.settlement.epochFunds(E)).claimed).to.equal(claimed);
    });

    it("a leaf front-run by a single claim is skipped: claimMany of every leaf still pays the rest", async () => {
      const env = await conn.networkHelpers.loadFixture(finalFixture);
      const a = env.settled.claimOf(env.edgeA);
      const b = env.settled.claimOf(env.edgeB);
      const { emission } = await expectedFunding(env, E);
      const [ra, rb] = defaultResults(env).map((r) => rewardOf(emission, r, env.settled.totalWeight));
      // Someone claims A alone just before the batch of both lands.
      await env.settlement.claim(env.settled.attestation, a);
      expect(await env.settlement.claimMany.staticCall(env.settled.attestation, [a, b])).to.equal(rb);
      const tx = env.settlement.claimMany(env.settled.attestation, [a, b]);
      await expect(tx).to.emit(env.settlement, "RewardClaimed").withArgs(E, env.edgeB, rb, rb);
      // A is neither credited nor announced a second time.
      const receipt = await (await tx).wait();
      const claimedEvents = receipt!.logs.map((l) => env.settlement.interface.parseLog(l)).filter((e) => e?.name === "RewardClaimed");
      expect(claimedEvents).to.have.length(1);
      expect(await env.settlement.claimed(E, env.edgeB)).to.equal(true);
      expect((await env.settlement.epochFunds(E)).claimed).to.equal(ra + rb);
      // A batch of leaves all paid already pays nothing and reverts nothing.
      expect(await env.settlement.claimMany.staticCall(env.settled.attestation, [a, b])).to.equal(0n);
    });

    it("an already-claimed leaf with a wrong proof still reverts the batch", async () => {
      const env = await conn.networkHelpers.loadFixture(finalFixture);
      const a = env.settled.claimOf(env.edgeA);
      await env.settlement.claim(env.settled.attestation, a);
      const forged = { ...a, stake: a.stake + 1n };
      await expect(env.settlement.claimMany(env.settled.attestation, [forged, env.settled.claimOf(env.edgeB)]))
        .to.be.revertedWithCustomError(env.settlement, "SettlementInvalidProof")
        .withArgs(E, env.edgeA);
    });

    // Reentrancy: EpochSettlement calls only trusted contracts fixed at deployment: the EdgeToken
    // (mint, no transfer hooks), EdgeStaking (creditReward / depositRewardReserve / slash; staking
    // calls only the registry and the token) and the VerifierSet (view checks; slash transfers
    // EdgeToken). No call reaches an address an attacker controls, so there is no reentrant path
    // to exercise, and every state-changing entry point is nonReentrant besides. What can be
    // observed is the order: a claim sets its bit before the credit call, so the same leaf reached
    // a second time within one transaction (the shape a reentrant claim would take) is not paid again.
    it("the same leaf twice within one claimMany pays it once", async () => {
      const env = await conn.networkHelpers.loadFixture(finalFixture);
      const a = env.settled.claimOf(env.edgeA);
      const { emission } = await expectedFunding(env, E);
      const ra = rewardOf(emission, defaultResults(env)[0], env.settled.totalWeight);
      expect(await env.settlement.claimMany.staticCall(env.settled.attestation, [a, a])).to.equal(ra);
      await env.settlement.claimMany(env.settled.attestation, [a, a]);
      expect(await env.settlement.claimed(E, env.edgeA)).to.equal(true);
      expect((await env.settlement.epochFunds(E)).claimed).to.equal(ra);
      expect((await env.staking.totals()).rewardReserve).to.equal(emission - ra);
    });

    it("a claim before the epoch is final reverts", async () => {
      const env = await conn.networkHelpers.loadFixture(afterEpochFixture);
      const s = await submitTree(env, E, defaultResults(env));
      const finalAt = (await env.settlement.epochRecord(E)).finalAt;
      await expect(env.settlement.claimMany(s.attestation, [s.claimOf(env.edgeA)]))
        .to.be.revertedWithCustomError(env.settlement, "SettlementNotFinal")
        .withArgs(E, State.Pending, finalAt);
    });
  });

  describe("equivocation by a retired or stale key", () => {
    const NO_QUORUM = "0x";
    type Env = Awaited<ReturnType<typeof finalFixture>>;
    /** Rotates verifier `index + 1`'s key (keys[index]) to a fresh one; returns the retired key. */
    async function rotate(env: Env, index: number) {
      const operator = env.operators[index];
      const fresh = conn.ethers.Wallet.createRandom();
      const claim = await fresh.signTypedData(env.domain, VERIFIER_KEY_CLAIM_TYPES, {
        operator: operator.address,
        signingKey: fresh.address,
      });
      await env.verifierSet.connect(operator).rotateSigningKey(BigInt(index + 1), fresh.address, claim);
      return env.keys[index];
    }
    async function signBoth(key: BaseWallet, env: Env, a: Attestation, b: Attestation) {
      return {
        signatureA: await key.signTypedData(env.domain, EPOCH_ATTESTATION_TYPES, a),
        signatureB: await key.signTypedData(env.domain, EPOCH_ATTESTATION_TYPES, b),
      };
    }

    it("a key leaked after its rotation cannot fabricate equivocation about a later epoch", async () => {
      const env = await conn.networkHelpers.loadFixture(finalFixture);
      // Verifier 4 rotates (its old key leaked) in epoch E + 1; epoch E + 1 is then settled by the others.
      const leaked = await rotate(env, 3);
      const retiredAt = BigInt(await conn.networkHelpers.time.latest());
      await goToEpoch(conn, env.staking, E + 2n);
      const recorded = await submitTree(env, E + 1n, defaultResults(env), 3);
      const fake = { ...recorded.attestation, root: OTHER_ROOT };
      const sigs = await signBoth(leaked, env, recorded.attestation, fake);
      const bond = (await env.verifierSet.verifier(4n)).bond;
      await expect(commitAndReport(env, env.bob, { a: recorded.attestation, b: fake, ...sigs, quorumSignatures: NO_QUORUM }))
        .to.be.revertedWithCustomError(env.settlement, "SettlementKeyRetired")
        .withArgs(leaked.address, E + 1n, retiredAt);
      expect((await env.verifierSet.verifier(4n)).bond).to.equal(bond);
    });

    it("the same key stays slashable for an epoch that ended while it was live", async () => {
      const env = await conn.networkHelpers.loadFixture(finalFixture);
      const old = await rotate(env, 3);
      const fake = { ...env.settled.attestation, root: OTHER_ROOT };
      const sigs = await signBoth(old, env, env.settled.attestation, fake);
      await expect(commitAndReport(env, env.bob, { a: env.settled.attestation, b: fake, ...sigs, quorumSignatures: NO_QUORUM })).to.emit(
        env.settlement,
        "EquivocationReported",
      );
      expect((await env.verifierSet.verifier(4n)).status).to.equal(5n); // Ejected
    });

    it("an equivocation about an epoch past the window is refused", async () => {
      const env = await conn.networkHelpers.loadFixture(finalFixture);
      const fake = { ...env.settled.attestation, root: OTHER_ROOT };
      const sigs = await signBoth(env.keys[3], env, env.settled.attestation, fake);
      const proof = { a: env.settled.attestation, b: fake, ...sigs, quorumSignatures: NO_QUORUM };
      await goToEpoch(conn, env.staking, E + CREDIT_WINDOW + 1n);
      await expect(commitAndReport(env, env.admin, proof))
        .to.be.revertedWithCustomError(env.settlement, "SettlementEquivocationTooOld")
        .withArgs(E, E + CREDIT_WINDOW + 1n);
      // At the window's last epoch it is still accepted.
      const env2 = await conn.networkHelpers.loadFixture(finalFixture);
      await goToEpoch(conn, env2.staking, E + CREDIT_WINDOW);
      await expect(commitAndReport(env2, env2.admin, proof)).to.emit(env2.settlement, "EquivocationReported");
    });

    it("two signed attestations, neither recorded nor quorum-signed, are no proof", async () => {
      const env = await conn.networkHelpers.loadFixture(finalFixture);
      await goToEpoch(conn, env.staking, E + 2n);
      // Nothing was submitted for E + 1: both attestations are the key's alone.
      const a = { epoch: E + 1n, root: keccak256("0x02"), totalWeight: 1n };
      const b = { epoch: E + 1n, root: OTHER_ROOT, totalWeight: 1n };
      const sigs = await signBoth(env.keys[3], env, a, b);
      await expect(commitAndReport(env, env.admin, { a, b, ...sigs, quorumSignatures: NO_QUORUM }))
        .to.be.revertedWithCustomError(env.verifierSet, "VerifierSetBelowQuorum")
        .withArgs(0n, MAJORITY);
      // With a quorum's signatures over one of them, it is.
      const quorumSignatures = await sign(env, env.keys.slice(0, 3), a);
      await expect(commitAndReport(env, env.admin, { a, b, ...sigs, quorumSignatures }))
        .to.emit(env.settlement, "EquivocationReported")
        .withArgs(E + 1n, env.keys[3].address, env.admin.address, anyValue);
    });
  });

  describe("frozen epochs", () => {
    const GUARDIAN_DELAY = 6n * 3_600n; // the deployment's default

    /** E submitted in E + 1 by verifiers 0-2; a conflicting attestation by 2-4 froze it. Verifier 2 signed both. */
    async function frozenFixture() {
      const env = await deploySettlementBase(conn);
      await goToEpoch(conn, env.staking, E + 1n);
      const settled = await submitTree(env, E, defaultResults(env));
      const fake = { epoch: E, root: OTHER_ROOT, totalWeight: settled.totalWeight };
      const fakeSignatures = await sign(env, env.keys.slice(2, 5), fake);
      await env.settlement.submitEpoch(fake, fakeSignatures);
      const frozenAt = BigInt(await conn.networkHelpers.time.latest());
      return { ...env, settled, fake, fakeSignatures, frozenAt };
    }

    it("two colluding verifiers of five cannot freeze an epoch: a quorum is a majority, not the configured 2", async () => {
      const env = await conn.networkHelpers.loadFixture(afterEpochFixture);
      expect((await env.verifierSet.parameters()).quorum).to.equal(QUORUM);
      const s = await submitTree(env, E, defaultResults(env));
      // Verifiers 3 and 4 sign another root; no one of the honest three signed it.
      const fake = { epoch: E, root: OTHER_ROOT, totalWeight: s.totalWeight };
      await expect(env.settlement.submitEpoch(fake, await sign(env, env.keys.slice(3, 5), fake)))
        .to.be.revertedWithCustomError(env.verifierSet, "VerifierSetBelowQuorum")
        .withArgs(2n, MAJORITY);
      expect((await env.settlement.epochRecord(E)).state).to.equal(State.Pending);
    });

    it("a freeze always names an equivocator, slashed with the two submitted signatures", async () => {
      const env = await conn.networkHelpers.loadFixture(frozenFixture);
      expect((await env.settlement.epochRecord(E)).state).to.equal(State.Frozen);
      // Both quorums are majorities of the same five: they share verifier 2 (keys[2]).
      const shared = env.keys[2];
      const split = (packed: string, signer: string, signers: { address: string }[]) => {
        const order = signers.map((k) => k.address).sort((x, y) => (BigInt(x) < BigInt(y) ? -1 : 1));
        const i = order.indexOf(signer);
        return `0x${packed.slice(2 + i * 130, 2 + (i + 1) * 130)}`;
      };
      const proof = {
        a: env.settled.attestation,
        signatureA: split(env.settled.signatures, shared.address, env.keys.slice(0, 3)),
        b: env.fake,
        signatureB: split(env.fakeSignatures, shared.address, env.keys.slice(2, 5)),
        quorumSignatures: "0x",
      };
      await expect(commitAndReport(env, env.bob, proof))
        .to.emit(env.settlement, "EquivocationReported")
        .withArgs(E, shared.address, env.bob.address, anyValue);
      expect((await env.verifierSet.verifier(3n)).status).to.equal(5n); // Ejected
    });

    it("a frozen epoch resolved long after its end pays for rewardCreditWindow epochs from the resolution", async () => {
      const env = await conn.networkHelpers.loadFixture(frozenFixture);
      // Governance takes ten epochs; the credit window (3) counted from E's end closed long ago.
      const resolvedIn = E + 10n;
      await goToEpoch(conn, env.staking, resolvedIn);
      await env.settlement.resolveEpoch(E, env.settled.root, env.settled.totalWeight);
      expect(await env.settlement.claimsOpen(E)).to.equal(true);
      const { emission } = await expectedFunding(env, E);
      const [ra, rb] = defaultResults(env).map((r) => rewardOf(emission, r, env.settled.totalWeight));
      // A late reward goes to the stake earning now, as the last ended epoch's.
      const tx = env.settlement.claim(env.settled.attestation, env.settled.claimOf(env.edgeA));
      await expect(tx).to.emit(env.settlement, "RewardClaimed").withArgs(E, env.edgeA, ra, ra);
      await expect(tx)
        .to.emit(env.staking, "RewardCredited")
        .withArgs(env.edgeA, resolvedIn - 1n, ra, anyValue);
      // Still open in the window's last epoch ...
      await goToEpoch(conn, env.staking, resolvedIn + CREDIT_WINDOW - 1n);
      await expect(env.settlement.claim(env.settled.attestation, env.settled.claimOf(env.edgeB)))
        .to.emit(env.settlement, "RewardClaimed")
        .withArgs(E, env.edgeB, rb, rb);
      expect((await env.settlement.epochFunds(E)).claimed).to.equal(ra + rb);
      // ... and closed after it.
      await goToEpoch(conn, env.staking, resolvedIn + CREDIT_WINDOW);
      expect(await env.settlement.claimsOpen(E)).to.equal(false);
    });

    it("a late claim is declined for a pool jailed in the epoch", async () => {
      const env = await conn.networkHelpers.loadFixture(frozenFixture);
      const fault = { edgeId: env.edgeB, epoch: E, kind: 2, evidenceHash: OTHER_ROOT, reporter: env.admin.address };
      await env.settlement.reportFault(fault, await signFault(env.domain, env.keys.slice(0, 3), fault));
      await goToEpoch(conn, env.staking, E + 6n);
      await env.settlement.resolveEpoch(E, env.settled.root, env.settled.totalWeight);
      const { emission } = await expectedFunding(env, E);
      const rb = rewardOf(emission, defaultResults(env)[1], env.settled.totalWeight);
      const tx = env.settlement.claim(env.settled.attestation, env.settled.claimOf(env.edgeB));
      await expect(tx).to.emit(env.settlement, "RewardClaimed").withArgs(E, env.edgeB, rb, 0n);
      await expect(tx).to.not.emit(env.staking, "RewardCredited");
      expect((await env.staking.totals()).rewardReserve).to.equal(emission);
    });

    it("fundEpoch refuses an epoch whose claims have closed: no emission is minted into a reserve nothing can spend", async () => {
      const env = await conn.networkHelpers.loadFixture(finalFixture);
      await goToEpoch(conn, env.staking, E + CREDIT_WINDOW + 1n);
      const supply = await env.token.totalSupply();
      expect(await env.settlement.previewEmission(E)).to.equal(0n);
      await expect(env.settlement.fundEpoch(E))
        .to.be.revertedWithCustomError(env.settlement, "SettlementClaimsClosed")
        .withArgs(E, E + CREDIT_WINDOW + 1n);
      expect(await env.token.totalSupply()).to.equal(supply);
    });

    it("a guardian appointed by governance resolves a frozen epoch after guardianDelay, not before", async () => {
      const env = await conn.networkHelpers.loadFixture(frozenFixture);
      const role = await env.settlement.GUARDIAN_ROLE();
      // Only governance appoints: the guardian role's admin is GOVERNANCE_ROLE.
      expect(await env.settlement.getRoleAdmin(role)).to.equal(await env.settlement.GOVERNANCE_ROLE());
      await expect(env.settlement.connect(env.outsider).grantRole(role, env.outsider.address)).to.be.revertedWithCustomError(
        env.settlement,
        "AccessControlUnauthorizedAccount",
      );
      await env.settlement.grantRole(role, env.carol.address);
      const guardian = env.settlement.connect(env.carol);
      const allowedAt = env.frozenAt + GUARDIAN_DELAY;
      await conn.networkHelpers.time.setNextBlockTimestamp(allowedAt - 1n);
      await expect(guardian.resolveEpoch(E, env.settled.root, env.settled.totalWeight))
        .to.be.revertedWithCustomError(env.settlement, "SettlementGuardianDelay")
        .withArgs(E, allowedAt);
      await conn.networkHelpers.time.setNextBlockTimestamp(allowedAt);
      await expect(guardian.resolveEpoch(E, env.settled.root, env.settled.totalWeight))
        .to.emit(env.settlement, "EpochResolved")
        .withArgs(E, env.settled.root, env.settled.totalWeight);
      // Governance replaces the guardian: the old one can no longer act.
      await env.settlement.revokeRole(role, env.carol.address);
      expect(await env.settlement.hasRole(role, env.carol.address)).to.equal(false);
    });

    it("a guardian cannot resolve an epoch that is not frozen", async () => {
      const env = await conn.networkHelpers.loadFixture(finalFixture);
      await env.settlement.grantRole(await env.settlement.GUARDIAN_ROLE(), env.carol.address);
      await expect(env.settlement.connect(env.carol).resolveEpoch(E, OTHER_ROOT, 1n))
        .to.be.revertedWithCustomError(env.settlement, "SettlementNotFrozen")
        .withArgs(E, State.Pending);
    });
  });

  describe("reporter front-running", () => {
    it("a copied fault report pays the reporter the quorum signed, not the copier", async () => {
      const env = await conn.networkHelpers.loadFixture(finalFixture);
      // The verifiers sign Carol as the reporter; Bob sees her transaction and sends it first.
      const fault = { edgeId: env.edgeB, epoch: E, kind: 0, evidenceHash: OTHER_ROOT, reporter: env.carol.address };
      const sigs = await signFault(env.domain, env.keys.slice(0, 3), fault);
      const slashed = await env.settlement.connect(env.bob).reportFault.staticCall(fault, sigs);
      const reward = slashed - (slashed * BURN_BPS) / 10_000n;
      const tx = env.settlement.connect(env.bob).reportFault(fault, sigs);
      await expect(tx).to.emit(env.settlement, "FaultReported").withArgs(env.edgeB, E, 0n, OTHER_ROOT, env.carol.address, slashed);
      await expect(tx).to.changeTokenBalances(conn.ethers, env.token, [env.carol, env.bob], [reward, 0n]);
    });

    /** keys[3] signs the recorded attestation and a conflicting one: an equivocation proof without quorum signatures. */
    async function equivocationBy(env: Awaited<ReturnType<typeof finalFixture>>) {
      const key = env.keys[3];
      const a = env.settled.attestation;
      const b = { ...a, root: OTHER_ROOT };
      const proof = {
        a,
        signatureA: await key.signTypedData(env.domain, EPOCH_ATTESTATION_TYPES, a),
        b,
        signatureB: await key.signTypedData(env.domain, EPOCH_ATTESTATION_TYPES, b),
        quorumSignatures: "0x",
      };
      return { key, proof };
    }

    it("a fault's signatures do not count for another reporter", async () => {
      const env = await conn.networkHelpers.loadFixture(finalFixture);
      const fault = { edgeId: env.edgeB, epoch: E, kind: 0, evidenceHash: OTHER_ROOT, reporter: env.carol.address };
      const sigs = await signFault(env.domain, env.keys.slice(0, 3), fault);
      const stolen = { ...fault, reporter: env.bob.address };
      await expect(env.settlement.connect(env.bob).reportFault(stolen, sigs)).to.be.revertedWithCustomError(
        env.verifierSet,
        "VerifierSetNotActiveVerifier",
      );
      expect(await env.settlement.faultReported(env.edgeB, E)).to.equal(false);
    });

    it("a copy of an equivocation reveal sent ahead of it matches no commitment; the committed reporter is paid", async () => {
      const env = await conn.networkHelpers.loadFixture(finalFixture);
      const { key, proof } = await equivocationBy(env);
      const salt = keccak256("0x5a17");
      const commitment = await env.settlement.equivocationCommitment(env.carol.address, proof, salt);
      await expect(env.settlement.connect(env.carol).commitEquivocation(commitment))
        .to.emit(env.settlement, "EquivocationCommitted")
        .withArgs(commitment, env.carol.address);
      const committedIn = await env.settlement.equivocationCommittedIn(commitment);
      // Committing the same again changes nothing: the first block stands.
      await expect(env.settlement.connect(env.carol).commitEquivocation(commitment)).to.not.emit(env.settlement, "EquivocationCommitted");
      expect(await env.settlement.equivocationCommittedIn(commitment)).to.equal(committedIn);
      // Bob copies Carol's reveal (proof and salt) and sends it first: his address is not hers.
      const bobs = await env.settlement.equivocationCommitment(env.bob.address, proof, salt);
      await expect(env.settlement.connect(env.bob).reportEquivocation(proof, salt))
        .to.be.revertedWithCustomError(env.settlement, "SettlementNotCommitted")
        .withArgs(bobs, 0n);
      await expect(env.settlement.connect(env.carol).reportEquivocation(proof, salt))
        .to.emit(env.settlement, "EquivocationReported")
        .withArgs(E, key.address, env.carol.address, anyValue);
    });

    it("an equivocation reveal in its commitment's own block is refused", async () => {
      const env = await conn.networkHelpers.loadFixture(finalFixture);
      const { proof } = await equivocationBy(env);
      const salt = keccak256("0x5a17");
      const commitment = await env.settlement.equivocationCommitment(env.bob.address, proof, salt);
      // Both in one block: seen in the mempool and copied, a commit-and-reveal pair would win.
      await conn.ethers.provider.send("evm_setAutomine", [false]);
      try {
        await env.settlement.connect(env.bob).commitEquivocation(commitment);
        const reveal = await env.settlement.connect(env.bob).reportEquivocation(proof, salt, { gasLimit: 1_000_000n });
        await conn.networkHelpers.mine();
        const receipt = await conn.ethers.provider.getTransactionReceipt(reveal.hash);
        expect(receipt!.status).to.equal(0);
      } finally {
        await conn.ethers.provider.send("evm_setAutomine", [true]);
      }
      expect(await env.settlement.equivocationCommittedIn(commitment)).to.equal(BigInt(await conn.ethers.provider.getBlockNumber()));
      await expect(env.settlement.connect(env.bob).reportEquivocation(proof, salt)).to.emit(env.settlement, "EquivocationReported");
    });
  });

  describe("stale faults", () => {
    it("a fault older than maxFaultAge is refused, and stake that joined after it is not slashed", async () => {
      const env = await conn.networkHelpers.loadFixture(baseFixture);
      await goToEpoch(conn, env.staking, E + 1n);
      // Bob joins edge A after its faulty epoch E.
      const bobStake = 10_000n * TOKEN;
      await env.staking.connect(env.bob).delegate(env.edgeA, bobStake);
      const late = E + MAX_FAULT_AGE + 1n;
      await goToEpoch(conn, env.staking, late);
      const fault = { edgeId: env.edgeA, epoch: E, kind: 0, evidenceHash: OTHER_ROOT, reporter: env.admin.address };
      const sigs = await signFault(env.domain, env.keys.slice(0, 3), fault);
      const before = await env.staking.edgeStake(env.edgeA);
      await expect(env.settlement.reportFault(fault, sigs))
        .to.be.revertedWithCustomError(env.settlement, "SettlementFaultTooOld")
        .withArgs(E, late, MAX_FAULT_AGE);
      expect((await env.staking.edgeStake(env.edgeA)).active).to.equal(before.active);
      const bob = await env.staking.position(env.edgeA, env.bob.address);
      expect(bob.earning + bob.warmingUp).to.equal(bobStake);
      expect(await env.staking.jailedInEpoch(env.edgeA, E)).to.equal(false);
    });

    it("a fault at the age limit is reported, and the jail ends jailPeriod after the report", async () => {
      const env = await conn.networkHelpers.loadFixture(baseFixture);
      await goToEpoch(conn, env.staking, E + MAX_FAULT_AGE);
      const fault = { edgeId: env.edgeA, epoch: E, kind: 0, evidenceHash: OTHER_ROOT, reporter: env.admin.address };
      const sigs = await signFault(env.domain, env.keys.slice(0, 3), fault);
      const at = BigInt(await conn.networkHelpers.time.latest()) + 5n;
      await conn.networkHelpers.time.setNextBlockTimestamp(at);
      await expect(env.settlement.reportFault(fault, sigs))
        .to.emit(env.staking, "Jailed")
        .withArgs(env.edgeA, E, at + JAIL_PERIOD);
      // Rewards are declined from the fault's epoch on, and not before it.
      expect(await env.staking.jailedInEpoch(env.edgeA, E - 1n)).to.equal(false);
      expect(await env.staking.jailedInEpoch(env.edgeA, E)).to.equal(true);
      await conn.networkHelpers.time.setNextBlockTimestamp(at + JAIL_PERIOD - 1n);
      await expect(env.staking.connect(env.operator).unjail(env.edgeA))
        .to.be.revertedWithCustomError(env.staking, "StakingJailPeriodNotOver")
        .withArgs(env.edgeA, at + JAIL_PERIOD);
      // From then on only the slashed self-bond stands in the way.
      await conn.networkHelpers.time.setNextBlockTimestamp(at + JAIL_PERIOD);
      await expect(env.staking.connect(env.operator).unjail(env.edgeA)).to.be.revertedWithCustomError(
        env.staking,
        "StakingSelfBondBelowMinimum",
      );
    });

    it("a shortened unbonding delay caps the age below the configured maximum", async () => {
      const env = await conn.networkHelpers.loadFixture(baseFixture);
      // One epoch of unbonding: a fault two epochs old is refused although maxFaultAge is 2.
      await env.staking.setUnbondingDelay(EPOCH);
      expect(await env.settlement.maxFaultAgeLimit()).to.equal(1n);
      await goToEpoch(conn, env.staking, E + 2n);
      const fault = { edgeId: env.edgeA, epoch: E, kind: 0, evidenceHash: OTHER_ROOT, reporter: env.admin.address };
      await expect(env.settlement.reportFault(fault, await signFault(env.domain, env.keys.slice(0, 3), fault)))
        .to.be.revertedWithCustomError(env.settlement, "SettlementFaultTooOld")
        .withArgs(E, E + 2n, 1n);
    });
  });

  describe("over-weighted trees", () => {
    it("weights beyond the attested total cannot pay more than the emission", async () => {
      const env = await conn.networkHelpers.loadFixture(afterEpochFixture);
      const results = defaultResults(env);
      const tree = buildTree(E, results);
      // The attested total counts edge A only: its leaf alone is worth the whole emission.
      const lie = results[0].stake * results[0].quality;
      const a = { epoch: E, root: tree.root, totalWeight: lie };
      await env.settlement.submitEpoch(a, await sign(env, env.keys.slice(0, 3), a));
      await conn.networkHelpers.time.increase(DISPUTE_WINDOW);
      const { emission } = await expectedFunding(env, E);
      const rewardB = rewardOf(emission, results[1], lie);
      expect(rewardB).to.equal(emission / 4n);
      // In one batch: A takes everything, B exceeds what is left (0).
      await expect(env.settlement.claimMany(a, [tree.claimOf(env.edgeA), tree.claimOf(env.edgeB)]))
        .to.be.revertedWithCustomError(env.settlement, "SettlementEmissionExceeded")
        .withArgs(E, rewardB, 0n);
      // One by one: the same.
      await expect(env.settlement.claim(a, tree.claimOf(env.edgeA)))
        .to.emit(env.settlement, "RewardClaimed")
        .withArgs(E, env.edgeA, emission, emission);
      await expect(env.settlement.claim(a, tree.claimOf(env.edgeB)))
        .to.be.revertedWithCustomError(env.settlement, "SettlementEmissionExceeded")
        .withArgs(E, rewardB, 0n);
      const funds = await env.settlement.epochFunds(E);
      expect(funds.claimed).to.equal(funds.emission);
    });

    it("a single leaf heavier than the total is refused outright", async () => {
      const env = await conn.networkHelpers.loadFixture(afterEpochFixture);
      const results = defaultResults(env);
      const tree = buildTree(E, results);
      const a = { epoch: E, root: tree.root, totalWeight: 1n };
      await env.settlement.submitEpoch(a, await sign(env, env.keys.slice(0, 3), a));
      await conn.networkHelpers.time.increase(DISPUTE_WINDOW);
      const { emission } = await expectedFunding(env, E);
      await expect(env.settlement.claim(a, tree.claimOf(env.edgeB)))
        .to.be.revertedWithCustomError(env.settlement, "SettlementEmissionExceeded")
        .withArgs(E, emission * results[1].stake * results[1].quality, emission);
    });
  });

  describe("reward sniping", () => {
    it("stake delegated during E earns nothing of E's reward; the earlier holders get it all", async () => {
      const env = await conn.networkHelpers.loadFixture(baseFixture);
      await goToEpoch(conn, env.staking, E);
      // Bob joins edge A in epoch E with a large stake.
      await env.staking.connect(env.bob).delegate(env.edgeA, 100_000n * TOKEN);
      await goToEpoch(conn, env.staking, E + 1n);
      const s = await submitTree(env, E, defaultResults(env));
      await conn.networkHelpers.time.increase(DISPUTE_WINDOW);
      // Claim as late as allowed, when the most time has passed since Bob joined.
      await goToEpoch(conn, env.staking, E + CREDIT_WINDOW);
      const { emission } = await expectedFunding(env, E);
      const reward = rewardOf(emission, defaultResults(env)[0], s.totalWeight);
      await env.settlement.claim(s.attestation, s.claimOf(env.edgeA));
      const bob = await env.staking.position(env.edgeA, env.bob.address);
      const op = await env.staking.position(env.edgeA, env.operator.address);
      const alice = await env.staking.position(env.edgeA, env.alice.address);
      expect(bob.rewards).to.equal(0n);
      expect(bob.warmingUp).to.equal(100_000n * TOKEN);
      // Operator (commission + its share) and Alice take the reward, less at most a wei of dust each.
      expect(reward - (op.rewards + alice.rewards) <= 2n).to.equal(true);
      expect(op.rewards + alice.rewards <= reward).to.equal(true);
      // Alice's part is still 3/4 of the net: Bob's stake did not dilute it.
      expect(alice.rewards).to.equal(
        (ALICE_STAKE * ((((reward * 9_000n) / 10_000n) * 10n ** 27n) / (MIN_SELF_BOND + ALICE_STAKE))) / 10n ** 27n,
      );
    });
  });

  describe("slashing escape", () => {
    it("unbonding during the faulty epoch does not escape the slash, and the epoch's reward is declined", async () => {
      const env = await conn.networkHelpers.loadFixture(baseFixture);
      await env.settlement.setFaultSlashBps(0, 3_000n);
      await goToEpoch(conn, env.staking, E);
      // Alice sees trouble coming in E and unbonds everything.
      await env.staking.connect(env.alice).unbond(env.edgeA, conn.ethers.MaxUint256);
      const before = await env.staking.unbonding(env.edgeA, env.alice.address, 0n);
      expect(before.amount).to.equal(ALICE_STAKE);
      await goToEpoch(conn, env.staking, E + 1n);
      const fault = { edgeId: env.edgeA, epoch: E, kind: 0, evidenceHash: OTHER_ROOT, reporter: env.admin.address };
      // total = 30% of (1,000 pool + 3,000 unbonding) = 1,200; the operator's first loss is half
      // its 1,000 self-bond = 500; the other 700 split pro rata over the 500 left in the pool and
      // the 3,000 unbonding: 100 and 600.
      await expect(env.settlement.reportFault(fault, await signFault(env.domain, env.keys.slice(0, 3), fault)))
        .to.emit(env.staking, "SlashDistributed")
        .withArgs(env.edgeA, 500n * TOKEN, 100n * TOKEN, 600n * TOKEN);
      const after = await env.staking.unbonding(env.edgeA, env.alice.address, 0n);
      expect(after.amount <= 2_400n * TOKEN).to.equal(true);
      expect(2_400n * TOKEN - after.amount <= 1n).to.equal(true);
      // E's results, submitted as the verifiers saw them: the edge's reward is declined.
      const s = await submitTree(env, E, defaultResults(env));
      await conn.networkHelpers.time.increase(DISPUTE_WINDOW);
      const { emission } = await expectedFunding(env, E);
      const reward = rewardOf(emission, defaultResults(env)[0], s.totalWeight);
      const tx = env.settlement.claim(s.attestation, s.claimOf(env.edgeA));
      await expect(tx).to.emit(env.staking, "RewardDeclined").withArgs(env.edgeA, E, reward, 0n);
      await expect(tx).to.emit(env.settlement, "RewardClaimed").withArgs(E, env.edgeA, reward, 0n);
      expect((await env.staking.position(env.edgeA, env.alice.address)).rewards).to.equal(0n);
      expect((await env.staking.position(env.edgeA, env.operator.address)).rewards).to.equal(0n);
    });
  });

  describe("rounding", () => {
    it("awkward weights: Σ rewards ≤ emission and the dust stays in the reserve", async () => {
      const env = await conn.networkHelpers.loadFixture(baseFixture);
      // Edge 3 does not exist: its credit is declined (no earning stake) but still counted.
      const results = [
        { edgeId: env.edgeA, stake: 7n, quality: 333_333n },
        { edgeId: env.edgeB, stake: 11n, quality: 777_777n },
        { edgeId: 3n, stake: 13n, quality: QUALITY_ONE - 1n },
      ];
      const s = await settleFinal(conn, env, E, results);
      const { emission } = await expectedFunding(env, E);
      const rewards = results.map((r) => rewardOf(emission, r, s.totalWeight));
      const sum = rewards.reduce((x, y) => x + y, 0n);
      const dust = emission - sum;
      // The numbers are chosen so that rounding does leave dust, less than one wei per leaf.
      expect(dust > 0n && dust < 3n).to.equal(true);
      const credited = await env.settlement.claimMany.staticCall(
        s.attestation,
        results.map((r) => s.claimOf(r.edgeId)),
      );
      expect(credited).to.equal(rewards[0] + rewards[1]);
      await env.settlement.claimMany(
        s.attestation,
        results.map((r) => s.claimOf(r.edgeId)),
      );
      const funds = await env.settlement.epochFunds(E);
      expect(funds.claimed).to.equal(sum);
      expect(funds.emission - funds.claimed).to.equal(dust);
      // Declined share and dust both stay in the staking reward reserve.
      expect((await env.staking.totals()).rewardReserve).to.equal(emission - rewards[0] - rewards[1]);
    });
  });
});
