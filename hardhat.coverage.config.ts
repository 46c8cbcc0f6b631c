// The configuration `npm test` runs the contracts' TypeScript tests with under `--coverage`:
// the project's own, with the build (which coverage instruments) kept apart from the plain one,
// so that the suites running beside it never load an instrumented artifact.
import config from "./hardhat.config.ts";

export default {
  ...config,
  paths: { ...config.paths, artifacts: "cache/coverage/artifacts", cache: "cache/coverage/cache" },
};
