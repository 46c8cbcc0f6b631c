import { buildModule } from "@nomicfoundation/hardhat-ignition/modules";

import ComputeMarketModule from "./ComputeMarket.ts";
import EpochSettlementModule from "./EpochSettlement.ts";

/**
 * Every protocol contract, deployed and wired (the token told which of them hold tokens that
 * cannot vote), with every parameter role still held by
 * `admin` (the deploying account by default). Protocol.ts hands those roles to governance;
 * unit tests use this module directly so that a test account can act as governance.
 */
export default buildModule("Contracts", (m) => {
  const { token, registry, staking, verifierSet, settlement } = m.useModule(EpochSettlementModule);
  const { market } = m.useModule(ComputeMarketModule);
  // The tokens these contracts hold (stake, bonds, reserves, escrows) cannot vote: the governor's
  // quorum is a share of the rest.
  for (const [name, holder] of Object.entries({ staking, verifierSet, settlement, market })) {
    m.call(token, "setNonVoting", [holder, true], { id: `nonVoting_${name}` });
  }
  return { token, registry, staking, verifierSet, settlement, market };
});
