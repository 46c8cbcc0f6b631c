import { expect } from "chai";

import {
  BURN_BPS,
  COMMISSION_DELAY,
  connect,
  type Connection,
  deployWithEdge,
  EPOCH,
  FIRST_LOSS_BPS,
  goToEpoch,
  JAIL_PERIOD,
  MAX_SLASH_BPS,
  MIN_SELF_BOND,
  TOKEN,
  UNBONDING_DELAY,
} from "../../helpers/protocol.ts";
import { BPS, mulDiv, nextTimestamp, Param, type Staking, Status } from "../../helpers/stakingSlash.ts";

type ParamField =
  | "minSelfBond"
  | "unbondingDelay"
  | "commissionDelay"
  | "operatorFirstLossBps"
  | "slashBurnBps"
  | "maxSlashBps"
  | "jailPeriod";

interface Setter {
  name: string;
  param: bigint;
  field: ParamField;
  initial: bigint;
  /** Whether 0 is a valid value (the lower bound of the basis-point shares). */
  zeroAllowed: boolean;
  set: (staking: Staking, value: bigint) => ReturnType<Staking["setMinSelfBond"]>;
  /** [min, max], from the contract's public constants where it has them. */
  bounds: (staking: Staking) => Promise<[bigint, bigint]>;
}

// Basis-point parameters are bounded by 100% (the contract's BPS constant is private).
const SETTERS: Setter[] = [
  {
    name: "setMinSelfBond",
    zeroAllowed: false,
    param: Param.MinSelfBond,
    field: "minSelfBond",
    initial: MIN_SELF_BOND,
    set: (s, v) => s.setMinSelfBond(v),
    bounds: async (s) => [1n, await s.MAX_MIN_SELF_BOND()],
  },
  {
    name: "setUnbondingDelay",
    zeroAllowed: false,
    param: Param.UnbondingDelay,
    field: "unbondingDelay",
    initial: UNBONDING_DELAY,
    set: (s, v) => s.setUnbondingDelay(v),
    bounds: async (s) => [await s.MIN_UNBONDING_DELAY(), await s.MAX_UNBONDING_DELAY()],
  },
  {
    name: "setCommissionDelay",
    zeroAllowed: false,
    param: Param.CommissionDelay,
    field: "commissionDelay",
    initial: COMMISSION_DELAY,
    set: (s, v) => s.setCommissionDelay(v),
    bounds: async (s) => [1n, await s.MAX_COMMISSION_DELAY()],
  },
  {
    name: "setOperatorFirstLossBps",
    zeroAllowed: true,
    param: Param.OperatorFirstLossBps,
    field: "operatorFirstLossBps",
    initial: FIRST_LOSS_BPS,
    set: (s, v) => s.setOperatorFirstLossBps(v),
    bounds: async () => [0n, BPS],
  },
  {
    name: "setSlashBurnBps",
    zeroAllowed: true,
    param: Param.SlashBurnBps,
    field: "slashBurnBps",
    initial: BURN_BPS,
    set: (s, v) => s.setSlashBurnBps(v),
    bounds: async () => [0n, BPS],
  },
  {
    name: "setMaxSlashBps",
    zeroAllowed: false,
    param: Param.MaxSlashBps,
    field: "maxSlashBps",
    initial: MAX_SLASH_BPS,
    set: (s, v) => s.setMaxSlashBps(v),
    bounds: async (s) => [1n, await s.MAX_SLASH_BPS_LIMIT()],
  },
  {
    name: "setJailPeriod",
    zeroAllowed: false,
    param: Param.JailPeriod,
    field: "jailPeriod",
    initial: JAIL_PERIOD,
    set: (s, v) => s.setJailPeriod(v),
    bounds: async (s) => [await s.MIN_JAIL_PERIOD(), await s.MAX_JAIL_PERIOD()],
  },
];

const FIELDS: ParamField[] = SETTERS.map((s) => s.field);

async function readParameters(staking: Staking): Promise<Record<ParamField, bigint>> {
  const p = await staking.parameters();
  return {
    minSelfBond: p.minSelfBond,
    unbondingDelay: p.unbondingDelay,
    commissionDelay: p.commissionDelay,
    operatorFirstLossBps: p.operatorFirstLossBps,
    slashBurnBps: p.slashBurnBps,
    maxSlashBps: p.maxSlashBps,
    jailPeriod: p.jailPeriod,
  };
}

describe("EdgeStaking governance", () => {
  let conn: Connection;
  before(async () => {
    conn = await connect();
  });

  /** Operator 1,000 and alice 3,000, bonded in epoch 0; now at epoch 4 (both earning). */
  async function governanceFixture() {
    const env = await deployWithEdge(conn);
    await env.staking.connect(env.alice).delegate(env.edgeId, 3_000n * TOKEN);
    await goToEpoch(conn, env.staking, 4n);
    return env;
  }

  it("starts with the deployment parameters", async () => {
    const { staking } = await conn.networkHelpers.loadFixture(governanceFixture);
    const p = await readParameters(staking);
    for (const s of SETTERS) expect(p[s.field], s.field).to.equal(s.initial);
  });

  for (const setter of SETTERS) {
    describe(setter.name, () => {
      it("reverts for a caller without GOVERNANCE_ROLE", async () => {
        const { staking, outsider, slasher, operator, creditor } = await conn.networkHelpers.loadFixture(governanceFixture);
        const role = await staking.GOVERNANCE_ROLE();
        for (const caller of [outsider, slasher, operator, creditor]) {
          await expect(setter.set(staking.connect(caller), setter.initial))
            .to.be.revertedWithCustomError(staking, "AccessControlUnauthorizedAccount")
            .withArgs(caller.address, role);
        }
      });

      if (setter.zeroAllowed) {
        it("accepts zero, its lower bound", async () => {
          const { staking } = await conn.networkHelpers.loadFixture(governanceFixture);
          expect((await setter.bounds(staking))[0]).to.equal(0n);
          await expect(setter.set(staking, 0n)).to.emit(staking, "ParameterChanged").withArgs(setter.param, setter.initial, 0n);
          expect((await readParameters(staking))[setter.field]).to.equal(0n);
        });
      } else {
        it("reverts below the lower bound", async () => {
          const { staking } = await conn.networkHelpers.loadFixture(governanceFixture);
          const [min, max] = await setter.bounds(staking);
          expect(min).to.be.gt(0n);
          await expect(setter.set(staking, min - 1n))
            .to.be.revertedWithCustomError(staking, "StakingParameterOutOfBounds")
            .withArgs(setter.param, min - 1n, min, max);
          await expect(setter.set(staking, 0n))
            .to.be.revertedWithCustomError(staking, "StakingParameterOutOfBounds")
            .withArgs(setter.param, 0n, min, max);
        });
      }

      it("reverts above the upper bound", async () => {
        const { staking } = await conn.networkHelpers.loadFixture(governanceFixture);
        const [min, max] = await setter.bounds(staking);
        await expect(setter.set(staking, max + 1n))
          .to.be.revertedWithCustomError(staking, "StakingParameterOutOfBounds")
          .withArgs(setter.param, max + 1n, min, max);
      });

      it("accepts both bounds, emits ParameterChanged and changes only its own parameter", async () => {
        const { staking } = await conn.networkHelpers.loadFixture(governanceFixture);
        const [min, max] = await setter.bounds(staking);
        const before = await readParameters(staking);
        await expect(setter.set(staking, min)).to.emit(staking, "ParameterChanged").withArgs(setter.param, setter.initial, min);
        expect((await readParameters(staking))[setter.field]).to.equal(min);
        await expect(setter.set(staking, max)).to.emit(staking, "ParameterChanged").withArgs(setter.param, min, max);
        const after = await readParameters(staking);
        for (const field of FIELDS) expect(after[field], field).to.equal(field === setter.field ? max : before[field]);
      });
    });
  }

  describe("new parameter values apply to the next operation", () => {
    it("setMinSelfBond: changes the edge status and the unjail requirement", async () => {
      const env = await conn.networkHelpers.loadFixture(governanceFixture);
      const { staking, operator, slasher, edgeId } = env;
      expect(await staking.edgeStatus(edgeId)).to.equal(Status.Active);
      await staking.setMinSelfBond(MIN_SELF_BOND + 1n);
      expect(await staking.edgeStatus(edgeId)).to.equal(Status.Registered);
      await staking.setMinSelfBond(MIN_SELF_BOND);
      expect(await staking.edgeStatus(edgeId)).to.equal(Status.Active);

      // 1% of 4,000 = 40, all taken from the operator's 1,000 as first loss: 960 left.
      await staking.connect(slasher).slash(edgeId, 4n, 100n, slasher.address);
      const bond = MIN_SELF_BOND - mulDiv(MIN_SELF_BOND + 3_000n * TOKEN, 100n, BPS);
      expect(await staking.selfBond(edgeId)).to.equal(bond);
      await conn.networkHelpers.time.increase(JAIL_PERIOD);
      await expect(staking.connect(operator).unjail(edgeId))
        .to.be.revertedWithCustomError(staking, "StakingSelfBondBelowMinimum")
        .withArgs(edgeId, bond, MIN_SELF_BOND);
      await staking.setMinSelfBond(bond);
      await expect(staking.connect(operator).unjail(edgeId)).to.emit(staking, "Unjailed");
      expect(await staking.edgeStatus(edgeId)).to.equal(Status.Active);
    });

    it("setUnbondingDelay: the next unbonding matures that long after the end of its epoch", async () => {
      const { staking, alice, edgeId } = await conn.networkHelpers.loadFixture(governanceFixture);
      await staking.setUnbondingDelay(600n);
      const genesis = await staking.epochStartTime(0n);
      await expect(staking.connect(alice).unbond(edgeId, 100n * TOKEN))
        .to.emit(staking, "Unbonded")
        .withArgs(edgeId, alice.address, 0n, 100n * TOKEN, 100n * TOKEN, genesis + 5n * EPOCH + 600n);
    });

    it("setCommissionDelay: the next commission change applies after the new delay", async () => {
      const { staking, operator, edgeId } = await conn.networkHelpers.loadFixture(governanceFixture);
      await staking.setCommissionDelay(5n);
      const cur = await staking.currentEpoch();
      await expect(staking.connect(operator).setCommission(edgeId, 1_000n))
        .to.emit(staking, "CommissionChangeScheduled")
        .withArgs(edgeId, 0n, 1_000n, cur + 5n);
      expect(await staking.commissionAt(edgeId, cur + 4n)).to.equal(0n);
      expect(await staking.commissionAt(edgeId, cur + 5n)).to.equal(1_000n);
    });

    it("setOperatorFirstLossBps: the next slash takes the new share of the self-bond first", async () => {
      const { staking, slasher, edgeId } = await conn.networkHelpers.loadFixture(governanceFixture);
      // 20% of 4,000 = 800: with 100% first loss the operator's 1,000 absorbs it all (at 50% only 500).
      await staking.setOperatorFirstLossBps(BPS);
      await expect(staking.connect(slasher).slash(edgeId, 4n, 2_000n, slasher.address))
        .to.emit(staking, "SlashDistributed")
        .withArgs(edgeId, 800n * TOKEN, 0n, 0n);
    });

    it("setSlashBurnBps: the next slash burns the new share", async () => {
      const { staking, token, slasher, outsider, edgeId } = await conn.networkHelpers.loadFixture(governanceFixture);
      await staking.setSlashBurnBps(2_000n);
      const total = 800n * TOKEN;
      const supply = await token.totalSupply();
      await expect(staking.connect(slasher).slash(edgeId, 4n, 2_000n, outsider.address))
        .to.emit(staking, "Slashed")
        .withArgs(edgeId, 4n, outsider.address, 2_000n, total, 160n * TOKEN, 640n * TOKEN);
      expect(await token.totalSupply()).to.equal(supply - 160n * TOKEN);
    });

    it("setMaxSlashBps: the next slash is bounded by the new maximum", async () => {
      const { staking, slasher, edgeId } = await conn.networkHelpers.loadFixture(governanceFixture);
      await expect(staking.connect(slasher).slash(edgeId, 4n, 5_000n, slasher.address))
        .to.be.revertedWithCustomError(staking, "StakingSlashFractionOutOfBounds")
        .withArgs(5_000n, MAX_SLASH_BPS);
      await staking.setMaxSlashBps(1_000n);
      await expect(staking.connect(slasher).slash(edgeId, 4n, 1_001n, slasher.address))
        .to.be.revertedWithCustomError(staking, "StakingSlashFractionOutOfBounds")
        .withArgs(1_001n, 1_000n);
      await staking.setMaxSlashBps(5_000n);
      await expect(staking.connect(slasher).slash(edgeId, 4n, 5_000n, slasher.address))
        .to.emit(staking, "Slashed")
        .withArgs(edgeId, 4n, slasher.address, 5_000n, 2_000n * TOKEN, 1_000n * TOKEN, 1_000n * TOKEN);
    });

    it("setJailPeriod: the next slash jails for the new period", async () => {
      const { staking, slasher, edgeId } = await conn.networkHelpers.loadFixture(governanceFixture);
      await staking.setJailPeriod(600n);
      const t = await nextTimestamp(conn);
      await expect(staking.connect(slasher).slash(edgeId, 4n, 100n, slasher.address))
        .to.emit(staking, "Jailed")
        .withArgs(edgeId, 4n, t + 600n);
    });
  });

  describe("setEpochLength", () => {
    it("reverts for a caller without GOVERNANCE_ROLE", async () => {
      const { staking, outsider, slasher } = await conn.networkHelpers.loadFixture(governanceFixture);
      const role = await staking.GOVERNANCE_ROLE();
      for (const caller of [outsider, slasher]) {
        await expect(staking.connect(caller).setEpochLength(1_800n))
          .to.be.revertedWithCustomError(staking, "AccessControlUnauthorizedAccount")
          .withArgs(caller.address, role);
      }
    });

    it("reverts outside [MIN_EPOCH_LENGTH, MAX_EPOCH_LENGTH] and accepts both bounds", async () => {
      const { staking } = await conn.networkHelpers.loadFixture(governanceFixture);
      const min = await staking.MIN_EPOCH_LENGTH();
      const max = await staking.MAX_EPOCH_LENGTH();
      await expect(staking.setEpochLength(min - 1n))
        .to.be.revertedWithCustomError(staking, "EpochClockLengthOutOfBounds")
        .withArgs(min - 1n, min, max);
      await expect(staking.setEpochLength(max + 1n))
        .to.be.revertedWithCustomError(staking, "EpochClockLengthOutOfBounds")
        .withArgs(max + 1n, min, max);
      await expect(staking.setEpochLength(min)).to.emit(staking, "EpochLengthScheduled");
      await expect(staking.setEpochLength(max)).to.emit(staking, "EpochLengthScheduled");
    });

    it("schedules the new length from the next epoch, which the next unbonding uses", async () => {
      const { staking, alice, edgeId } = await conn.networkHelpers.loadFixture(governanceFixture);
      const genesis = await staking.epochStartTime(0n);
      const start5 = genesis + 5n * EPOCH;
      await expect(staking.setEpochLength(1_800n)).to.emit(staking, "EpochLengthScheduled").withArgs(5n, start5, 1_800n);
      // The current epoch keeps its announced end.
      expect(await staking.epochLength()).to.equal(EPOCH);
      expect(await staking.epochStartTime(5n)).to.equal(start5);
      expect(await staking.epochStartTime(6n)).to.equal(start5 + 1_800n);
      await goToEpoch(conn, staking, 5n);
      expect(await staking.epochLength()).to.equal(1_800n);
      // Unbonding in epoch 5 matures UNBONDING_DELAY after its (now shorter) end.
      await expect(staking.connect(alice).unbond(edgeId, 100n * TOKEN))
        .to.emit(staking, "Unbonded")
        .withArgs(edgeId, alice.address, 0n, 100n * TOKEN, 100n * TOKEN, start5 + 1_800n + UNBONDING_DELAY);
    });
  });

  describe("access control", () => {
    it("lets the admin grant SLASHER_ROLE, and a revoked slasher can no longer slash", async () => {
      const { staking, admin, slasher, outsider, edgeId } = await conn.networkHelpers.loadFixture(governanceFixture);
      const role = await staking.SLASHER_ROLE();
      await expect(staking.grantRole(role, outsider.address))
        .to.emit(staking, "RoleGranted")
        .withArgs(role, outsider.address, admin.address);
      await expect(staking.connect(outsider).slash(edgeId, 4n, 100n, outsider.address)).to.emit(staking, "Slashed");
      await expect(staking.revokeRole(role, slasher.address))
        .to.emit(staking, "RoleRevoked")
        .withArgs(role, slasher.address, admin.address);
      expect(await staking.hasRole(role, slasher.address)).to.equal(false);
      await expect(staking.connect(slasher).slash(edgeId, 4n, 100n, slasher.address))
        .to.be.revertedWithCustomError(staking, "AccessControlUnauthorizedAccount")
        .withArgs(slasher.address, role);
    });

    it("lets the admin grant and revoke REWARD_CREDITOR_ROLE", async () => {
      const { staking, admin, creditor, outsider, edgeId } = await conn.networkHelpers.loadFixture(governanceFixture);
      const role = await staking.REWARD_CREDITOR_ROLE();
      await expect(staking.grantRole(role, outsider.address))
        .to.emit(staking, "RoleGranted")
        .withArgs(role, outsider.address, admin.address);
      await expect(staking.connect(outsider).depositRewardReserve(100n * TOKEN))
        .to.emit(staking, "RewardReserveDeposited")
        .withArgs(outsider.address, 100n * TOKEN);
      await expect(staking.connect(outsider).creditReward(edgeId, 3n, 10n * TOKEN)).to.emit(staking, "RewardCredited");
      await expect(staking.revokeRole(role, creditor.address))
        .to.emit(staking, "RoleRevoked")
        .withArgs(role, creditor.address, admin.address);
      await expect(staking.connect(creditor).creditReward(edgeId, 3n, 10n * TOKEN))
        .to.be.revertedWithCustomError(staking, "AccessControlUnauthorizedAccount")
        .withArgs(creditor.address, role);
      await expect(staking.connect(creditor).depositRewardReserve(TOKEN))
        .to.be.revertedWithCustomError(staking, "AccessControlUnauthorizedAccount")
        .withArgs(creditor.address, role);
    });

    it("does not let anyone but the admin grant roles", async () => {
      const { staking, slasher, creditor, outsider } = await conn.networkHelpers.loadFixture(governanceFixture);
      const adminRole = await staking.DEFAULT_ADMIN_ROLE();
      for (const [caller, role] of [
        [outsider, await staking.SLASHER_ROLE()],
        [slasher, await staking.GOVERNANCE_ROLE()],
        [creditor, await staking.SLASHER_ROLE()],
      ] as const) {
        await expect(staking.connect(caller).grantRole(role, caller.address))
          .to.be.revertedWithCustomError(staking, "AccessControlUnauthorizedAccount")
          .withArgs(caller.address, adminRole);
      }
    });

    it("lets a new governance account set parameters and locks out a revoked one", async () => {
      const { staking, admin, outsider } = await conn.networkHelpers.loadFixture(governanceFixture);
      const role = await staking.GOVERNANCE_ROLE();
      await staking.grantRole(role, outsider.address);
      await expect(staking.connect(outsider).setJailPeriod(600n))
        .to.emit(staking, "ParameterChanged")
        .withArgs(Param.JailPeriod, JAIL_PERIOD, 600n);
      await staking.revokeRole(role, admin.address);
      await expect(staking.setJailPeriod(700n))
        .to.be.revertedWithCustomError(staking, "AccessControlUnauthorizedAccount")
        .withArgs(admin.address, role);
    });

    it("rejects reserve and credit calls from every signer without REWARD_CREDITOR_ROLE", async () => {
      const env = await conn.networkHelpers.loadFixture(governanceFixture);
      const { staking, creditor, edgeId } = env;
      const role = await staking.REWARD_CREDITOR_ROLE();
      await staking.connect(creditor).depositRewardReserve(100n * TOKEN);
      const others = [env.admin, env.operator, env.alice, env.bob, env.carol, env.slasher, env.outsider];
      for (const caller of others) {
        expect(await staking.hasRole(role, caller.address)).to.equal(false);
        const s = staking.connect(caller);
        await expect(s.depositRewardReserve(TOKEN))
          .to.be.revertedWithCustomError(staking, "AccessControlUnauthorizedAccount")
          .withArgs(caller.address, role);
        await expect(s.withdrawRewardReserve(caller.address, TOKEN))
          .to.be.revertedWithCustomError(staking, "AccessControlUnauthorizedAccount")
          .withArgs(caller.address, role);
        await expect(s.creditReward(edgeId, 3n, TOKEN))
          .to.be.revertedWithCustomError(staking, "AccessControlUnauthorizedAccount")
          .withArgs(caller.address, role);
      }
      // The creditor itself can do all three.
      await expect(staking.connect(creditor).withdrawRewardReserve(creditor.address, TOKEN)).to.emit(staking, "RewardReserveWithdrawn");
      await expect(staking.connect(creditor).creditReward(edgeId, 3n, TOKEN)).to.emit(staking, "RewardCredited");
    });

    it("rejects slash from every signer without SLASHER_ROLE", async () => {
      const env = await conn.networkHelpers.loadFixture(governanceFixture);
      const { staking, edgeId } = env;
      const role = await staking.SLASHER_ROLE();
      const others = [env.admin, env.operator, env.alice, env.bob, env.carol, env.creditor, env.outsider];
      for (const caller of others) {
        expect(await staking.hasRole(role, caller.address)).to.equal(false);
        await expect(staking.connect(caller).slash(edgeId, 4n, 100n, caller.address))
          .to.be.revertedWithCustomError(staking, "AccessControlUnauthorizedAccount")
          .withArgs(caller.address, role);
      }
      await expect(staking.connect(env.slasher).slash(edgeId, 4n, 100n, env.slasher.address)).to.emit(staking, "Slashed");
    });
  });
});
