import { expect } from "chai";

import {
  connect,
  type Connection,
  CREDIT_WINDOW,
  DISPUTE_WINDOW,
  deployProtocol,
  EPOCH,
  goToEpoch,
  initialParameters,
  MIN_SELF_BOND,
} from "../../helpers/protocol.ts";
import { addEdge, buildTree, QUALITY_ONE, registerVerifiers, signAttestation } from "../../helpers/settlement.ts";
import { nextTxAt, type ProtocolEnv } from "../../helpers/stakingCore.ts";

const MIN_LENGTH = 60n;
const MAX_LENGTH = 30n * 86_400n; // 2,592,000

describe("EpochClock (in EdgeStaking)", () => {
  let conn: Connection;
  before(async () => {
    conn = await connect();
  });

  function protocol() {
    return deployProtocol(conn);
  }

  async function setup() {
    const env = await conn.networkHelpers.loadFixture(protocol);
    const genesis = await env.staking.epochStartTime(0n);
    return { ...env, genesis };
  }

  const at = (t: bigint) => conn.networkHelpers.time.increaseTo(t);

  describe("genesis", () => {
    it("is the timestamp of the deployment block when deployed with genesis 0", async () => {
      const { staking, genesis } = await setup();
      const [scheduled] = await staking.queryFilter(staking.filters.EpochLengthScheduled());
      const receipt = await conn.ethers.provider.getTransactionReceipt(scheduled.transactionHash);
      // The constructor's event: emitted by the deployment transaction of this very contract.
      expect(receipt?.contractAddress).to.equal(await staking.getAddress());
      const block = await scheduled.getBlock();
      expect(genesis).to.equal(BigInt(block.timestamp));
      expect(scheduled.args.fromEpoch).to.equal(0n);
      expect(scheduled.args.startTime).to.equal(genesis);
      expect(scheduled.args.newLength).to.equal(EPOCH);
    });
  });

  describe("currentEpoch", () => {
    it("advances by one exactly every epochLength seconds from genesis", async () => {
      const { staking, genesis } = await setup();
      expect(await staking.currentEpoch()).to.equal(0n);
      for (const k of [1n, 2n, 3n]) {
        await at(genesis + k * EPOCH - 1n);
        expect(await staking.currentEpoch()).to.equal(k - 1n);
        await at(genesis + k * EPOCH);
        expect(await staking.currentEpoch()).to.equal(k);
      }
      await at(genesis + 1_000n * EPOCH + EPOCH / 2n);
      expect(await staking.currentEpoch()).to.equal(1_000n);
    });
  });

  describe("epochStartTime", () => {
    it("is genesis + n * epochLength for past, current and future epochs", async () => {
      const { staking, genesis } = await setup();
      await at(genesis + 5n * EPOCH + 17n);
      for (const n of [0n, 1n, 4n, 5n, 6n, 500n]) {
        expect(await staking.epochStartTime(n)).to.equal(genesis + n * EPOCH);
      }
    });
  });

  describe("epochLength", () => {
    it("reports the initial length", async () => {
      const { staking } = await setup();
      expect(await staking.epochLength()).to.equal(EPOCH);
    });
  });

  describe("setEpochLength", () => {
    it("reverts for a caller without GOVERNANCE_ROLE", async () => {
      const { staking, alice, slasher } = await setup();
      const role = await staking.GOVERNANCE_ROLE();
      for (const caller of [alice, slasher]) {
        await expect(staking.connect(caller).setEpochLength(600n))
          .to.be.revertedWithCustomError(staking, "AccessControlUnauthorizedAccount")
          .withArgs(caller.address, role);
      }
    });

    it("reverts for a length below 60 seconds or above 30 days", async () => {
      const { staking } = await setup();
      for (const len of [0n, MIN_LENGTH - 1n, MAX_LENGTH + 1n]) {
        await expect(staking.setEpochLength(len))
          .to.be.revertedWithCustomError(staking, "EpochClockLengthOutOfBounds")
          .withArgs(len, MIN_LENGTH, MAX_LENGTH);
      }
    });

    it("accepts the bounds 60 seconds and 30 days", async () => {
      const { staking, genesis } = await setup();
      await expect(staking.setEpochLength(MIN_LENGTH))
        .to.emit(staking, "EpochLengthScheduled")
        .withArgs(1n, genesis + EPOCH, MIN_LENGTH);
      await expect(staking.setEpochLength(MAX_LENGTH))
        .to.emit(staking, "EpochLengthScheduled")
        .withArgs(1n, genesis + EPOCH, MAX_LENGTH);
    });

    it("keeps the current epoch's end and applies the new length from the next boundary", async () => {
      const { staking, genesis } = await setup();
      const boundary = genesis + 3n * EPOCH; // end of epoch 2
      await at(genesis + 2n * EPOCH + 100n);
      await expect(staking.setEpochLength(600n)).to.emit(staking, "EpochLengthScheduled").withArgs(3n, boundary, 600n);

      // Still in epoch 2, at the old length; past epochs unchanged.
      expect(await staking.currentEpoch()).to.equal(2n);
      expect(await staking.epochLength()).to.equal(EPOCH);
      expect(await staking.epochStartTime(0n)).to.equal(genesis);
      expect(await staking.epochStartTime(2n)).to.equal(genesis + 2n * EPOCH);
      // Epoch 3 starts when epoch 2 was announced to end; later ones are 600 s long.
      expect(await staking.epochStartTime(3n)).to.equal(boundary);
      expect(await staking.epochStartTime(4n)).to.equal(boundary + 600n);
      expect(await staking.epochStartTime(10n)).to.equal(boundary + 7n * 600n);

      await at(boundary - 1n);
      expect(await staking.currentEpoch()).to.equal(2n);
      expect(await staking.epochLength()).to.equal(EPOCH);
      await at(boundary);
      expect(await staking.currentEpoch()).to.equal(3n);
      expect(await staking.epochLength()).to.equal(600n);
      await at(boundary + 599n);
      expect(await staking.currentEpoch()).to.equal(3n);
      await at(boundary + 600n);
      expect(await staking.currentEpoch()).to.equal(4n);
      await at(boundary + 10n * 600n);
      expect(await staking.currentEpoch()).to.equal(13n);
    });

    it("waits for the end of the epoch even when requested in its first second", async () => {
      const { staking, genesis } = await setup();
      await nextTxAt(conn, genesis + 2n * EPOCH);
      await expect(staking.setEpochLength(120n))
        .to.emit(staking, "EpochLengthScheduled")
        .withArgs(3n, genesis + 3n * EPOCH, 120n);
      expect(await staking.currentEpoch()).to.equal(2n);
      expect(await staking.epochStartTime(4n)).to.equal(genesis + 3n * EPOCH + 120n);
    });

    it("replaces a pending change when called again in the same epoch", async () => {
      const { staking, genesis } = await setup();
      const boundary = genesis + 3n * EPOCH;
      await at(genesis + 2n * EPOCH + 100n);
      await staking.setEpochLength(600n);
      await expect(staking.setEpochLength(1_200n)).to.emit(staking, "EpochLengthScheduled").withArgs(3n, boundary, 1_200n);
      expect(await staking.epochStartTime(3n)).to.equal(boundary);
      expect(await staking.epochStartTime(4n)).to.equal(boundary + 1_200n);
      expect(await staking.epochLength()).to.equal(EPOCH);
      await at(boundary + 1_199n);
      expect(await staking.currentEpoch()).to.equal(3n);
      expect(await staking.epochLength()).to.equal(1_200n);
      await at(boundary + 1_200n);
      expect(await staking.currentEpoch()).to.equal(4n);
    });

    it("chains a change requested after the pending one took effect", async () => {
      const { staking, genesis } = await setup();
      const b3 = genesis + 3n * EPOCH; // epochs 3.. last 600 s
      await at(genesis + 2n * EPOCH + 100n);
      await staking.setEpochLength(600n);

      await at(b3 + 2n * 600n + 50n); // inside epoch 5
      expect(await staking.currentEpoch()).to.equal(5n);
      const b6 = b3 + 3n * 600n;
      await expect(staking.setEpochLength(1_800n)).to.emit(staking, "EpochLengthScheduled").withArgs(6n, b6, 1_800n);

      expect(await staking.epochLength()).to.equal(600n);
      expect(await staking.epochStartTime(3n)).to.equal(b3);
      expect(await staking.epochStartTime(5n)).to.equal(b3 + 1_200n);
      expect(await staking.epochStartTime(6n)).to.equal(b6);
      expect(await staking.epochStartTime(7n)).to.equal(b6 + 1_800n);
      expect(await staking.epochStartTime(9n)).to.equal(b6 + 3n * 1_800n);

      await at(b6 - 1n);
      expect(await staking.currentEpoch()).to.equal(5n);
      await at(b6);
      expect(await staking.currentEpoch()).to.equal(6n);
      expect(await staking.epochLength()).to.equal(1_800n);
      await at(b6 + 1_799n);
      expect(await staking.currentEpoch()).to.equal(6n);
      await at(b6 + 1_800n);
      expect(await staking.currentEpoch()).to.equal(7n);
    });

    it("keeps every epoch's start through changes in a row, searching the history from the newest segment", async () => {
      const { staking, genesis } = await setup();
      const b3 = genesis + 3n * EPOCH;
      await at(genesis + 2n * EPOCH + 100n);
      await staking.setEpochLength(600n); // from epoch 3
      await at(b3 + 700n); // epoch 4
      await staking.setEpochLength(900n); // from epoch 5
      const b5 = b3 + 2n * 600n;
      await at(b5 + 10n); // epoch 5
      await staking.setEpochLength(1_800n); // from epoch 6
      const b6 = b5 + 900n;
      await at(b6 + 1n);
      await staking.setEpochLength(120n); // from epoch 7
      const b7 = b6 + 1_800n;
      const starts: [bigint, bigint][] = [
        [0n, genesis],
        [2n, genesis + 2n * EPOCH],
        [3n, b3],
        [4n, b3 + 600n],
        [5n, b5],
        [6n, b6],
        [7n, b7],
        [9n, b7 + 240n],
      ];
      for (const [epoch, start] of starts) expect(await staking.epochStartTime(epoch), `epoch ${epoch}`).to.equal(start);
      expect(await staking.currentEpoch()).to.equal(6n);
      await at(b7);
      expect(await staking.currentEpoch()).to.equal(7n);
    });
  });

  describe("two length changes in a row, with epochs still in their credit window", () => {
    async function twoEdgesFiveVerifiers() {
      const env = await deployProtocol(conn);
      const v = await registerVerifiers(conn, env, 5);
      const a = await addEdge(conn, env, MIN_SELF_BOND);
      const b = await addEdge(conn, env, 3n * MIN_SELF_BOND);
      return { ...env, ...v, edgeA: a.edgeId, edgeB: b.edgeId };
    }

    it("every epoch in its window keeps its start, and the ended ones can be funded and claimed", async () => {
      const env = await conn.networkHelpers.loadFixture(twoEdgesFiveVerifiers);
      const { staking, settlement } = env;
      const genesis = await staking.epochStartTime(0n);
      const first = CREDIT_WINDOW + 1n; // the first epoch in which both edges' stake earns
      await goToEpoch(conn, staking, first + 1n);
      await staking.setEpochLength(600n); // from first + 2
      await goToEpoch(conn, staking, first + 2n);
      await staking.setEpochLength(1_800n); // from first + 3
      const cur = await staking.currentEpoch();
      for (let epoch = cur - CREDIT_WINDOW; epoch <= cur; epoch++) {
        const want = epoch <= first + 2n ? genesis + epoch * EPOCH : genesis + (first + 2n) * EPOCH + 600n;
        expect(await staking.epochStartTime(epoch), `start of epoch ${epoch}`).to.equal(want);
      }
      for (const epoch of [first, first + 1n]) {
        const t = buildTree(epoch, [
          { edgeId: env.edgeA, stake: MIN_SELF_BOND, quality: QUALITY_ONE },
          { edgeId: env.edgeB, stake: 3n * MIN_SELF_BOND, quality: QUALITY_ONE },
        ]);
        const attestation = { epoch, root: t.root, totalWeight: t.totalWeight };
        await settlement.submitEpoch(attestation, await signAttestation(env.domain, env.keys, attestation));
      }
      await conn.networkHelpers.time.increase(DISPUTE_WINDOW);
      for (const epoch of [first, first + 1n]) {
        const t = buildTree(epoch, [
          { edgeId: env.edgeA, stake: MIN_SELF_BOND, quality: QUALITY_ONE },
          { edgeId: env.edgeB, stake: 3n * MIN_SELF_BOND, quality: QUALITY_ONE },
        ]);
        const attestation = { epoch, root: t.root, totalWeight: t.totalWeight };
        await settlement.fundEpoch(epoch);
        await settlement.claim(attestation, t.claimOf(env.edgeA));
        await settlement.claim(attestation, t.claimOf(env.edgeB));
        const funds = await settlement.epochFunds(epoch);
        expect(funds.emission, `emission of epoch ${epoch}`).to.be.greaterThan(0n);
        expect(funds.claimed, `claimed of epoch ${epoch}`).to.be.greaterThan(funds.emission - 2n);
      }
    });
  });

  describe("constructor", () => {
    const initial = initialParameters;

    type Overrides = Partial<{
      token: string;
      registry: string;
      admin: string;
      genesis: bigint;
      length: bigint;
      window: bigint;
      params: typeof initial;
    }>;

    async function deploy(env: ProtocolEnv, o: Overrides = {}) {
      return conn.ethers.deployContract("EdgeStaking", [
        o.token ?? (await env.token.getAddress()),
        o.registry ?? (await env.registry.getAddress()),
        await env.staking.stakeVotes(), // never bonded to: these tests only read the clock
        o.admin ?? env.admin.address,
        o.genesis ?? 0n,
        o.length ?? EPOCH,
        o.window ?? CREDIT_WINDOW,
        o.params ?? initial,
      ]);
    }

    it("starts epoch 0 at the deployment timestamp when genesis is 0", async () => {
      const env = await setup();
      const now = BigInt(await conn.networkHelpers.time.latest());
      await nextTxAt(conn, now + 10n);
      const clock = await deploy(env, { length: 600n });
      expect(await clock.epochStartTime(0n)).to.equal(now + 10n);
      expect(await clock.epochLength()).to.equal(600n);
      expect(await clock.currentEpoch()).to.equal(0n);
    });

    it("accepts a genesis in the past and counts epochs from it", async () => {
      const env = await setup();
      const now = BigInt(await conn.networkHelpers.time.latest());
      const genesis = now - 5n * 600n - 30n; // the deployment lands 5 epochs and 31 s later
      await nextTxAt(conn, now + 1n);
      const clock = await deploy(env, { genesis, length: 600n });
      expect(await clock.epochStartTime(0n)).to.equal(genesis);
      expect(await clock.currentEpoch()).to.equal(5n);
      expect(await clock.epochStartTime(6n)).to.equal(genesis + 6n * 600n);
    });

    it("reverts with EpochClockGenesisInFuture for a genesis after the deployment block", async () => {
      const env = await setup();
      const now = BigInt(await conn.networkHelpers.time.latest());
      await nextTxAt(conn, now + 10n);
      await expect(deploy(env, { genesis: now + 11n }))
        .to.be.revertedWithCustomError(env.staking, "EpochClockGenesisInFuture")
        .withArgs(now + 11n, now + 10n);
    });

    it("reverts with EpochClockLengthOutOfBounds for a length outside [60 s, 30 days]", async () => {
      const env = await setup();
      for (const length of [0n, MIN_LENGTH - 1n, MAX_LENGTH + 1n]) {
        await expect(deploy(env, { length }))
          .to.be.revertedWithCustomError(env.staking, "EpochClockLengthOutOfBounds")
          .withArgs(length, MIN_LENGTH, MAX_LENGTH);
      }
    });

    it("reverts with StakingCreditWindowOutOfBounds for a window of 0 or above 64", async () => {
      const env = await setup();
      for (const window of [0n, 65n]) {
        await expect(deploy(env, { window })).to.be.revertedWithCustomError(env.staking, "StakingCreditWindowOutOfBounds").withArgs(window);
      }
      const widest = await deploy(env, { window: 64n });
      expect(await widest.rewardCreditWindow()).to.equal(64n);
    });

    it("reverts with StakingZeroAddress for a zero token, registry or admin", async () => {
      const env = await setup();
      for (const o of [{ token: conn.ethers.ZeroAddress }, { registry: conn.ethers.ZeroAddress }, { admin: conn.ethers.ZeroAddress }]) {
        await expect(deploy(env, o)).to.be.revertedWithCustomError(env.staking, "StakingZeroAddress");
      }
    });

    it("reverts with StakingParameterOutOfBounds for an initial parameter out of bounds", async () => {
      const env = await setup();
      // Parameter enum: MinSelfBond 0, UnbondingDelay 1, CommissionDelay 2, ..., MaxSlashBps 5, JailPeriod 6.
      const cases: [Partial<typeof initial>, bigint, bigint, bigint, bigint][] = [
        [{ minSelfBond: 0n }, 0n, 0n, 1n, 10n ** 27n],
        [{ unbondingDelay: 59n }, 1n, 59n, 60n, 365n * 86_400n],
        [{ commissionDelay: 0n }, 2n, 0n, 1n, 365n],
        [{ maxSlashBps: 5_001n }, 5n, 5_001n, 1n, 5_000n],
        [{ jailPeriod: 365n * 86_400n + 1n }, 6n, 365n * 86_400n + 1n, 60n, 365n * 86_400n],
      ];
      for (const [override, parameter, value, min, max] of cases) {
        await expect(deploy(env, { params: { ...initial, ...override } }))
          .to.be.revertedWithCustomError(env.staking, "StakingParameterOutOfBounds")
          .withArgs(parameter, value, min, max);
      }
    });
  });
});
