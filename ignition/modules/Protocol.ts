import { buildModule } from "@nomicfoundation/hardhat-ignition/modules";

import EdgeStakingModule from "./EdgeStaking.js";

/**
 * The whole protocol, wired. Issue 3 adds settlement, the verifier set, the compute market and
 * governance here, and hands every role to the timelock.
 */
export default buildModule("Protocol", (m) => {
  const { token, registry, staking } = m.useModule(EdgeStakingModule);
  return { token, registry, staking };
});
