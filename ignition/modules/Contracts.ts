import { buildModule } from "@nomicfoundation/hardhat-ignition/modules";

import ComputeMarketModule from "./ComputeMarket.ts";
import EpochSettlementModule from "./EpochSettlement.ts";

/**
 * Every protocol contract, deployed and wired, with every parameter role still held by
 * `admin` (the deploying account by default). Protocol.ts hands those roles to governance;
 * unit tests use this module directly so that a test account can act as governance.
 */
export default buildModule("Contracts", (m) => {
  const { token, registry, staking, verifierSet, settlement } = m.useModule(EpochSettlementModule);
  const { market } = m.useModule(ComputeMarketModule);
  return { token, registry, staking, verifierSet, settlement, market };
});
