import { buildModule } from "@nomicfoundation/hardhat-ignition/modules";

import EdgeStakingModule from "./EdgeStaking.ts";

/**
 * The compute market: dApps' escrows, sessions and vouchers paying edges. It reads operators
 * from the registry and pays in the token. Defaults: a 1% protocol fee, burned; a day's thaw.
 */
export default buildModule("ComputeMarket", (m) => {
  const { token, registry } = m.useModule(EdgeStakingModule);
  const admin = m.getParameter("admin", m.getAccount(0));
  const feeBps = m.getParameter("feeBps", 100n);
  const thawingPeriod = m.getParameter("thawingPeriod", 86_400n);
  const market = m.contract("ComputeMarket", [token, registry, admin, feeBps, thawingPeriod]);
  return { market };
});
