import { buildModule } from "@nomicfoundation/hardhat-ignition/modules";

import EdgeRegistryModule from "./EdgeRegistry.ts";
import EdgeTokenModule from "./EdgeToken.ts";

/**
 * GPoS staking and the epoch clock, with the votes of bonded stake (StakeVotes, bound to the
 * staking contract right after it is deployed). Defaults suit a production network (daily
 * epochs, a two-week unbonding delay); `ignition/parameters/local.json` shortens them for
 * `npm start`.
 */
export default buildModule("EdgeStaking", (m) => {
  const { token } = m.useModule(EdgeTokenModule);
  const { registry } = m.useModule(EdgeRegistryModule);
  const admin = m.getParameter("admin", m.getAccount(0));
  const genesis = m.getParameter("genesis", 0n);
  const epochLength = m.getParameter("epochLength", 86_400n);
  const rewardCreditWindow = m.getParameter("rewardCreditWindow", 3n);
  const stakeVotes = m.contract("StakeVotes", [m.getAccount(0)]);
  const staking = m.contract("EdgeStaking", [
    token,
    registry,
    stakeVotes,
    admin,
    genesis,
    epochLength,
    rewardCreditWindow,
    {
      minSelfBond: m.getParameter("minSelfBond", 10_000n * 10n ** 18n),
      unbondingDelay: m.getParameter("unbondingDelay", 14n * 86_400n),
      commissionDelay: m.getParameter("commissionDelay", 7n),
      operatorFirstLossBps: m.getParameter("operatorFirstLossBps", 5_000n),
      slashBurnBps: m.getParameter("slashBurnBps", 5_000n),
      maxSlashBps: m.getParameter("maxSlashBps", 3_000n),
      jailPeriod: m.getParameter("jailPeriod", 3n * 86_400n),
    },
  ]);
  m.call(stakeVotes, "bind", [staking]);
  return { token, registry, staking, stakeVotes };
});
