import { buildModule } from "@nomicfoundation/hardhat-ignition/modules";

/** The Tideway token: the whole initial supply goes to the treasury. */
export default buildModule("EdgeToken", (m) => {
  const admin = m.getParameter("admin", m.getAccount(0));
  const treasury = m.getParameter("treasury", m.getAccount(0));
  const initialSupply = m.getParameter("initialSupply", 1_000_000_000n * 10n ** 18n);
  const token = m.contract("EdgeToken", [treasury, initialSupply, admin]);
  return { token };
});
