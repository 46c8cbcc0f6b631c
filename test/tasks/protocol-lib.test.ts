// Unit tests of lib/protocol: enums against the Solidity sources, deployment records (in a
// temporary directory), revert decoding with the artifacts' ABIs, and token units.
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

import { expect } from "chai";
import { AbiCoder, getAddress, Interface, id } from "ethers";

import {
  DECLINE_REASON_NAMES,
  DeploymentNotFoundError,
  EDGE_STATE_NAMES,
  EDGE_STATUS_NAMES,
  edgeStateName,
  edgeStatusName,
  ErrorDecoder,
  formatBps,
  formatTokenAmount,
  loadProtocolAbis,
  PARAMETER_NAMES,
  parameterName,
  parseCommission,
  parseTokenAmount,
  readDeployment,
  REPO_ROOT,
  revertDataOf,
  type Abi,
} from "../../lib/protocol/index.js";

/** The members of `enum name { ... }` in a Solidity source, comments removed. */
function solidityEnum(file: string, name: string): string[] {
  const source = readFileSync(path.join(REPO_ROOT, file), "utf8").replace(/\/\/[^\n]*/g, "");
  const match = new RegExp(`enum\\s+${name}\\s*\\{([^}]*)\\}`).exec(source);
  if (match === null) throw new Error(`enum ${name} not found in ${file}`);
  return match[1].split(",").map((m) => m.trim()).filter((m) => m !== "");
}

describe("lib/protocol", () => {
  describe("enums", () => {
    it("lists every enum's members in the order the Solidity interfaces declare them", () => {
      expect([...EDGE_STATUS_NAMES]).to.deep.equal(solidityEnum("contracts/interfaces/IEdgeStaking.sol", "EdgeStatus"));
      expect([...EDGE_STATE_NAMES]).to.deep.equal(solidityEnum("contracts/interfaces/IEdgeRegistry.sol", "EdgeState"));
      expect([...DECLINE_REASON_NAMES]).to.deep.equal(solidityEnum("contracts/interfaces/IEdgeStaking.sol", "DeclineReason"));
      expect([...PARAMETER_NAMES]).to.deep.equal(solidityEnum("contracts/interfaces/IEdgeStaking.sol", "Parameter"));
    });

    it("names values and marks out-of-range ones", () => {
      expect(edgeStatusName(2n)).to.equal("Active");
      expect(edgeStatusName(4)).to.equal("Jailed");
      expect(edgeStateName(3n)).to.equal("Exiting");
      expect(parameterName(6n)).to.equal("JailPeriod");
      expect(edgeStatusName(6n)).to.equal("Unknown(6)");
    });
  });

  describe("readDeployment", () => {
    let root: string;
    const A = "0x5FbDB2315678afecb367f032d93F642f64180aa3";
    const B = "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512";
    const C = "0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0";
    const D = "0xCf7Ed3AccA5a467e9e704C703E8D87F634fB0Fc9";
    beforeEach(() => {
      root = mkdtempSync(path.join(tmpdir(), "tideway-deployments-"));
    });
    afterEach(() => {
      rmSync(root, { recursive: true, force: true });
    });
    function record(chainId: number, content: string) {
      const dir = path.join(root, "ignition", "deployments", `chain-${chainId}`);
      mkdirSync(dir, { recursive: true });
      writeFileSync(path.join(dir, "deployed_addresses.json"), content);
    }

    it("reads the addresses Ignition recorded for the Protocol module's submodules", () => {
      record(31337, JSON.stringify({ "EdgeRegistry#EdgeRegistry": A, "EdgeToken#EdgeToken": B, "EdgeStaking#EdgeStaking": C }));
      expect(readDeployment(31337n, { root })).to.deep.equal({ token: B, registry: A, staking: C });
    });

    it("prefers a contract the Protocol module deploys itself", () => {
      record(5, JSON.stringify({ "EdgeRegistry#EdgeRegistry": A, "EdgeToken#EdgeToken": B, "EdgeStaking#EdgeStaking": C, "Protocol#EdgeStaking": D }));
      expect(readDeployment(5, { root }).staking).to.equal(D);
    });

    it("says to run npm start when the local chain has no record", () => {
      let error: unknown;
      try {
        readDeployment(31337, { root });
      } catch (e) {
        error = e;
      }
      expect(error).to.be.instanceOf(DeploymentNotFoundError);
      const e = error as DeploymentNotFoundError;
      expect(e.chainId).to.equal(31337n);
      expect(e.file).to.equal(path.join(root, "ignition", "deployments", "chain-31337", "deployed_addresses.json"));
      expect(e.message).to.match(/^no Tideway deployment for chain 31337 \(no .*deployed_addresses\.json\) — run `npm start`/);
    });

    it("gives the ignition deploy command for other chains", () => {
      expect(() => readDeployment(11155111, { root })).to.throw(
        DeploymentNotFoundError,
        /no Tideway deployment for chain 11155111 .*`npx hardhat ignition deploy ignition\/modules\/Protocol\.ts --network <network>`/,
      );
    });

    it("names the contracts a record lacks or records malformed", () => {
      record(31337, JSON.stringify({ "EdgeToken#EdgeToken": B, "EdgeStaking#EdgeStaking": "0x1234" }));
      expect(() => readDeployment(31337, { root })).to.throw(DeploymentNotFoundError, /has no valid address for EdgeRegistry, EdgeStaking —/);
    });

    it("rejects a file that is not JSON or not an object", () => {
      record(31337, "{ not json");
      expect(() => readDeployment(31337, { root })).to.throw(DeploymentNotFoundError, /^cannot read .*deployed_addresses\.json: /);
      record(31337, "[]");
      expect(() => readDeployment(31337, { root })).to.throw(DeploymentNotFoundError, /is not an Ignition address record/);
    });
  });

  describe("ErrorDecoder", () => {
    const abis = loadProtocolAbis();
    const decoder = new ErrorDecoder(abis);
    const staking = new Interface(abis.EdgeStaking as never);
    const registry = new Interface(abis.EdgeRegistry as never);
    const account = "0x3c44cdddb6a900fa2b585dd299e03d12fa4293bc";

    /** Encodes an error by hand: selector of the signature, then the ABI-encoded arguments. */
    function encodeError(signature: string, types: string[], values: unknown[]): string {
      return id(signature).slice(0, 10) + AbiCoder.defaultAbiCoder().encode(types, values).slice(2);
    }

    it("decodes a custom error with named, formatted arguments", () => {
      const data = encodeError("StakingStillWarmingUp(uint256,address,uint256)", ["uint256", "address", "uint256"], [1n, account, 7n]);
      const decoded = decoder.decode(data);
      expect(decoded.name).to.equal("StakingStillWarmingUp");
      expect(decoded.contract).to.equal("EdgeStaking");
      expect(decoded.selector).to.equal(staking.getError("StakingStillWarmingUp")!.selector);
      expect(decoded.text).to.equal(`StakingStillWarmingUp(edgeId=1, account=${getAddress(account)}, activationEpoch=7)`);
    });

    it("prints enum arguments by name", () => {
      const notAccepting = encodeError("StakingEdgeNotAcceptingStake(uint256,uint8)", ["uint256", "uint8"], [3n, 4n]);
      expect(decoder.decode(notAccepting).text).to.equal("StakingEdgeNotAcceptingStake(edgeId=3, status=Jailed)");
      const invalidState = encodeError("RegistryInvalidState(uint256,uint8)", ["uint256", "uint8"], [2n, 3n]);
      expect(decoder.decode(invalidState)).to.include({ contract: "EdgeRegistry", text: "RegistryInvalidState(edgeId=2, state=Exiting)" });
      const bounds = encodeError("StakingParameterOutOfBounds(uint8,uint256,uint256,uint256)", ["uint8", "uint256", "uint256", "uint256"], [1n, 5n, 60n, 31_536_000n]);
      expect(decoder.decode(bounds).text).to.equal("StakingParameterOutOfBounds(parameter=UnbondingDelay, value=5, min=60, max=31536000)");
    });

    it("quotes string arguments and handles errors without arguments", () => {
      const data = registry.encodeErrorResult("RegistryInvalidProfile", ["capacity"]);
      expect(decoder.decode(data).text).to.equal('RegistryInvalidProfile(field="capacity")');
      expect(decoder.decode(id("StakingNothingToClaim()").slice(0, 10)).text).to.equal("StakingNothingToClaim()");
    });

    it("reports an error declared by several contracts as the preferred one's", () => {
      const role = id("GOVERNANCE_ROLE");
      const data = encodeError("AccessControlUnauthorizedAccount(address,bytes32)", ["address", "bytes32"], [account, role]);
      // Every AccessControl contract declares it (the governor does not use AccessControl).
      expect(decoder.contractsDeclaring(data.slice(0, 10))).to.deep.equal([
        "EdgeStaking",
        "EdgeRegistry",
        "EdgeToken",
        "VerifierSet",
        "EpochSettlement",
        "ComputeMarket",
        "TimelockController",
      ]);
      expect(decoder.decode(data).contract).to.equal("EdgeStaking");
      const preferred = decoder.decode(data, "EdgeRegistry");
      expect(preferred.contract).to.equal("EdgeRegistry");
      expect(preferred.text).to.equal(`AccessControlUnauthorizedAccount(account=${getAddress(account)}, neededRole=${role})`);
    });

    it("decodes the token's errors", () => {
      const data = encodeError("ERC20InsufficientAllowance(address,uint256,uint256)", ["address", "uint256", "uint256"], [account, 0n, 5n]);
      expect(decoder.decode(data)).to.include({ contract: "EdgeToken", text: `ERC20InsufficientAllowance(spender=${getAddress(account)}, allowance=0, needed=5)` });
    });

    it("decodes require messages, panics, empty and unknown data", () => {
      expect(decoder.decode(encodeError("Error(string)", ["string"], ["boom"])).text).to.equal('Error("boom")');
      expect(decoder.decode(encodeError("Panic(uint256)", ["uint256"], [0x11n])).text).to.equal("Panic(0x11: arithmetic overflow or underflow)");
      expect(decoder.decode("0x").text).to.equal("no revert reason");
      expect(decoder.decode("0xdeadbeef").text).to.equal("unknown error 0xdeadbeef (data 0xdeadbeef)");
    });

    it("describes data too short for its error's arguments as unknown", () => {
      const selector = staking.getError("StakingUnknownEdge")!.selector;
      expect(decoder.decode(selector).text).to.equal(`unknown error ${selector} (data ${selector})`);
    });

    it("works with any ABI set, not only the artifacts", () => {
      const abi: Abi = [{ type: "error", name: "Custom", inputs: [{ name: "flags", type: "bool[]", internalType: "bool[]" }] }];
      const data = encodeError("Custom(bool[])", ["bool[]"], [[true, false]]);
      expect(new ErrorDecoder({ Mine: abi }).decode(data)).to.include({ contract: "Mine", text: "Custom(flags=[true, false])" });
    });
  });

  describe("loadProtocolAbis", () => {
    it("reads the ABIs of the protocol's contracts from the artifacts", () => {
      const abis = loadProtocolAbis();
      expect(Object.keys(abis)).to.deep.equal(["EdgeStaking", "EdgeRegistry", "EdgeToken", "VerifierSet", "EpochSettlement", "ComputeMarket", "EdgeGovernor", "TimelockController"]);
      expect(abis.EdgeStaking.some((e) => e.type === "function" && e.name === "delegate")).to.equal(true);
    });

    it("says to compile when the artifacts are missing", () => {
      const dir = mkdtempSync(path.join(tmpdir(), "tideway-artifacts-"));
      try {
        expect(() => loadProtocolAbis(dir)).to.throw(/cannot read the EdgeStaking artifact .*run `npx hardhat compile`/);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  describe("revertDataOf", () => {
    const data = "0x4e597bd00000000000000000000000000000000000000000000000000000000000000001";

    it("finds revert data however deeply providers nest it", () => {
      expect(revertDataOf({ data })).to.equal(data);
      expect(revertDataOf({ info: { error: { data } } })).to.equal(data);
      expect(revertDataOf({ error: { data: { data } } })).to.equal(data);
      expect(revertDataOf({ cause: { body: JSON.stringify({ error: { code: 3, data } }) } })).to.equal(data);
      expect(revertDataOf({ data: "0x" })).to.equal("0x");
    });

    it("ignores calldata of the transaction that was sent, and non-errors", () => {
      expect(revertDataOf({ transaction: { data }, message: "boom" })).to.equal(undefined);
      expect(revertDataOf({ data: "0x1234" })).to.equal(undefined);
      expect(revertDataOf("plain string")).to.equal(undefined);
      expect(revertDataOf(undefined)).to.equal(undefined);
    });
  });

  describe("token units", () => {
    const TOKEN = 10n ** 18n;

    it("parses whole and fractional token amounts", () => {
      expect(parseTokenAmount("1000")).to.equal(1_000n * TOKEN);
      expect(parseTokenAmount(" 0.5 ")).to.equal(TOKEN / 2n);
      expect(parseTokenAmount(".25")).to.equal(TOKEN / 4n);
      expect(parseTokenAmount("1_000.000000000000000001")).to.equal(1_000n * TOKEN + 1n);
    });

    it("rejects what is not a positive token amount", () => {
      for (const bad of ["", "-1", "1e3", "1,000", "0x10", "abc", "1.2.3"]) {
        expect(() => parseTokenAmount(bad), bad).to.throw(/is not a token amount/);
      }
      expect(() => parseTokenAmount("0.0000000000000000001")).to.throw(/more than 18 decimals/);
      expect(() => parseTokenAmount("0.000")).to.throw(/more than 0/);
    });

    it("formats wei as grouped tokens without trailing zeros", () => {
      expect(formatTokenAmount(1_234_567n * TOKEN / 1_000n)).to.equal("1,234.567 EDGE");
      expect(formatTokenAmount(1_000_000n * TOKEN)).to.equal("1,000,000 EDGE");
      expect(formatTokenAmount(1n)).to.equal("0.000000000000000001 EDGE");
      expect(formatTokenAmount(0n)).to.equal("0 EDGE");
      expect(formatTokenAmount(-TOKEN / 2n, { symbol: false })).to.equal("-0.5");
    });

    it("parses commission rates in percent or basis points", () => {
      expect(parseCommission("5%")).to.equal(500n);
      expect(parseCommission("12.5%")).to.equal(1_250n);
      expect(parseCommission("0.01%")).to.equal(1n);
      expect(parseCommission("5")).to.equal(500n);
      expect(parseCommission("100%")).to.equal(10_000n);
      expect(parseCommission("500bps")).to.equal(500n);
      expect(parseCommission("75 BPS")).to.equal(75n);
      expect(() => parseCommission("100.01%")).to.throw(/above 100%/);
      expect(() => parseCommission("10001bps")).to.throw(/above 100%/);
      expect(() => parseCommission("12.345%")).to.throw(/not a commission rate/);
      expect(() => parseCommission("five")).to.throw(/not a commission rate/);
    });

    it("formats basis points as percent", () => {
      expect(formatBps(0n)).to.equal("0%");
      expect(formatBps(500n)).to.equal("5%");
      expect(formatBps(1_250)).to.equal("12.5%");
      expect(formatBps(1n)).to.equal("0.01%");
      expect(formatBps(10_000n)).to.equal("100%");
    });
  });
});
