import { buildModule } from "@nomicfoundation/hardhat-ignition/modules";

import EdgeStakingModule from "./EdgeStaking.ts";
import EdgeTokenModule from "./EdgeToken.ts";

const ANYONE = "0x0000000000000000000000000000000000000000";

/**
 * Governor + TimelockController on EdgeToken votes and the votes of bonded stake. The governor
 * is the timelock's only proposer and canceller; anyone may execute a passed, queued proposal.
 * The deploying account stays the timelock's admin only until Protocol.ts renounces it.
 *
 * Defaults: proposals wait a day before voting, vote for a week, need 100,000 EDGE of votes to
 * be made and 4% of what can vote (the votable token supply plus bonded stake) to reach
 * quorum, then wait two days in the timelock.
 */
export default buildModule("Governance", (m) => {
  const { token } = m.useModule(EdgeTokenModule);
  const { stakeVotes } = m.useModule(EdgeStakingModule);
  const deployer = m.getAccount(0);
  const timelock = m.contract("TimelockController", [m.getParameter("timelockDelay", 2n * 86_400n), [], [ANYONE], deployer]);
  const governor = m.contract("EdgeGovernor", [
    token,
    stakeVotes,
    timelock,
    m.getParameter("votingDelay", 86_400n),
    m.getParameter("votingPeriod", 7n * 86_400n),
    m.getParameter("proposalThreshold", 100_000n * 10n ** 18n),
    m.getParameter("quorumPercent", 4n),
  ]);
  const proposerRole = m.staticCall(timelock, "PROPOSER_ROLE", []);
  const cancellerRole = m.staticCall(timelock, "CANCELLER_ROLE", []);
  m.call(timelock, "grantRole", [proposerRole, governor], { id: "grantProposer" });
  m.call(timelock, "grantRole", [cancellerRole, governor], { id: "grantCanceller" });
  return { timelock, governor };
});
