import { buildModule } from "@nomicfoundation/hardhat-ignition/modules";

import EdgeTokenModule from "./EdgeToken.ts";

/** The verifier set; starts in the trusted phase (governance approves verifiers). */
export default buildModule("VerifierSet", (m) => {
  const { token } = m.useModule(EdgeTokenModule);
  const admin = m.getParameter("admin", m.getAccount(0));
  const verifierSet = m.contract("VerifierSet", [
    token,
    admin,
    m.getParameter("trustedPhase", true),
    {
      minBond: m.getParameter("minBond", 50_000n * 10n ** 18n),
      exitDelay: m.getParameter("exitDelay", 21n * 86_400n),
      quorum: m.getParameter("quorum", 2n),
      slashBps: m.getParameter("slashBps", 10_000n),
      reporterBps: m.getParameter("reporterBps", 1_000n),
    },
  ]);
  return { verifierSet };
});
