import { buildModule } from "@nomicfoundation/hardhat-ignition/modules";
import { keccak256, toHex, zeroHash } from "viem";

import ContractsModule from "./Contracts.ts";
import GovernanceModule from "./Governance.ts";

const GOVERNANCE_ROLE = keccak256(toHex("GOVERNANCE_ROLE"));
const DEFAULT_ADMIN_ROLE = zeroHash;

/**
 * The whole protocol, wired, with governance in control: every contract's admin and
 * governance roles go to the timelock, and the deploying account renounces all of its roles
 * (the timelock's admin role included), so that after deployment only proposals passed by
 * token holders can change a parameter. `npm start` deploys this module.
 */
export default buildModule("Protocol", (m) => {
  const contracts = m.useModule(ContractsModule);
  const { timelock, governor } = m.useModule(GovernanceModule);
  const deployer = m.getAccount(0);

  // Grants first, for every contract; renunciations only once all grants and all wiring are done.
  const grants = [];
  for (const [name, contract] of Object.entries(contracts)) {
    for (const [roleName, role] of [
      ["Admin", DEFAULT_ADMIN_ROLE],
      ["Governance", GOVERNANCE_ROLE],
    ] as const) {
      grants.push(m.call(contract, "grantRole", [role, timelock], { id: `grant${roleName}To${name}`, after: [ContractsModule] }));
    }
  }
  for (const [name, contract] of Object.entries(contracts)) {
    for (const [roleName, role] of [
      ["Governance", GOVERNANCE_ROLE],
      ["Admin", DEFAULT_ADMIN_ROLE],
    ] as const) {
      m.call(contract, "renounceRole", [role, deployer], { id: `renounce${roleName}On${name}`, after: grants });
    }
  }
  m.call(timelock, "renounceRole", [DEFAULT_ADMIN_ROLE, deployer], {
    id: "renounceTimelockAdmin",
    after: [GovernanceModule, ...grants],
  });
  return { ...contracts, timelock, governor };
});
