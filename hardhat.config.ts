import { createRequire } from "node:module";
import path from "node:path";

import hardhatToolboxMochaEthers from "@nomicfoundation/hardhat-toolbox-mocha-ethers";
import { configVariable, defineConfig } from "hardhat/config";

import { tasks } from "./scripts/tasks/index.ts";

// Hardhat cannot download solc on these machines (HHE905), so compile with the soljson.js
// shipped in the pinned `solc` npm package. The version below must match package.json.
const require = createRequire(import.meta.url);
const SOLC_VERSION = "0.8.30";
const solcPackageVersion: string = require("solc/package.json").version;
if (solcPackageVersion !== SOLC_VERSION) {
  throw new Error(`solc npm package is ${solcPackageVersion}, hardhat.config.ts expects ${SOLC_VERSION}: run npm ci`);
}
const soljson = path.join(path.dirname(require.resolve("solc/package.json")), "soljson.js");

const optimizer = { enabled: true, runs: 1_000 };
const compiler = { version: SOLC_VERSION, path: soljson, settings: { optimizer, evmVersion: "prague" } };
// The contracts on the settlement path (called once per epoch and once per edge per epoch) are
// compiled through the IR pipeline, optimised for runtime: it takes ~1,800 gas off submitEpoch and
// ~850 off each claim, which keeps both within their budgets (see bench/results/gas.json).
const settlementPath = { ...compiler, settings: { ...compiler.settings, optimizer: { enabled: true, runs: 100_000 }, viaIR: true } };
const profile = {
  compilers: [compiler],
  overrides: {
    "contracts/settlement/EpochSettlement.sol": settlementPath,
    "contracts/verifiers/VerifierSet.sol": settlementPath,
  },
};

export default defineConfig({
  plugins: [hardhatToolboxMochaEthers],
  tasks,
  solidity: {
    profiles: {
      default: profile,
      production: profile,
    },
    // Deployed by Ignition as is (the governance timelock).
    npmFilesToBuild: ["@openzeppelin/contracts/governance/TimelockController.sol"],
  },
  paths: {
    tests: { mocha: "test", solidity: "test" },
  },
  test: {
    // 500 runs each within `npm test`'s time budget; a deeper campaign raises them:
    // TIDEWAY_FUZZ_RUNS=10000 TIDEWAY_INVARIANT_RUNS=5000 npm run test:sol
    solidity: {
      fuzz: { runs: Number(process.env.TIDEWAY_FUZZ_RUNS ?? 500) },
      invariant: { runs: Number(process.env.TIDEWAY_INVARIANT_RUNS ?? 500), depth: 32, failOnRevert: false },
    },
    mocha: { timeout: 120_000 },
  },
  networks: {
    hardhatMainnet: { type: "edr-simulated", chainType: "l1" },
    // `npm start`'s node: no accounts list, the node's unlocked accounts sign.
    localhost: { type: "http", chainType: "l1", url: "http://127.0.0.1:8545" },
    // Any other Tideway network: the RPC URL and the signing key come from the Hardhat keystore
    // (`npx hardhat keystore set TIDEWAY_PRIVATE_KEY`) or, failing that, environment variables.
    tideway: {
      type: "http",
      chainType: "l1",
      url: configVariable("TIDEWAY_RPC_URL"),
      accounts: [configVariable("TIDEWAY_PRIVATE_KEY")],
    },
    sepolia: {
      type: "http",
      chainType: "l1",
      url: configVariable("SEPOLIA_RPC_URL"),
      accounts: [configVariable("SEPOLIA_PRIVATE_KEY")],
    },
  },
});
