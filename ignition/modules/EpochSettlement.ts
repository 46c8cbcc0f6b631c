import { buildModule } from "@nomicfoundation/hardhat-ignition/modules";

import EdgeStakingModule from "./EdgeStaking.ts";
import VerifierSetModule from "./VerifierSet.ts";

const RATE_ONE = 10n ** 9n; // 100% in the settlement's rates

/**
 * Epoch settlement, wired: it becomes the token's minter, the staking contract's slasher and
 * reward creditor, and the verifier set's slasher. The wiring calls are sent by the deploying
 * account, which must hold the admin roles at this point (Protocol.ts hands them on afterwards).
 *
 * Defaults (see the README): a day's dispute window, inflation between 2% and 10% a year
 * starting at 5%, moving 0.05 points an epoch towards a 50% bonding rate; slashes of 10% for a
 * wrong answer or failed audit, 2% for being unresponsive, 1% for a capacity shortfall; faults
 * reported at most 2 epochs after their epoch (verifiers report within the next one; the bound
 * must not exceed the staking unbonding delay in epochs); a guardian, once governance appoints
 * one, may resolve a frozen epoch 6 hours after it froze (governance at any time).
 */
export default buildModule("EpochSettlement", (m) => {
  const { token, registry, staking } = m.useModule(EdgeStakingModule);
  const { verifierSet } = m.useModule(VerifierSetModule);
  const admin = m.getParameter("admin", m.getAccount(0));
  const settlement = m.contract("EpochSettlement", [
    token,
    staking,
    verifierSet,
    admin,
    {
      disputeWindow: m.getParameter("disputeWindow", 86_400n),
      minInflation: m.getParameter("minInflation", (2n * RATE_ONE) / 100n),
      maxInflation: m.getParameter("maxInflation", (10n * RATE_ONE) / 100n),
      inflationStep: m.getParameter("inflationStep", (5n * RATE_ONE) / 10_000n),
      targetBondingRate: m.getParameter("targetBondingRate", RATE_ONE / 2n),
      maxFaultAge: m.getParameter("maxFaultAge", 2n),
      guardianDelay: m.getParameter("guardianDelay", 6n * 3_600n),
    },
    m.getParameter("initialInflation", (5n * RATE_ONE) / 100n),
    m.getParameter("faultSlashBps", [1_000n, 200n, 100n, 1_000n]),
  ]);
  m.call(token, "setMinter", [settlement]);
  const slasherRole = m.staticCall(staking, "SLASHER_ROLE", []);
  const creditorRole = m.staticCall(staking, "REWARD_CREDITOR_ROLE", []);
  m.call(staking, "grantRole", [slasherRole, settlement], { id: "grantStakingSlasher" });
  m.call(staking, "grantRole", [creditorRole, settlement], { id: "grantStakingCreditor" });
  const verifierSlasherRole = m.staticCall(verifierSet, "SLASHER_ROLE", []);
  m.call(verifierSet, "grantRole", [verifierSlasherRole, settlement], { id: "grantVerifierSlasher" });
  return { token, registry, staking, verifierSet, settlement };
});
