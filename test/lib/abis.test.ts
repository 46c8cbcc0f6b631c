// lib/protocol/abis.ts and scripts/gen-abis.ts: the committed ABIs are what the generator writes
// from the current artifacts (a contract change without regenerating fails here), the generator
// finds, skips and rejects artifacts as documented, and viem types and encodes with the ABIs.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

import { expect } from "chai";
import { Interface } from "ethers";
import { createPublicClient, custom, encodeFunctionData, getAddress, toFunctionSelector } from "viem";

import { ABIS, ABIS_NOT_GENERATED, edgeRegistryAbi, edgeStakingAbi, edgeTokenAbi, protocolAbi } from "../../lib/protocol/index.ts";
import { ABI_CONTRACTS, abiConstName, DEFAULT_ARTIFACTS_DIR, findArtifact, GENERATED_FILE, renderAbis } from "../../scripts/gen-abis.ts";
import { connect, deployProtocol, type Connection } from "../helpers/protocol.ts";

function artifactAbi(name: string): unknown[] {
  const file = findArtifact(DEFAULT_ARTIFACTS_DIR, name);
  if (file === undefined) throw new Error(`no artifact for ${name}`);
  return (JSON.parse(readFileSync(file, "utf8")) as { abi: unknown[] }).abi;
}

describe("lib/protocol abis", () => {
  describe("abis.generated.ts", () => {
    it("is what scripts/gen-abis.ts generates from the current artifacts (regenerate and commit when this fails)", () => {
      const { text } = renderAbis();
      expect(
        readFileSync(GENERATED_FILE, "utf8") === text,
        "lib/protocol/abis.generated.ts is stale: run `node scripts/gen-abis.ts`",
      ).to.equal(true);
    });

    it("holds each compiled contract's artifact ABI unchanged, and lists the others as not generated", () => {
      for (const name of ABI_CONTRACTS) {
        if (findArtifact(DEFAULT_ARTIFACTS_DIR, name) === undefined) {
          expect(ABIS_NOT_GENERATED as readonly string[]).to.include(name);
          expect(Object.hasOwn(ABIS, name)).to.equal(false);
        } else {
          expect(Object.hasOwn(ABIS, name)).to.equal(true);
          expect(JSON.parse(JSON.stringify(ABIS[name as keyof typeof ABIS]))).to.deep.equal(artifactAbi(name));
        }
      }
      expect(Object.keys(ABIS).length + ABIS_NOT_GENERATED.length).to.equal(ABI_CONTRACTS.length);
      // Token and staking, the first contracts deployed, are always there.
      expect(protocolAbi("EdgeToken")).to.equal(edgeTokenAbi);
      expect(protocolAbi("EdgeStaking")).to.equal(edgeStakingAbi);
    });
  });

  describe("renderAbis", () => {
    let dir: string;
    const artifact = (name: string, abi: unknown[]) => JSON.stringify({ contractName: name, sourceName: `contracts/x/${name}.sol`, abi });
    const put = (relative: string, text: string) => {
      mkdirSync(path.dirname(path.join(dir, relative)), { recursive: true });
      writeFileSync(path.join(dir, relative), text);
    };
    beforeEach(() => {
      dir = mkdtempSync(path.join(tmpdir(), "tideway-abis-"));
    });
    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    it("generates the contracts found under contracts/ and @openzeppelin/, in ABI_CONTRACTS order, and lists the rest as missing", () => {
      const fn = { type: "function", name: "f", inputs: [], outputs: [], stateMutability: "view" };
      put("contracts/deep/er/Settlement.sol/EpochSettlement.json", artifact("EpochSettlement", [fn]));
      put("@openzeppelin/contracts/governance/TimelockController.sol/TimelockController.json", artifact("TimelockController", []));
      put("contracts/token/EdgeToken.sol/EdgeToken.json", artifact("EdgeToken", [fn]));
      put("contracts/token/EdgeToken.sol/EdgeToken.dbg.json", "{}");
      const { text, generated, missing } = renderAbis(dir);
      expect(generated).to.deep.equal(["EdgeToken", "EpochSettlement", "TimelockController"]);
      expect(missing).to.deep.equal(["EdgeRegistry", "EdgeStaking", "VerifierSet", "ComputeMarket", "EdgeGovernor"]);
      expect(text).to.include(`export const epochSettlementAbi = [\n  ${JSON.stringify(fn)},\n] as const;`);
      expect(text).to.include("export const timelockControllerAbi = [\n\n] as const;");
      expect(text).to.include(
        'export const ABIS_NOT_GENERATED = ["EdgeRegistry","EdgeStaking","VerifierSet","ComputeMarket","EdgeGovernor"] as const;',
      );
      expect(text.indexOf("edgeTokenAbi =")).to.be.below(text.indexOf("epochSettlementAbi ="));
    });

    it("rejects two artifacts of the same name and an artifact of another contract", () => {
      put("contracts/a/A.sol/EdgeToken.json", artifact("EdgeToken", []));
      put("contracts/b/B.sol/EdgeToken.json", artifact("EdgeToken", []));
      expect(() => renderAbis(dir)).to.throw("several artifacts named EdgeToken");
      rmSync(path.join(dir, "contracts/b"), { recursive: true });
      put("contracts/c/C.sol/EdgeRegistry.json", artifact("NotTheRegistry", []));
      expect(() => renderAbis(dir)).to.throw("is not the artifact of EdgeRegistry");
    });

    it("names the constants after the contracts", () => {
      expect(abiConstName("EdgeGovernor")).to.equal("edgeGovernorAbi");
      expect(abiConstName("TimelockController")).to.equal("timelockControllerAbi");
    });
  });

  describe("typed ABIs with viem", () => {
    let conn: Connection;
    before(async () => {
      conn = await connect();
    });
    async function deployed() {
      return deployProtocol(conn);
    }

    it("encode calls as ethers does from the artifact", () => {
      const viaViem = encodeFunctionData({ abi: edgeStakingAbi, functionName: "stake", args: [7n, 10n ** 21n] });
      const viaEthers = new Interface(artifactAbi("EdgeStaking") as never).encodeFunctionData("stake", [7n, 10n ** 21n]);
      expect(viaViem).to.equal(viaEthers);
      expect(viaViem.slice(0, 10)).to.equal(toFunctionSelector("stake(uint256,uint256)"));
    });

    it("read the deployed contracts through viem", async () => {
      const { token, registry } = await conn.networkHelpers.loadFixture(deployed);
      const client = createPublicClient({ transport: custom(conn.provider) });
      const supply = await client.readContract({
        address: getAddress(await token.getAddress()),
        abi: edgeTokenAbi,
        functionName: "totalSupply",
      });
      expect(supply).to.equal(await token.totalSupply());
      const [, name] = await client.readContract({
        address: getAddress(await registry.getAddress()),
        abi: edgeRegistryAbi,
        functionName: "eip712Domain",
      });
      expect(name).to.equal("Tideway EdgeRegistry");
    });
  });
});
