import { buildModule } from "@nomicfoundation/hardhat-ignition/modules";

/** Edge identities; starts in the trusted phase unless told otherwise. */
export default buildModule("EdgeRegistry", (m) => {
  const admin = m.getParameter("admin", m.getAccount(0));
  const trustedPhase = m.getParameter("trustedPhase", true);
  const registry = m.contract("EdgeRegistry", [admin, trustedPhase]);
  return { registry };
});
