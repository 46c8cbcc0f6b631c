import { expect } from "chai";
import { AbiCoder, keccak256, TypedDataEncoder, ZeroHash } from "ethers";
import { StandardMerkleTree } from "@openzeppelin/merkle-tree";

import {
  connect,
  type Connection,
  CREDIT_WINDOW,
  DISPUTE_WINDOW,
  EPOCH,
  goToEpoch,
  MAX_SLASH_BPS,
  BURN_BPS,
  MIN_SELF_BOND,
  TOKEN,
  UNBONDING_DELAY,
} from "../../helpers/protocol.ts";
import { buildTree, EPOCH_ATTESTATION_TYPES, FAULT_ATTESTATION_TYPES, QUALITY_ONE, RATE_ONE, signFault } from "../../helpers/settlement.ts";
import {
  ACC_SCALE,
  ALICE_STAKE,
  BPS,
  COMMISSION_BPS,
  defaultResults,
  deploySettlementBase,
  E,
  EDGE_B_BOND,
  commitAndReport,
  expectedFunding,
  MAX_FAULT_AGE,
  MAX_INFLATION,
  Param,
  rewardOf,
  settleFinal,
  sign,
  State,
  submitTree,
} from "../../helpers/epochSettlement.ts";

const coder = AbiCoder.defaultAbiCoder();
const commitment = (root: string, totalWeight: bigint) =>
  BigInt(keccak256(coder.encode(["bytes32", "uint256"], [root, totalWeight]))) & ((1n << 208n) - 1n);
const OTHER_ROOT = keccak256("0x01");

describe("EpochSettlement", () => {
  let conn: Connection;
  before(async () => {
    conn = await connect();
  });

  async function baseFixture() {
    return deploySettlementBase(conn);
  }
  /** Epoch E submitted (Pending) in epoch E + 1, not yet final. */
  async function submittedFixture() {
    const env = await deploySettlementBase(conn);
    await goToEpoch(conn, env.staking, E + 1n);
    const settled = await submitTree(env, E, defaultResults(env));
    return { ...env, settled };
  }
  /** Epoch E final (dispute window passed), not funded. */
  async function finalFixture() {
    const env = await deploySettlementBase(conn);
    const settled = await settleFinal(conn, env, E, defaultResults(env));
    return { ...env, settled };
  }

  describe("constructor", () => {
    it("reverts SettlementZeroAddress for a zero token, staking contract, verifier set or admin", async () => {
      const env = await conn.networkHelpers.loadFixture(baseFixture);
      const zero = conn.ethers.ZeroAddress;
      const real = [await env.token.getAddress(), await env.staking.getAddress(), await env.verifierSet.getAddress(), env.admin.address];
      const p = await env.settlement.parameters();
      const params = {
        disputeWindow: p.disputeWindow,
        minInflation: p.minInflation,
        maxInflation: p.maxInflation,
        inflationStep: p.inflationStep,
        targetBondingRate: p.targetBondingRate,
        maxFaultAge: p.maxFaultAge,
        guardianDelay: p.guardianDelay,
      };
      const [rate] = await env.settlement.inflation();
      const factory = await conn.ethers.getContractFactory("EpochSettlement");
      for (let i = 0; i < real.length; i++) {
        const args = real.map((a, j) => (j === i ? zero : a));
        await expect(
          factory.deploy(args[0], args[1], args[2], args[3], params, rate, [1_000n, 200n, 100n, 1_000n]),
        ).to.be.revertedWithCustomError(env.settlement, "SettlementZeroAddress");
      }
      // The same arguments with nothing zeroed deploy.
      const deployed = await factory.deploy(real[0], real[1], real[2], real[3], params, rate, [1_000n, 200n, 100n, 1_000n]);
      expect(await deployed.verifiers()).to.equal(real[2]);
    });
  });

  describe("submitEpoch", () => {
    it("reverts for the current epoch (not ended)", async () => {
      const env = await conn.networkHelpers.loadFixture(baseFixture);
      await goToEpoch(conn, env.staking, E);
      const a = { epoch: E, root: OTHER_ROOT, totalWeight: 1n };
      await expect(env.settlement.submitEpoch(a, await sign(env, env.keys.slice(0, 3), a)))
        .to.be.revertedWithCustomError(env.settlement, "SettlementEpochNotEnded")
        .withArgs(E, E);
    });

    it("reverts for a zero root and for a zero total weight", async () => {
      const env = await conn.networkHelpers.loadFixture(baseFixture);
      await goToEpoch(conn, env.staking, E + 1n);
      const zeroRoot = { epoch: E, root: ZeroHash, totalWeight: 1n };
      await expect(env.settlement.submitEpoch(zeroRoot, await sign(env, env.keys.slice(0, 3), zeroRoot))).to.be.revertedWithCustomError(
        env.settlement,
        "SettlementZeroRoot",
      );
      const zeroWeight = { epoch: E, root: OTHER_ROOT, totalWeight: 0n };
      await expect(env.settlement.submitEpoch(zeroWeight, await sign(env, env.keys.slice(0, 3), zeroWeight))).to.be.revertedWithCustomError(
        env.settlement,
        "SettlementZeroWeight",
      );
    });

    it("reverts below quorum with the verifier set's error", async () => {
      const env = await conn.networkHelpers.loadFixture(baseFixture);
      await goToEpoch(conn, env.staking, E + 1n);
      const a = { epoch: E, root: OTHER_ROOT, totalWeight: 1n };
      await expect(env.settlement.submitEpoch(a, await sign(env, env.keys.slice(0, 1), a)))
        .to.be.revertedWithCustomError(env.verifierSet, "VerifierSetBelowQuorum")
        .withArgs(1n, 3n);
      expect((await env.settlement.epochRecord(E)).state).to.equal(State.None);
    });

    it("records a Pending epoch that becomes final exactly disputeWindow seconds later", async () => {
      const env = await conn.networkHelpers.loadFixture(baseFixture);
      await goToEpoch(conn, env.staking, E + 1n);
      const t = buildTree(E, defaultResults(env));
      const a = { epoch: E, root: t.root, totalWeight: t.totalWeight };
      const sigs = await sign(env, env.keys, a);
      const at = BigInt(await conn.networkHelpers.time.latest()) + 10n;
      await conn.networkHelpers.time.setNextBlockTimestamp(at);
      await expect(env.settlement.submitEpoch(a, sigs))
        .to.emit(env.settlement, "EpochSubmitted")
        .withArgs(E, t.root, t.totalWeight, at + DISPUTE_WINDOW);
      const record = await env.settlement.epochRecord(E);
      expect(record.state).to.equal(State.Pending);
      expect(record.finalAt).to.equal(at + DISPUTE_WINDOW);
      expect(record.commitment).to.equal(commitment(t.root, t.totalWeight));
      expect(await env.settlement.isFinal(E)).to.equal(false);
      expect(await env.settlement.previewEmission(E)).to.equal(0n);
      // One second before finality funding is refused; at finalAt it goes through.
      await conn.networkHelpers.time.setNextBlockTimestamp(at + DISPUTE_WINDOW - 1n);
      await expect(env.settlement.fundEpoch(E))
        .to.be.revertedWithCustomError(env.settlement, "SettlementNotFinal")
        .withArgs(E, State.Pending, at + DISPUTE_WINDOW);
      await conn.networkHelpers.time.setNextBlockTimestamp(at + DISPUTE_WINDOW);
      await expect(env.settlement.fundEpoch(E)).to.emit(env.settlement, "EpochFunded");
      expect(await env.settlement.isFinal(E)).to.equal(true);
    });

    it("reverts SettlementAlreadySubmitted when the same attestation is relayed again", async () => {
      const env = await conn.networkHelpers.loadFixture(submittedFixture);
      // Even with other signers: the content is what counts.
      const sigs = await sign(env, env.keys.slice(2, 5), env.settled.attestation);
      await expect(env.settlement.submitEpoch(env.settled.attestation, sigs))
        .to.be.revertedWithCustomError(env.settlement, "SettlementAlreadySubmitted")
        .withArgs(E);
    });

    it("freezes the epoch on a different quorum-signed attestation before it is final", async () => {
      const env = await conn.networkHelpers.loadFixture(submittedFixture);
      const other = { epoch: E, root: OTHER_ROOT, totalWeight: env.settled.totalWeight };
      await expect(env.settlement.submitEpoch(other, await sign(env, env.keys.slice(1, 4), other)))
        .to.emit(env.settlement, "EpochFrozen")
        .withArgs(E, OTHER_ROOT, env.settled.totalWeight);
      const frozenAt = BigInt(await conn.networkHelpers.time.latest());
      const record = await env.settlement.epochRecord(E);
      expect(record.state).to.equal(State.Frozen);
      // The first commitment stays; `finalAt` now says when the epoch froze.
      expect(record.commitment).to.equal(commitment(env.settled.root, env.settled.totalWeight));
      expect(record.finalAt).to.equal(frozenAt);
      await conn.networkHelpers.time.increase(DISPUTE_WINDOW);
      expect(await env.settlement.isFinal(E)).to.equal(false);
      await expect(env.settlement.claim(env.settled.attestation, env.settled.claimOf(env.edgeA)))
        .to.be.revertedWithCustomError(env.settlement, "SettlementNotFinal")
        .withArgs(E, State.Frozen, frozenAt);
    });

    it("a different attestation with only the total weight changed also freezes", async () => {
      const env = await conn.networkHelpers.loadFixture(submittedFixture);
      const other = { ...env.settled.attestation, totalWeight: env.settled.totalWeight + 1n };
      await expect(env.settlement.submitEpoch(other, await sign(env, env.keys.slice(0, 3), other)))
        .to.emit(env.settlement, "EpochFrozen")
        .withArgs(E, env.settled.root, env.settled.totalWeight + 1n);
    });

    it("a different attestation below quorum does not freeze", async () => {
      const env = await conn.networkHelpers.loadFixture(submittedFixture);
      const other = { epoch: E, root: OTHER_ROOT, totalWeight: 1n };
      await expect(env.settlement.submitEpoch(other, await sign(env, env.keys.slice(0, 1), other)))
        .to.be.revertedWithCustomError(env.verifierSet, "VerifierSetBelowQuorum")
        .withArgs(1n, 3n);
      expect((await env.settlement.epochRecord(E)).state).to.equal(State.Pending);
    });

    it("reverts SettlementNotDisputable after the epoch is final, frozen or resolved", async () => {
      const env = await conn.networkHelpers.loadFixture(submittedFixture);
      const other = { epoch: E, root: OTHER_ROOT, totalWeight: 1n };
      const sigs = await sign(env, env.keys.slice(0, 3), other);
      await conn.networkHelpers.time.increase(DISPUTE_WINDOW);
      await expect(env.settlement.submitEpoch(other, sigs))
        .to.be.revertedWithCustomError(env.settlement, "SettlementNotDisputable")
        .withArgs(E, State.Pending);
      // The same attestation once final is not disputable either (checked before the duplicate).
      await expect(env.settlement.submitEpoch(env.settled.attestation, env.settled.signatures))
        .to.be.revertedWithCustomError(env.settlement, "SettlementNotDisputable")
        .withArgs(E, State.Pending);
    });

    it("reverts SettlementNotDisputable on a frozen and on a resolved epoch", async () => {
      const env = await conn.networkHelpers.loadFixture(submittedFixture);
      const other = { epoch: E, root: OTHER_ROOT, totalWeight: 1n };
      await env.settlement.submitEpoch(other, await sign(env, env.keys.slice(0, 3), other));
      const third = { epoch: E, root: keccak256("0x02"), totalWeight: 1n };
      const thirdSigs = await sign(env, env.keys.slice(0, 3), third);
      await expect(env.settlement.submitEpoch(third, thirdSigs))
        .to.be.revertedWithCustomError(env.settlement, "SettlementNotDisputable")
        .withArgs(E, State.Frozen);
      await env.settlement.resolveEpoch(E, env.settled.root, env.settled.totalWeight);
      await expect(env.settlement.submitEpoch(third, thirdSigs))
        .to.be.revertedWithCustomError(env.settlement, "SettlementNotDisputable")
        .withArgs(E, State.Resolved);
    });
  });

  describe("resolveEpoch", () => {
    async function frozenFixture() {
      const env = await submittedFixture();
      const other = { epoch: E, root: OTHER_ROOT, totalWeight: env.settled.totalWeight };
      await env.settlement.submitEpoch(other, await sign(env, env.keys.slice(0, 3), other));
      return env;
    }

    it("reverts for a caller with neither GOVERNANCE_ROLE nor GUARDIAN_ROLE", async () => {
      const env = await conn.networkHelpers.loadFixture(frozenFixture);
      await expect(env.settlement.connect(env.outsider).resolveEpoch(E, OTHER_ROOT, 1n))
        .to.be.revertedWithCustomError(env.settlement, "AccessControlUnauthorizedAccount")
        .withArgs(env.outsider.address, await env.settlement.GUARDIAN_ROLE());
    });

    it("reverts SettlementNotFrozen for an epoch that is not frozen", async () => {
      const env = await conn.networkHelpers.loadFixture(submittedFixture);
      await expect(env.settlement.resolveEpoch(E, OTHER_ROOT, 1n))
        .to.be.revertedWithCustomError(env.settlement, "SettlementNotFrozen")
        .withArgs(E, State.Pending);
      await expect(env.settlement.resolveEpoch(E + 1n, OTHER_ROOT, 1n))
        .to.be.revertedWithCustomError(env.settlement, "SettlementNotFrozen")
        .withArgs(E + 1n, State.None);
    });

    it("reverts SettlementZeroWeight for a root with zero total weight", async () => {
      const env = await conn.networkHelpers.loadFixture(frozenFixture);
      await expect(env.settlement.resolveEpoch(E, OTHER_ROOT, 0n)).to.be.revertedWithCustomError(env.settlement, "SettlementZeroWeight");
    });

    it("voids the epoch with root 0: nothing can be funded or claimed", async () => {
      const env = await conn.networkHelpers.loadFixture(frozenFixture);
      const tx = env.settlement.resolveEpoch(E, ZeroHash, 0n);
      await expect(tx).to.emit(env.settlement, "EpochResolved").withArgs(E, ZeroHash, 0n);
      const now = BigInt(await conn.networkHelpers.time.latest());
      const record = await env.settlement.epochRecord(E);
      expect(record.state).to.equal(State.Resolved);
      expect(record.commitment).to.equal(0n);
      expect(record.finalAt).to.equal(now);
      expect(await env.settlement.isFinal(E)).to.equal(false);
      expect(await env.settlement.previewEmission(E)).to.equal(0n);
      await expect(env.settlement.fundEpoch(E))
        .to.be.revertedWithCustomError(env.settlement, "SettlementNotFinal")
        .withArgs(E, State.Resolved, now);
      // Not even a claim that passes root 0 and weight 0 (whose commitment is not 0) can match.
      await expect(
        env.settlement.claim({ epoch: E, root: ZeroHash, totalWeight: 0n }, { edgeId: env.edgeA, stake: 1n, quality: 1n, proof: [] }),
      )
        .to.be.revertedWithCustomError(env.settlement, "SettlementNotFinal")
        .withArgs(E, State.Resolved, now);
    });

    it("settles the epoch on the resolved root, claimable at once; the other attestation no longer matches", async () => {
      const env = await conn.networkHelpers.loadFixture(frozenFixture);
      // Governance picks a third tree (edge A only).
      const t = buildTree(E, [{ edgeId: env.edgeA, stake: MIN_SELF_BOND + ALICE_STAKE, quality: QUALITY_ONE }]);
      await expect(env.settlement.resolveEpoch(E, t.root, t.totalWeight))
        .to.emit(env.settlement, "EpochResolved")
        .withArgs(E, t.root, t.totalWeight);
      const record = await env.settlement.epochRecord(E);
      expect(record.commitment).to.equal(commitment(t.root, t.totalWeight));
      expect(await env.settlement.isFinal(E)).to.equal(true);
      await expect(env.settlement.claim(env.settled.attestation, env.settled.claimOf(env.edgeA)))
        .to.be.revertedWithCustomError(env.settlement, "SettlementWrongAttestation")
        .withArgs(E);
      const expected = await expectedFunding(env, E);
      const a = { epoch: E, root: t.root, totalWeight: t.totalWeight };
      // The single leaf has all the weight: it takes the whole emission.
      await expect(env.settlement.claim(a, t.claimOf(env.edgeA)))
        .to.emit(env.settlement, "RewardClaimed")
        .withArgs(E, env.edgeA, expected.emission, expected.emission);
    });
  });

  describe("fundEpoch", () => {
    it("reverts SettlementNotFinal for an epoch never submitted", async () => {
      const env = await conn.networkHelpers.loadFixture(baseFixture);
      await expect(env.settlement.fundEpoch(E))
        .to.be.revertedWithCustomError(env.settlement, "SettlementNotFinal")
        .withArgs(E, State.None, 0n);
    });

    it("mints the exact emission into the staking reserve once", async () => {
      const env = await conn.networkHelpers.loadFixture(finalFixture);
      const { settlement, token, staking } = env;
      const supply = await token.totalSupply();
      const active = await staking.totalActiveStake();
      // From the spec: the bonding rate is tiny (< 50%), so the 5% rate moves up one 0.05-point
      // step for each of the E epochs since deployment (epoch 0).
      const bondingRate = (active * RATE_ONE) / supply;
      expect(bondingRate < RATE_ONE / 2n).to.equal(true);
      const rate = (5n * RATE_ONE) / 100n + E * ((5n * RATE_ONE) / 10_000n);
      const emission = (supply * rate * EPOCH) / (RATE_ONE * 365n * 86_400n);
      expect(emission).to.equal((await expectedFunding(env, E)).emission);
      expect(await settlement.previewEmission(E)).to.equal(emission);
      const reserveBefore = (await staking.totals()).rewardReserve;

      const tx = settlement.fundEpoch(E);
      await expect(tx).to.emit(settlement, "EpochFunded").withArgs(E, emission, rate, bondingRate);
      await expect(tx)
        .to.emit(staking, "RewardReserveDeposited")
        .withArgs(await settlement.getAddress(), emission);
      await expect(tx).to.changeTokenBalances(conn.ethers, token, [staking, settlement], [emission, 0n]);
      expect(await token.totalSupply()).to.equal(supply + emission);
      expect((await staking.totals()).rewardReserve).to.equal(reserveBefore + emission);
      const funds = await settlement.epochFunds(E);
      expect([funds.emission, funds.claimed, funds.funded]).to.deep.equal([emission, 0n, true]);
      expect([...(await settlement.inflation())]).to.deep.equal([rate, E]);
      expect(await settlement.previewEmission(E)).to.equal(0n);

      await expect(settlement.fundEpoch(E)).to.be.revertedWithCustomError(settlement, "SettlementAlreadyFunded").withArgs(E);
    });

    it("moves the rate down one step per epoch when the bonding rate is above target", async () => {
      const env = await conn.networkHelpers.loadFixture(finalFixture);
      await env.settlement.setTargetBondingRate(0n);
      const rate = (5n * RATE_ONE) / 100n - E * ((5n * RATE_ONE) / 10_000n);
      const supply = await env.token.totalSupply();
      const expected = await expectedFunding(env, E);
      expect(expected.rate).to.equal(rate);
      await expect(env.settlement.fundEpoch(E))
        .to.emit(env.settlement, "EpochFunded")
        .withArgs(E, (supply * rate * EPOCH) / (RATE_ONE * 365n * 86_400n), rate, expected.bondingRate);
    });

    it("keeps the rate when the bonding rate equals the target", async () => {
      const env = await conn.networkHelpers.loadFixture(finalFixture);
      const bondingRate = ((await env.staking.totalActiveStake()) * RATE_ONE) / (await env.token.totalSupply());
      await env.settlement.setTargetBondingRate(bondingRate);
      const rate = (5n * RATE_ONE) / 100n;
      const expected = await expectedFunding(env, E);
      expect(expected.rate).to.equal(rate);
      await expect(env.settlement.fundEpoch(E)).to.emit(env.settlement, "EpochFunded").withArgs(E, expected.emission, rate, bondingRate);
      // It still counts as adjusted for E (no move).
      expect([...(await env.settlement.inflation())]).to.deep.equal([rate, E]);
    });

    it("clamps the rate at maxInflation going up and at minInflation going down", async () => {
      const env = await conn.networkHelpers.loadFixture(finalFixture);
      const up = (51n * RATE_ONE) / 1_000n; // 5.1%: one step and a half above 5%, so E steps hit it
      const snapshot = await conn.networkHelpers.takeSnapshot();
      await env.settlement.setInflationBounds(0n, up);
      const upExpected = await expectedFunding(env, E);
      expect(upExpected.rate).to.equal(up);
      await expect(env.settlement.fundEpoch(E))
        .to.emit(env.settlement, "EpochFunded")
        .withArgs(E, upExpected.emission, up, upExpected.bondingRate);
      expect((await env.settlement.inflation())[0]).to.equal(up);
      await snapshot.restore();
      const down = (49n * RATE_ONE) / 1_000n;
      await env.settlement.setInflationBounds(down, RATE_ONE / 10n);
      await env.settlement.setTargetBondingRate(0n);
      const expected = await expectedFunding(env, E);
      expect(expected.rate).to.equal(down);
      await expect(env.settlement.fundEpoch(E))
        .to.emit(env.settlement, "EpochFunded")
        .withArgs(E, expected.emission, down, expected.bondingRate);
    });

    it("moves several steps over skipped epochs and none for an earlier epoch funded later", async () => {
      const env = await conn.networkHelpers.loadFixture(finalFixture);
      const step = (5n * RATE_ONE) / 10_000n;
      await env.settlement.fundEpoch(E);
      const afterE = (5n * RATE_ONE) / 100n + E * step;
      expect([...(await env.settlement.inflation())]).to.deep.equal([afterE, E]);
      // Epochs E+1 and E+3 are settled; E+3 is funded first: three steps since E.
      await goToEpoch(conn, env.staking, E + 4n);
      await submitTree(env, E + 1n, defaultResults(env));
      await submitTree(env, E + 3n, defaultResults(env));
      await conn.networkHelpers.time.increase(DISPUTE_WINDOW);
      const supply = await env.token.totalSupply();
      const rate3 = afterE + 3n * step;
      const e3 = await expectedFunding(env, E + 3n);
      expect(e3.rate).to.equal(rate3);
      await expect(env.settlement.fundEpoch(E + 3n))
        .to.emit(env.settlement, "EpochFunded")
        .withArgs(E + 3n, (supply * rate3 * EPOCH) / (RATE_ONE * 365n * 86_400n), rate3, e3.bondingRate);
      expect([...(await env.settlement.inflation())]).to.deep.equal([rate3, E + 3n]);
      // E+1, funded after E+3, uses the current rate and moves nothing.
      const supply2 = await env.token.totalSupply();
      expect(supply2).to.equal(supply + e3.emission);
      const e1 = await expectedFunding(env, E + 1n);
      await expect(env.settlement.fundEpoch(E + 1n))
        .to.emit(env.settlement, "EpochFunded")
        .withArgs(E + 1n, (supply2 * rate3 * EPOCH) / (RATE_ONE * 365n * 86_400n), rate3, e1.bondingRate);
      expect([...(await env.settlement.inflation())]).to.deep.equal([rate3, E + 3n]);
    });

    it("mints nothing at a zero rate but still marks the epoch funded", async () => {
      const env = await conn.networkHelpers.loadFixture(finalFixture);
      await env.settlement.setInflationBounds(0n, 0n);
      const supply = await env.token.totalSupply();
      const expected = await expectedFunding(env, E);
      expect(expected.emission).to.equal(0n);
      const tx = env.settlement.fundEpoch(E);
      await expect(tx).to.emit(env.settlement, "EpochFunded").withArgs(E, 0n, 0n, expected.bondingRate);
      await expect(tx).not.to.emit(env.staking, "RewardReserveDeposited");
      expect(await env.token.totalSupply()).to.equal(supply);
      expect((await env.settlement.epochFunds(E)).funded).to.equal(true);
      // A claim then pays 0 and makes no staking call.
      const claimTx = env.settlement.claim(env.settled.attestation, env.settled.claimOf(env.edgeA));
      await expect(claimTx).to.emit(env.settlement, "RewardClaimed").withArgs(E, env.edgeA, 0n, 0n);
      await expect(claimTx).not.to.emit(env.staking, "RewardCredited");
    });
  });

  describe("claim", () => {
    it("reverts before the epoch is final", async () => {
      const env = await conn.networkHelpers.loadFixture(submittedFixture);
      const finalAt = (await env.settlement.epochRecord(E)).finalAt;
      await expect(env.settlement.claim(env.settled.attestation, env.settled.claimOf(env.edgeA)))
        .to.be.revertedWithCustomError(env.settlement, "SettlementNotFinal")
        .withArgs(E, State.Pending, finalAt);
    });

    it("reverts SettlementWrongAttestation for another root or total weight", async () => {
      const env = await conn.networkHelpers.loadFixture(finalFixture);
      const c = env.settled.claimOf(env.edgeA);
      await expect(env.settlement.claim({ ...env.settled.attestation, root: OTHER_ROOT }, c))
        .to.be.revertedWithCustomError(env.settlement, "SettlementWrongAttestation")
        .withArgs(E);
      await expect(env.settlement.claim({ ...env.settled.attestation, totalWeight: 1n }, c))
        .to.be.revertedWithCustomError(env.settlement, "SettlementWrongAttestation")
        .withArgs(E);
    });

    it("reverts SettlementInvalidProof for a leaf not in the tree", async () => {
      const env = await conn.networkHelpers.loadFixture(finalFixture);
      const c = env.settled.claimOf(env.edgeA);
      await expect(env.settlement.claim(env.settled.attestation, { ...c, stake: c.stake * 2n }))
        .to.be.revertedWithCustomError(env.settlement, "SettlementInvalidProof")
        .withArgs(E, env.edgeA);
      // Edge B's proof with edge A's leaf.
      await expect(env.settlement.claim(env.settled.attestation, { ...c, proof: env.settled.claimOf(env.edgeB).proof }))
        .to.be.revertedWithCustomError(env.settlement, "SettlementInvalidProof")
        .withArgs(E, env.edgeA);
    });

    it("reverts SettlementQualityOutOfRange above QUALITY_ONE, even for a leaf in the tree", async () => {
      const env = await conn.networkHelpers.loadFixture(baseFixture);
      const results = [
        { edgeId: env.edgeA, stake: MIN_SELF_BOND, quality: QUALITY_ONE + 1n },
        { edgeId: env.edgeB, stake: EDGE_B_BOND, quality: QUALITY_ONE },
      ];
      const s = await settleFinal(conn, env, E, results);
      await expect(env.settlement.claim(s.attestation, s.claimOf(env.edgeA)))
        .to.be.revertedWithCustomError(env.settlement, "SettlementQualityOutOfRange")
        .withArgs(QUALITY_ONE + 1n);
      // Exactly QUALITY_ONE is fine.
      await expect(env.settlement.claim(s.attestation, s.claimOf(env.edgeB))).to.emit(env.settlement, "RewardClaimed");
    });

    it("funds the epoch on the first claim and credits the exact reward, commission split through staking", async () => {
      const env = await conn.networkHelpers.loadFixture(finalFixture);
      const { settlement, staking } = env;
      const { emission, rate, bondingRate } = await expectedFunding(env, E);
      const leaf = defaultResults(env)[0];
      const reward = rewardOf(emission, leaf, env.settled.totalWeight);
      // Edge A holds 4,000 of the 5,000 weighted units (edge B's 2,000 at half quality): 4/5.
      expect(reward).to.equal((emission * 4n) / 5n);
      const commission = (reward * COMMISSION_BPS) / BPS;
      const acc = ((reward - commission) * ACC_SCALE) / (MIN_SELF_BOND + ALICE_STAKE);
      const tx = settlement.claim(env.settled.attestation, env.settled.claimOf(env.edgeA));
      await expect(tx).to.emit(settlement, "EpochFunded").withArgs(E, emission, rate, bondingRate);
      await expect(tx).to.emit(settlement, "RewardClaimed").withArgs(E, env.edgeA, reward, reward);
      await expect(tx).to.emit(staking, "RewardCredited").withArgs(env.edgeA, E, reward, commission);
      const op = await staking.position(env.edgeA, env.operator.address);
      const alice = await staking.position(env.edgeA, env.alice.address);
      expect(op.rewards).to.equal(commission + (MIN_SELF_BOND * acc) / ACC_SCALE);
      expect(alice.rewards).to.equal((ALICE_STAKE * acc) / ACC_SCALE);
      // Alice's 3/4 of the 90% net: within a wei of 0.675 × reward.
      expect((reward * 675n) / 1000n - alice.rewards <= 1n).to.equal(true);
      expect(await settlement.claimed(E, env.edgeA)).to.equal(true);
      expect(await settlement.claimed(E, env.edgeB)).to.equal(false);
      expect((await settlement.epochFunds(E)).claimed).to.equal(reward);
      expect((await staking.totals()).rewardReserve).to.equal(emission - reward);
    });

    it("reverts SettlementAlreadyClaimed the second time", async () => {
      const env = await conn.networkHelpers.loadFixture(finalFixture);
      await env.settlement.claim(env.settled.attestation, env.settled.claimOf(env.edgeA));
      await expect(env.settlement.claim(env.settled.attestation, env.settled.claimOf(env.edgeA)))
        .to.be.revertedWithCustomError(env.settlement, "SettlementAlreadyClaimed")
        .withArgs(E, env.edgeA);
    });

    it("declines a jailed edge's reward: credited 0, still counted as claimed", async () => {
      const env = await conn.networkHelpers.loadFixture(finalFixture);
      const fault = { edgeId: env.edgeB, epoch: E, kind: 1, evidenceHash: keccak256("0x0b"), reporter: env.admin.address };
      await env.settlement.reportFault(fault, await signFault(env.domain, env.keys.slice(0, 3), fault));
      expect(await env.staking.jailedInEpoch(env.edgeB, E)).to.equal(true);
      const { emission } = await expectedFunding(env, E);
      const reward = rewardOf(emission, defaultResults(env)[1], env.settled.totalWeight);
      expect(reward).to.equal(emission / 5n);
      const tx = env.settlement.claim(env.settled.attestation, env.settled.claimOf(env.edgeB));
      await expect(tx).to.emit(env.staking, "RewardDeclined").withArgs(env.edgeB, E, reward, 0n);
      await expect(tx).to.emit(env.settlement, "RewardClaimed").withArgs(E, env.edgeB, reward, 0n);
      expect((await env.settlement.epochFunds(E)).claimed).to.equal(reward);
      expect(await env.settlement.claimed(E, env.edgeB)).to.equal(true);
      // The declined share stays in the reserve.
      expect((await env.staking.totals()).rewardReserve).to.equal(emission);
      expect((await env.staking.position(env.edgeB, env.operatorB.address)).rewards).to.equal(0n);
    });

    it("reverts SettlementClaimsClosed once an epoch final in the next one is past the credit window", async () => {
      const env = await conn.networkHelpers.loadFixture(finalFixture);
      // Still fine in epoch E + CREDIT_WINDOW ...
      await goToEpoch(conn, env.staking, E + CREDIT_WINDOW);
      expect(await env.settlement.claimsOpen(E)).to.equal(true);
      await env.settlement.claim(env.settled.attestation, env.settled.claimOf(env.edgeA));
      // ... not one epoch later.
      await goToEpoch(conn, env.staking, E + CREDIT_WINDOW + 1n);
      expect(await env.settlement.claimsOpen(E)).to.equal(false);
      await expect(env.settlement.claim(env.settled.attestation, env.settled.claimOf(env.edgeB)))
        .to.be.revertedWithCustomError(env.settlement, "SettlementClaimsClosed")
        .withArgs(E, E + CREDIT_WINDOW + 1n);
      expect(await env.settlement.claimed(E, env.edgeB)).to.equal(false);
    });
  });

  describe("claimMany", () => {
    it("reverts SettlementNothingToClaim for no claims", async () => {
      const env = await conn.networkHelpers.loadFixture(finalFixture);
      await expect(env.settlement.claimMany(env.settled.attestation, []))
        .to.be.revertedWithCustomError(env.settlement, "SettlementNothingToClaim")
        .withArgs(E);
    });

    it("credits every edge exactly, funds once and sums what was credited", async () => {
      const env = await conn.networkHelpers.loadFixture(finalFixture);
      const { emission } = await expectedFunding(env, E);
      const [a, b] = defaultResults(env);
      const ra = rewardOf(emission, a, env.settled.totalWeight);
      const rb = rewardOf(emission, b, env.settled.totalWeight);
      const credited = await env.settlement.claimMany.staticCall(env.settled.attestation, [
        env.settled.claimOf(env.edgeA),
        env.settled.claimOf(env.edgeB),
      ]);
      expect(credited).to.equal(ra + rb);
      const tx = env.settlement.claimMany(env.settled.attestation, [env.settled.claimOf(env.edgeA), env.settled.claimOf(env.edgeB)]);
      await expect(tx).to.emit(env.settlement, "RewardClaimed").withArgs(E, env.edgeA, ra, ra);
      await expect(tx).to.emit(env.settlement, "RewardClaimed").withArgs(E, env.edgeB, rb, rb);
      await expect(tx).to.emit(env.settlement, "EpochFunded");
      const funds = await env.settlement.epochFunds(E);
      expect(funds.claimed).to.equal(ra + rb);
      // Weights add up to the total: at most a wei of dust per leaf stays.
      expect(emission - funds.claimed <= 2n).to.equal(true);
    });

    it("counts a declined credit in claimed but not in the returned credited total", async () => {
      const env = await conn.networkHelpers.loadFixture(finalFixture);
      const fault = { edgeId: env.edgeB, epoch: E, kind: 2, evidenceHash: ZeroHash, reporter: env.admin.address };
      await env.settlement.reportFault(fault, await signFault(env.domain, env.keys.slice(0, 3), fault));
      const { emission } = await expectedFunding(env, E);
      const [a, b] = defaultResults(env);
      const claims = [env.settled.claimOf(env.edgeA), env.settled.claimOf(env.edgeB)];
      expect(await env.settlement.claimMany.staticCall(env.settled.attestation, claims)).to.equal(
        rewardOf(emission, a, env.settled.totalWeight),
      );
      await env.settlement.claimMany(env.settled.attestation, claims);
      expect((await env.settlement.epochFunds(E)).claimed).to.equal(
        rewardOf(emission, a, env.settled.totalWeight) + rewardOf(emission, b, env.settled.totalWeight),
      );
    });
  });

  describe("reportFault", () => {
    const evidence = keccak256("0xe1");

    it("reverts SettlementUnknownFaultKind for a kind beyond AuditFailure", async () => {
      const env = await conn.networkHelpers.loadFixture(finalFixture);
      const fault = { edgeId: env.edgeB, epoch: E, kind: 4, evidenceHash: evidence, reporter: env.admin.address };
      await expect(env.settlement.reportFault(fault, await signFault(env.domain, env.keys.slice(0, 3), fault)))
        .to.be.revertedWithCustomError(env.settlement, "SettlementUnknownFaultKind")
        .withArgs(4n);
    });

    it("reverts below quorum", async () => {
      const env = await conn.networkHelpers.loadFixture(finalFixture);
      const fault = { edgeId: env.edgeB, epoch: E, kind: 0, evidenceHash: evidence, reporter: env.admin.address };
      await expect(env.settlement.reportFault(fault, await signFault(env.domain, env.keys.slice(0, 1), fault)))
        .to.be.revertedWithCustomError(env.verifierSet, "VerifierSetBelowQuorum")
        .withArgs(1n, 3n);
      expect(await env.settlement.faultReported(env.edgeB, E)).to.equal(false);
    });

    it("slashes by the kind's fraction, jails the edge and pays the signed reporter", async () => {
      const env = await conn.networkHelpers.loadFixture(finalFixture);
      const fault = { edgeId: env.edgeB, epoch: E, kind: 0, evidenceHash: evidence, reporter: env.carol.address };
      const sigs = await signFault(env.domain, env.keys.slice(0, 3), fault);
      const bps = await env.settlement.faultSlashBps(0);
      expect(bps).to.equal(1_000n);
      // Edge B: only its operator's 2,000 tokens, nothing unbonding.
      const total = (EDGE_B_BOND * bps) / BPS;
      const burned = (total * BURN_BPS) / BPS;
      const supply = await env.token.totalSupply();
      expect(await env.settlement.connect(env.carol).reportFault.staticCall(fault, sigs)).to.equal(total);
      const tx = env.settlement.connect(env.carol).reportFault(fault, sigs);
      await expect(tx).to.emit(env.settlement, "FaultReported").withArgs(env.edgeB, E, 0n, evidence, env.carol.address, total);
      await expect(tx)
        .to.emit(env.staking, "Slashed")
        .withArgs(env.edgeB, E, env.carol.address, bps, total, burned, total - burned);
      await expect(tx).to.emit(env.staking, "Jailed");
      await expect(tx).to.changeTokenBalances(conn.ethers, env.token, [env.carol, env.staking], [total - burned, -total]);
      expect(await env.token.totalSupply()).to.equal(supply - burned);
      expect(await env.settlement.faultReported(env.edgeB, E)).to.equal(true);
      expect(await env.staking.edgeStatus(env.edgeB)).to.equal(4n); // Jailed
      expect(await env.staking.selfBond(env.edgeB)).to.equal(EDGE_B_BOND - total);
    });

    it("applies a kind's fraction above the staking cap at maxSlashBps", async () => {
      const env = await conn.networkHelpers.loadFixture(finalFixture);
      await env.settlement.setFaultSlashBps(3, 9_000n);
      const fault = { edgeId: env.edgeB, epoch: E, kind: 3, evidenceHash: evidence, reporter: env.admin.address };
      const total = (EDGE_B_BOND * MAX_SLASH_BPS) / BPS;
      await expect(env.settlement.reportFault(fault, await signFault(env.domain, env.keys.slice(0, 3), fault)))
        .to.emit(env.staking, "Slashed")
        .withArgs(env.edgeB, E, env.admin.address, MAX_SLASH_BPS, total, (total * BURN_BPS) / BPS, total - (total * BURN_BPS) / BPS);
    });

    it("reverts SettlementFaultAlreadyReported for the same edge and epoch, whatever the kind", async () => {
      const env = await conn.networkHelpers.loadFixture(finalFixture);
      const fault = { edgeId: env.edgeB, epoch: E, kind: 1, evidenceHash: evidence, reporter: env.admin.address };
      await env.settlement.reportFault(fault, await signFault(env.domain, env.keys.slice(0, 3), fault));
      const again = { ...fault, kind: 2, evidenceHash: keccak256("0xe2") };
      await expect(env.settlement.reportFault(again, await signFault(env.domain, env.keys.slice(2, 5), again)))
        .to.be.revertedWithCustomError(env.settlement, "SettlementFaultAlreadyReported")
        .withArgs(env.edgeB, E);
      // Another epoch of the same edge is a new fault.
      const next = { ...fault, epoch: E - 1n };
      await expect(env.settlement.reportFault(next, await signFault(env.domain, env.keys.slice(0, 3), next))).to.emit(
        env.settlement,
        "FaultReported",
      );
      expect(await env.settlement.faultReported(env.edgeB, E - 1n)).to.equal(true);
    });

    it("does not count signatures over another fault (kind changed)", async () => {
      const env = await conn.networkHelpers.loadFixture(finalFixture);
      const signed = { edgeId: env.edgeB, epoch: E, kind: 1, evidenceHash: evidence, reporter: env.admin.address };
      const sigs = await signFault(env.domain, env.keys.slice(0, 3), signed);
      // The first signature recovers, over the altered fault's digest, to an unrelated address.
      const altered = { ...signed, kind: 0 };
      const recovered = conn.ethers.verifyTypedData(env.domain, FAULT_ATTESTATION_TYPES, altered, `0x${sigs.slice(2, 132)}`);
      await expect(env.settlement.reportFault(altered, sigs))
        .to.be.revertedWithCustomError(env.verifierSet, "VerifierSetNotActiveVerifier")
        .withArgs(0n, recovered);
      expect(await env.settlement.faultReported(env.edgeB, E)).to.equal(false);
    });
  });

  describe("reportEquivocation", () => {
    async function twoSigned(env: Awaited<ReturnType<typeof finalFixture>>, keyIndex: number, epochB = E) {
      const key = env.keys[keyIndex];
      const a = env.settled.attestation;
      const b = { epoch: epochB, root: OTHER_ROOT, totalWeight: a.totalWeight };
      const sigA = await key.signTypedData(env.domain, EPOCH_ATTESTATION_TYPES, a);
      const sigB = await key.signTypedData(env.domain, EPOCH_ATTESTATION_TYPES, b);
      return { key, a, b, sigA, sigB };
    }

    it("slashes the verifier's bond and pays the reporter", async () => {
      const env = await conn.networkHelpers.loadFixture(finalFixture);
      const { key, a, b, sigA, sigB } = await twoSigned(env, 3);
      const p = await env.verifierSet.parameters();
      const id = await env.verifierSet.verifierOfSigner(key.address);
      const bond = (await env.verifierSet.verifier(id)).bond;
      const amount = (bond * p.slashBps) / BPS;
      const reporterReward = (amount * p.reporterBps) / BPS;
      expect(amount).to.be.greaterThan(0n);
      const tx = commitAndReport(env, env.bob, { a, signatureA: sigA, b, signatureB: sigB, quorumSignatures: "0x" });
      await expect(tx).to.emit(env.settlement, "EquivocationReported").withArgs(E, key.address, env.bob.address, amount);
      await expect(tx).to.changeTokenBalances(conn.ethers, env.token, [env.bob, env.verifierSet], [reporterReward, -amount]);
      expect((await env.verifierSet.verifier(id)).status).to.equal(5n); // Ejected
      // Its key no longer counts towards a quorum.
      const c = { epoch: E + 1n, root: OTHER_ROOT, totalWeight: 1n };
      await goToEpoch(conn, env.staking, E + 2n);
      const signers = [key, env.keys[0], env.keys[1]];
      const index = BigInt(
        signers
          .map((k) => k.address)
          .sort((x, y) => (BigInt(x) < BigInt(y) ? -1 : 1))
          .indexOf(key.address),
      );
      await expect(env.settlement.submitEpoch(c, await sign(env, signers, c)))
        .to.be.revertedWithCustomError(env.verifierSet, "VerifierSetNotActiveVerifier")
        .withArgs(index, key.address);
    });

    it("reverts SettlementEpochMismatch for attestations of different epochs", async () => {
      const env = await conn.networkHelpers.loadFixture(finalFixture);
      const { a, b, sigA, sigB } = await twoSigned(env, 0, E + 1n);
      await expect(commitAndReport(env, env.admin, { a, signatureA: sigA, b, signatureB: sigB, quorumSignatures: "0x" }))
        .to.be.revertedWithCustomError(env.settlement, "SettlementEpochMismatch")
        .withArgs(E, E + 1n);
    });

    it("reverts SettlementIdenticalAttestations for one attestation twice", async () => {
      const env = await conn.networkHelpers.loadFixture(finalFixture);
      const { a, sigA } = await twoSigned(env, 0);
      await expect(
        commitAndReport(env, env.admin, { a, signatureA: sigA, b: a, signatureB: sigA, quorumSignatures: "0x" }),
      ).to.be.revertedWithCustomError(env.settlement, "SettlementIdenticalAttestations");
    });

    it("reverts SettlementDifferentSigners when two verifiers signed the two attestations", async () => {
      const env = await conn.networkHelpers.loadFixture(finalFixture);
      const { key, a, b, sigA } = await twoSigned(env, 0);
      const other = env.keys[1];
      const sigB = await other.signTypedData(env.domain, EPOCH_ATTESTATION_TYPES, b);
      await expect(commitAndReport(env, env.admin, { a, signatureA: sigA, b, signatureB: sigB, quorumSignatures: "0x" }))
        .to.be.revertedWithCustomError(env.settlement, "SettlementDifferentSigners")
        .withArgs(key.address, other.address);
    });

    it("reverts with the verifier set's error for a key that never belonged to a verifier", async () => {
      const env = await conn.networkHelpers.loadFixture(finalFixture);
      const stranger = conn.ethers.Wallet.createRandom();
      const a = env.settled.attestation;
      const b = { ...a, root: OTHER_ROOT };
      await expect(
        commitAndReport(env, env.admin, {
          a,
          signatureA: await stranger.signTypedData(env.domain, EPOCH_ATTESTATION_TYPES, a),
          b,
          signatureB: await stranger.signTypedData(env.domain, EPOCH_ATTESTATION_TYPES, b),
          quorumSignatures: "0x",
        }),
      )
        .to.be.revertedWithCustomError(env.verifierSet, "VerifierSetUnknownSigner")
        .withArgs(stranger.address);
    });
  });

  describe("governance setters", () => {
    it("reject callers without GOVERNANCE_ROLE", async () => {
      const env = await conn.networkHelpers.loadFixture(baseFixture);
      const s = env.settlement.connect(env.outsider);
      const role = await env.settlement.GOVERNANCE_ROLE();
      for (const call of [
        () => s.setDisputeWindow(600n),
        () => s.setInflationBounds(0n, 1n),
        () => s.setInflationStep(1n),
        () => s.setTargetBondingRate(1n),
        () => s.setFaultSlashBps(0, 1n),
        () => s.setMaxFaultAge(1n),
        () => s.setGuardianDelay(60n),
      ]) {
        await expect(call())
          .to.be.revertedWithCustomError(env.settlement, "AccessControlUnauthorizedAccount")
          .withArgs(env.outsider.address, role);
      }
    });

    it("setDisputeWindow checks [60 s, (credit window - 1) epochs], emits and applies to the next submission", async () => {
      const env = await conn.networkHelpers.loadFixture(baseFixture);
      // A window that leaves no time to claim is refused: 7 days against a 3-epoch credit window.
      await expect(env.settlement.setDisputeWindow(7n * 86_400n))
        .to.be.revertedWithCustomError(env.settlement, "SettlementParameterOutOfBounds")
        .withArgs(Param.DisputeWindow, 7n * 86_400n, 60n, (CREDIT_WINDOW - 1n) * EPOCH);
      const max = (CREDIT_WINDOW - 1n) * EPOCH;
      await expect(env.settlement.setDisputeWindow(59n))
        .to.be.revertedWithCustomError(env.settlement, "SettlementParameterOutOfBounds")
        .withArgs(Param.DisputeWindow, 59n, 60n, max);
      await expect(env.settlement.setDisputeWindow(max + 1n))
        .to.be.revertedWithCustomError(env.settlement, "SettlementParameterOutOfBounds")
        .withArgs(Param.DisputeWindow, max + 1n, 60n, max);
      await expect(env.settlement.setDisputeWindow(60n))
        .to.emit(env.settlement, "ParameterChanged")
        .withArgs(Param.DisputeWindow, DISPUTE_WINDOW, 60n);
      await env.settlement.setDisputeWindow(max);
      expect((await env.settlement.parameters()).disputeWindow).to.equal(max);
      await goToEpoch(conn, env.staking, E + 1n);
      const s = await submitTree(env, E, defaultResults(env));
      const now = BigInt(await conn.networkHelpers.time.latest());
      expect((await env.settlement.epochRecord(E)).finalAt).to.equal(now + max);
      expect(s.root).to.not.equal(ZeroHash);
    });

    it("setGuardianDelay checks [60 s, 7 days], emits and applies to the next guardian resolution", async () => {
      const env = await conn.networkHelpers.loadFixture(baseFixture);
      const max = 7n * 86_400n;
      await expect(env.settlement.setGuardianDelay(59n))
        .to.be.revertedWithCustomError(env.settlement, "SettlementParameterOutOfBounds")
        .withArgs(Param.GuardianDelay, 59n, 60n, max);
      await expect(env.settlement.setGuardianDelay(max + 1n))
        .to.be.revertedWithCustomError(env.settlement, "SettlementParameterOutOfBounds")
        .withArgs(Param.GuardianDelay, max + 1n, 60n, max);
      await expect(env.settlement.setGuardianDelay(60n))
        .to.emit(env.settlement, "ParameterChanged")
        .withArgs(Param.GuardianDelay, 6n * 3_600n, 60n);
      expect((await env.settlement.parameters()).guardianDelay).to.equal(60n);
      // A frozen epoch: the guardian may resolve it 60 s after the freeze.
      await goToEpoch(conn, env.staking, E + 1n);
      const s = await submitTree(env, E, defaultResults(env));
      const other = { ...s.attestation, root: OTHER_ROOT };
      await env.settlement.submitEpoch(other, await sign(env, env.keys.slice(2, 5), other));
      const frozenAt = BigInt(await conn.networkHelpers.time.latest());
      await env.settlement.grantRole(await env.settlement.GUARDIAN_ROLE(), env.carol.address);
      await conn.networkHelpers.time.setNextBlockTimestamp(frozenAt + 60n);
      await expect(env.settlement.connect(env.carol).resolveEpoch(E, s.root, s.totalWeight)).to.emit(env.settlement, "EpochResolved");
    });

    it("setMaxFaultAge checks [1, unbonding delay in epochs], emits and applies to the next report", async () => {
      const env = await conn.networkHelpers.loadFixture(baseFixture);
      const limit = UNBONDING_DELAY / EPOCH;
      expect(await env.settlement.maxFaultAgeLimit()).to.equal(limit);
      await expect(env.settlement.setMaxFaultAge(0n))
        .to.be.revertedWithCustomError(env.settlement, "SettlementParameterOutOfBounds")
        .withArgs(Param.MaxFaultAge, 0n, 1n, limit);
      await expect(env.settlement.setMaxFaultAge(limit + 1n))
        .to.be.revertedWithCustomError(env.settlement, "SettlementParameterOutOfBounds")
        .withArgs(Param.MaxFaultAge, limit + 1n, 1n, limit);
      await expect(env.settlement.setMaxFaultAge(1n))
        .to.emit(env.settlement, "ParameterChanged")
        .withArgs(Param.MaxFaultAge, MAX_FAULT_AGE, 1n);
      expect((await env.settlement.parameters()).maxFaultAge).to.equal(1n);
      await goToEpoch(conn, env.staking, E + 2n);
      const fault = { edgeId: env.edgeA, epoch: E, kind: 0, evidenceHash: OTHER_ROOT, reporter: env.admin.address };
      await expect(env.settlement.reportFault(fault, await signFault(env.domain, env.keys.slice(0, 3), fault)))
        .to.be.revertedWithCustomError(env.settlement, "SettlementFaultTooOld")
        .withArgs(E, E + 2n, 1n);
      // A longer unbonding delay allows a longer age.
      await env.staking.setUnbondingDelay(10n * EPOCH);
      await expect(env.settlement.setMaxFaultAge(10n)).to.emit(env.settlement, "ParameterChanged");
      await expect(env.settlement.reportFault(fault, await signFault(env.domain, env.keys.slice(0, 3), fault))).to.emit(
        env.settlement,
        "FaultReported",
      );
    });

    it("setInflationBounds checks max ≤ 50% and min ≤ max, emits both and clamps the current rate", async () => {
      const env = await conn.networkHelpers.loadFixture(baseFixture);
      await expect(env.settlement.setInflationBounds(0n, MAX_INFLATION + 1n))
        .to.be.revertedWithCustomError(env.settlement, "SettlementParameterOutOfBounds")
        .withArgs(Param.MaxInflation, MAX_INFLATION + 1n, 0n, MAX_INFLATION);
      await expect(env.settlement.setInflationBounds(1_001n, 1_000n))
        .to.be.revertedWithCustomError(env.settlement, "SettlementParameterOutOfBounds")
        .withArgs(Param.MinInflation, 1_001n, 0n, 1_000n);
      const p = await env.settlement.parameters();
      const six = (6n * RATE_ONE) / 100n;
      const tx = env.settlement.setInflationBounds(six, MAX_INFLATION);
      await expect(tx).to.emit(env.settlement, "ParameterChanged").withArgs(Param.MinInflation, p.minInflation, six);
      await expect(tx).to.emit(env.settlement, "ParameterChanged").withArgs(Param.MaxInflation, p.maxInflation, MAX_INFLATION);
      // 5% < new min 6%: raised to 6%.
      expect((await env.settlement.inflation())[0]).to.equal(six);
      await env.settlement.setInflationBounds(0n, RATE_ONE / 100n);
      expect((await env.settlement.inflation())[0]).to.equal(RATE_ONE / 100n);
      // Inside the bounds: unchanged.
      await env.settlement.setInflationBounds(0n, MAX_INFLATION);
      expect((await env.settlement.inflation())[0]).to.equal(RATE_ONE / 100n);
      const q = await env.settlement.parameters();
      expect([q.minInflation, q.maxInflation]).to.deep.equal([0n, MAX_INFLATION]);
    });

    it("setInflationStep checks ≤ 1 point and emits", async () => {
      const env = await conn.networkHelpers.loadFixture(baseFixture);
      const max = RATE_ONE / 100n;
      await expect(env.settlement.setInflationStep(max + 1n))
        .to.be.revertedWithCustomError(env.settlement, "SettlementParameterOutOfBounds")
        .withArgs(Param.InflationStep, max + 1n, 0n, max);
      await expect(env.settlement.setInflationStep(max))
        .to.emit(env.settlement, "ParameterChanged")
        .withArgs(Param.InflationStep, (5n * RATE_ONE) / 10_000n, max);
      expect((await env.settlement.parameters()).inflationStep).to.equal(max);
      await env.settlement.setInflationStep(0n);
      expect((await env.settlement.parameters()).inflationStep).to.equal(0n);
    });

    it("setTargetBondingRate checks ≤ 100% and emits", async () => {
      const env = await conn.networkHelpers.loadFixture(baseFixture);
      await expect(env.settlement.setTargetBondingRate(RATE_ONE + 1n))
        .to.be.revertedWithCustomError(env.settlement, "SettlementParameterOutOfBounds")
        .withArgs(Param.TargetBondingRate, RATE_ONE + 1n, 0n, RATE_ONE);
      await expect(env.settlement.setTargetBondingRate(RATE_ONE))
        .to.emit(env.settlement, "ParameterChanged")
        .withArgs(Param.TargetBondingRate, RATE_ONE / 2n, RATE_ONE);
      expect((await env.settlement.parameters()).targetBondingRate).to.equal(RATE_ONE);
    });

    it("setFaultSlashBps checks [1, 10,000] per kind and emits", async () => {
      const env = await conn.networkHelpers.loadFixture(baseFixture);
      await expect(env.settlement.setFaultSlashBps(2, 0n))
        .to.be.revertedWithCustomError(env.settlement, "SettlementParameterOutOfBounds")
        .withArgs(Param.FaultSlashBps, 0n, 1n, BPS);
      await expect(env.settlement.setFaultSlashBps(2, BPS + 1n))
        .to.be.revertedWithCustomError(env.settlement, "SettlementParameterOutOfBounds")
        .withArgs(Param.FaultSlashBps, BPS + 1n, 1n, BPS);
      await expect(env.settlement.setFaultSlashBps(2, BPS))
        .to.emit(env.settlement, "ParameterChanged")
        .withArgs(Param.FaultSlashBps, 100n, BPS);
      expect(await env.settlement.faultSlashBps(2)).to.equal(BPS);
      // The other kinds keep the deployment defaults.
      expect([
        await env.settlement.faultSlashBps(0),
        await env.settlement.faultSlashBps(1),
        await env.settlement.faultSlashBps(3),
      ]).to.deep.equal([1_000n, 200n, 1_000n]);
    });
  });

  describe("views", () => {
    it("leafHash is OpenZeppelin StandardMerkleTree's leaf hash", async () => {
      const env = await conn.networkHelpers.loadFixture(baseFixture);
      const types = ["uint256", "uint256", "uint256", "uint256"];
      const value = [E, 7n, 123n * TOKEN, 999_999n];
      const tree = StandardMerkleTree.of([value], types);
      expect(await env.settlement.leafHash(E, 7n, 123n * TOKEN, 999_999n)).to.equal(tree.leafHash(value));
      // A single-leaf tree's root is its leaf.
      expect(tree.root).to.equal(tree.leafHash(value));
    });

    it("struct hashes are EIP-712's and hashTypedData of them is the typed-data digest", async () => {
      const env = await conn.networkHelpers.loadFixture(baseFixture);
      const a = { epoch: 9n, root: OTHER_ROOT, totalWeight: 77n };
      const f = { edgeId: 3n, epoch: 9n, kind: 2, evidenceHash: OTHER_ROOT, reporter: env.admin.address };
      expect(await env.settlement.attestationStructHash(a)).to.equal(
        TypedDataEncoder.hashStruct("EpochAttestation", EPOCH_ATTESTATION_TYPES, a),
      );
      expect(await env.settlement.faultStructHash(f)).to.equal(TypedDataEncoder.hashStruct("FaultAttestation", FAULT_ATTESTATION_TYPES, f));
      expect(await env.verifierSet.hashTypedData(await env.settlement.attestationStructHash(a))).to.equal(
        TypedDataEncoder.hash(env.domain, EPOCH_ATTESTATION_TYPES, a),
      );
      expect(await env.settlement.EPOCH_ATTESTATION_TYPEHASH()).to.equal(
        keccak256(Buffer.from("EpochAttestation(uint256 epoch,bytes32 root,uint256 totalWeight)")),
      );
      expect(await env.settlement.FAULT_ATTESTATION_TYPEHASH()).to.equal(
        keccak256(Buffer.from("FaultAttestation(uint256 edgeId,uint256 epoch,uint8 kind,bytes32 evidenceHash,address reporter)")),
      );
    });

    it("commitmentOf is the low 208 bits of keccak256(abi.encode(root, totalWeight))", async () => {
      const env = await conn.networkHelpers.loadFixture(baseFixture);
      expect(await env.settlement.commitmentOf(OTHER_ROOT, 5n)).to.equal(commitment(OTHER_ROOT, 5n));
      expect(await env.settlement.commitmentOf(OTHER_ROOT, 5n)).to.not.equal(await env.settlement.commitmentOf(OTHER_ROOT, 6n));
    });

    it("constants, wiring, initial parameters and empty records", async () => {
      const env = await conn.networkHelpers.loadFixture(baseFixture);
      const s = env.settlement;
      expect(await s.QUALITY_ONE()).to.equal(QUALITY_ONE);
      expect(await s.RATE_ONE()).to.equal(RATE_ONE);
      expect(await s.MIN_DISPUTE_WINDOW()).to.equal(60n);
      expect(await s.MAX_DISPUTE_WINDOW()).to.equal(7n * 86_400n);
      expect([await s.MIN_GUARDIAN_DELAY(), await s.MAX_GUARDIAN_DELAY()]).to.deep.equal([60n, 7n * 86_400n]);
      expect(await s.MAX_INFLATION()).to.equal(MAX_INFLATION);
      expect(await s.MAX_INFLATION_STEP()).to.equal(RATE_ONE / 100n);
      expect(await s.token()).to.equal(await env.token.getAddress());
      expect(await s.staking()).to.equal(await env.staking.getAddress());
      expect(await s.verifiers()).to.equal(await env.verifierSet.getAddress());
      expect(await s.hasRole(await s.GOVERNANCE_ROLE(), env.admin.address)).to.equal(true);
      const p = await s.parameters();
      expect([
        p.disputeWindow,
        p.minInflation,
        p.maxInflation,
        p.inflationStep,
        p.targetBondingRate,
        p.maxFaultAge,
        p.guardianDelay,
      ]).to.deep.equal([
        DISPUTE_WINDOW,
        (2n * RATE_ONE) / 100n,
        RATE_ONE / 10n,
        (5n * RATE_ONE) / 10_000n,
        RATE_ONE / 2n,
        MAX_FAULT_AGE,
        6n * 3_600n,
      ]);
      expect([...(await s.inflation())]).to.deep.equal([(5n * RATE_ONE) / 100n, 0n]);
      const r = await s.epochRecord(E);
      expect([r.commitment, r.finalAt, r.state]).to.deep.equal([0n, 0n, State.None]);
      const f = await s.epochFunds(E);
      expect([f.emission, f.claimed, f.funded]).to.deep.equal([0n, 0n, false]);
      expect(await s.isFinal(E)).to.equal(false);
      expect(await s.claimed(E, env.edgeA)).to.equal(false);
      expect(await s.faultReported(env.edgeA, E)).to.equal(false);
      expect(await s.previewEmission(E)).to.equal(0n);
      // The settlement lets staking pull its deposits, for good.
      expect(await env.token.allowance(await s.getAddress(), await env.staking.getAddress())).to.equal(conn.ethers.MaxUint256);
    });
  });
});
