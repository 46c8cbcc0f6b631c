// The configuration files the devnet writes for its services, read back as the services read them.
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

import { expect } from "chai";

import { loadEdgeConfig } from "../../edge/config.ts";
import { edgeConfig } from "../../devnet/services.ts";

describe("devnet service configuration", () => {
  it("puts an edge's data where startEdge empties it: under the repository, wherever its configuration file is", () => {
    const root = mkdtempSync(path.join(tmpdir(), "devnet-root-"));
    mkdirSync(path.join(root, "cache"));
    const configFile = path.join(root, "cache", "edge-1.json");
    const launch = {
      name: "edge #1",
      root,
      edgeId: 1n,
      host: "127.0.0.1",
      port: 8080,
      rpcUrl: "http://127.0.0.1:8545",
      addresses: {
        registry: "0x0000000000000000000000000000000000000001",
        staking: "0x0000000000000000000000000000000000000002",
        market: "0x0000000000000000000000000000000000000003",
      },
      signingKey: "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
      model: "tideway/reference-1",
      dataDir: "cache/edge-1",
      configFile,
      logFile: path.join(root, "cache", "edge-1.log"),
    } as const;
    writeFileSync(configFile, JSON.stringify(edgeConfig(launch)));
    expect(loadEdgeConfig(configFile, {}).dataDir).to.equal(path.join(root, "cache", "edge-1"));
  });
});
