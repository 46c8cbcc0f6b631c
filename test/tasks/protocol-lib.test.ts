// Unit tests of lib/protocol: enums against the Solidity sources, revert decoding with the
// generated ABIs, token units and times as the tools print them.
import { readFileSync } from "node:fs";
import path from "node:path";

import { expect } from "chai";
import { encodeAbiParameters, encodeErrorResult, getAddress, keccak256, toFunctionSelector, toHex, type Hex } from "viem";

import {
  DECLINE_REASON_NAMES,
  EDGE_STATE_NAMES,
  EDGE_STATUS_NAMES,
  edgeStateName,
  edgeStatusName,
  contractsDeclaring,
  decodeRevert,
  decodeRevertData,
  edgeRegistryAbi,
  edgeStakingAbi,
  edgeTokenAbi,
  formatBps,
  formatDuration,
  formatTokenAmount,
  isRevert,
  ENUMS_BY_INTERNAL_TYPE,
  PARAMETER_NAMES,
  parameterName,
  parseCommission,
  parseTokenAmount,
  REPO_ROOT,
  revertDataOf,
  revertEpochs,
} from "../../lib/protocol/index.ts";

/** The members of `enum name { ... }` in a Solidity source, comments removed. */
function solidityEnum(file: string, name: string): string[] {
  const source = readFileSync(path.join(REPO_ROOT, file), "utf8").replace(/\/\/[^\n]*/g, "");
  const match = new RegExp(`enum\\s+${name}\\s*\\{([^}]*)\\}`).exec(source);
  if (match === null) throw new Error(`enum ${name} not found in ${file}`);
  return match[1]
    .split(",")
    .map((m) => m.trim())
    .filter((m) => m !== "");
}

describe("lib/protocol", () => {
  describe("enums", () => {
    it("lists every enum's members in the order the Solidity interfaces declare them", () => {
      expect([...EDGE_STATUS_NAMES]).to.deep.equal(solidityEnum("contracts/interfaces/IEdgeStaking.sol", "EdgeStatus"));
      expect([...EDGE_STATE_NAMES]).to.deep.equal(solidityEnum("contracts/interfaces/IEdgeRegistry.sol", "EdgeState"));
      expect([...DECLINE_REASON_NAMES]).to.deep.equal(solidityEnum("contracts/interfaces/IEdgeStaking.sol", "DeclineReason"));
      expect([...PARAMETER_NAMES]).to.deep.equal(solidityEnum("contracts/interfaces/IEdgeStaking.sol", "Parameter"));
    });

    it("names every enum the ABIs carry by its interface's members, in their order", () => {
      for (const [internalType, names] of Object.entries(ENUMS_BY_INTERNAL_TYPE)) {
        const [, contract, name] = /^enum (I\w+)\.(\w+)$/.exec(internalType) ?? [];
        expect([...names], internalType).to.deep.equal(solidityEnum(`contracts/interfaces/${contract}.sol`, name!));
      }
    });

    it("names values and marks out-of-range ones", () => {
      expect(edgeStatusName(2n)).to.equal("Active");
      expect(edgeStatusName(4)).to.equal("Jailed");
      expect(edgeStateName(3n)).to.equal("Exiting");
      expect(parameterName(6n)).to.equal("JailPeriod");
      expect(edgeStatusName(6n)).to.equal("Unknown(6)");
    });
  });

  describe("decodeRevertData", () => {
    const account = "0x3c44cdddb6a900fa2b585dd299e03d12fa4293bc";

    it("decodes a custom error with named, formatted arguments", () => {
      const data = encodeErrorResult({ abi: edgeStakingAbi, errorName: "StakingStillWarmingUp", args: [1n, account, 7n] });
      const decoded = decodeRevertData(data);
      expect(decoded.name).to.equal("StakingStillWarmingUp");
      expect(decoded.contract).to.equal("EdgeStaking");
      expect(decoded.args.map((a) => a.value)).to.deep.equal([1n, getAddress(account), 7n]);
      expect(decoded.message).to.equal(`StakingStillWarmingUp(edgeId=1, account=${getAddress(account)}, activationEpoch=7)`);
    });

    it("prints enum arguments by name", () => {
      const notAccepting = encodeErrorResult({ abi: edgeStakingAbi, errorName: "StakingEdgeNotAcceptingStake", args: [3n, 4] });
      expect(decodeRevertData(notAccepting).message).to.equal("StakingEdgeNotAcceptingStake(edgeId=3, status=Jailed)");
      const invalidState = encodeErrorResult({ abi: edgeRegistryAbi, errorName: "RegistryInvalidState", args: [2n, 3] });
      expect(decodeRevertData(invalidState)).to.include({
        contract: "EdgeRegistry",
        message: "RegistryInvalidState(edgeId=2, state=Exiting)",
      });
      const bounds = encodeErrorResult({ abi: edgeStakingAbi, errorName: "StakingParameterOutOfBounds", args: [1, 5n, 60n, 31_536_000n] });
      expect(decodeRevertData(bounds).message).to.equal(
        "StakingParameterOutOfBounds(parameter=UnbondingDelay, value=5, min=60, max=31536000)",
      );
    });

    it("quotes string arguments and handles errors without arguments", () => {
      const data = encodeErrorResult({ abi: edgeRegistryAbi, errorName: "RegistryInvalidProfile", args: ["capacity"] });
      expect(decodeRevertData(data).message).to.equal('RegistryInvalidProfile(field="capacity")');
      expect(decodeRevertData(toFunctionSelector("StakingNothingToClaim()")).message).to.equal("StakingNothingToClaim()");
    });

    it("shows times as dates, and epochs with their start when known, relative to the chain's now", () => {
      // 2026-12-07 06:31:00 UTC
      const until = 1_796_625_060n;
      const data = encodeErrorResult({ abi: edgeStakingAbi, errorName: "StakingUnbondingNotMature", args: [until, until - 250n] });
      expect(decodeRevertData(data).message).to.equal(
        `StakingUnbondingNotMature(withdrawableAt=${until} [2026-12-07 06:31:00 UTC], nowTime=${until - 250n} [2026-12-07 06:26:50 UTC])`,
      );
      expect(decodeRevertData(data, { now: until - 250n }).message).to.equal(
        `StakingUnbondingNotMature(withdrawableAt=${until} [2026-12-07 06:31:00 UTC, in 4 min 10 s], nowTime=${until - 250n} [2026-12-07 06:26:50 UTC, now])`,
      );
      const warming = encodeErrorResult({ abi: edgeStakingAbi, errorName: "StakingStillWarmingUp", args: [1n, account, 12n] });
      const decoded = decodeRevertData(warming, { now: until - 250n, epochStarts: new Map([[12n, until]]) });
      expect(revertEpochs(decoded)).to.deep.equal([12n]);
      expect(decoded.message).to.equal(
        `StakingStillWarmingUp(edgeId=1, account=${getAddress(account)}, activationEpoch=12 [starts 2026-12-07 06:31:00 UTC, in 4 min 10 s])`,
      );
    });

    it("attributes an error several contracts declare to the preferred one", () => {
      const role = keccak256(toHex("GOVERNANCE_ROLE"));
      const data = encodeErrorResult({ abi: edgeStakingAbi, errorName: "AccessControlUnauthorizedAccount", args: [account, role] });
      // Every AccessControl contract declares it (the governor does not use AccessControl).
      expect(contractsDeclaring(data.slice(0, 10) as Hex)).to.deep.equal([
        "EdgeStaking",
        "EdgeRegistry",
        "EdgeToken",
        "VerifierSet",
        "EpochSettlement",
        "ComputeMarket",
        "TimelockController",
      ]);
      expect(decodeRevertData(data).contract).to.equal("EdgeStaking");
      const preferred = decodeRevertData(data, { prefer: "EdgeRegistry" });
      expect(preferred.contract).to.equal("EdgeRegistry");
      expect(preferred.message).to.equal(`AccessControlUnauthorizedAccount(account=${getAddress(account)}, neededRole=${role})`);
    });

    it("decodes the token's errors", () => {
      const data = encodeErrorResult({ abi: edgeTokenAbi, errorName: "ERC20InsufficientAllowance", args: [account, 0n, 5n] });
      expect(decodeRevertData(data)).to.include({
        contract: "EdgeToken",
        message: `ERC20InsufficientAllowance(spender=${getAddress(account)}, allowance=0, needed=5)`,
      });
    });

    it("decodes require messages, panics, empty and unknown data", () => {
      const errorString = (toFunctionSelector("Error(string)") + encodeAbiParameters([{ type: "string" }], ["boom"]).slice(2)) as Hex;
      expect(decodeRevertData(errorString)).to.include({ name: "Error", message: 'Error("boom")' });
      const panic = (toFunctionSelector("Panic(uint256)") + encodeAbiParameters([{ type: "uint256" }], [0x11n]).slice(2)) as Hex;
      expect(decodeRevertData(panic).message).to.equal("Panic(0x11: arithmetic overflow or underflow)");
      expect(decodeRevertData("0x")).to.include({ name: undefined, message: "no revert reason" });
      expect(decodeRevertData("0xdeadbeef").message).to.equal("unknown error 0xdeadbeef (data 0xdeadbeef)");
    });

    it("describes data too short for its error's arguments as unknown", () => {
      const selector = toFunctionSelector("StakingUnknownEdge(uint256)");
      expect(decodeRevertData(selector)).to.include({ name: undefined, message: `unknown error ${selector} (data ${selector})` });
    });
  });

  describe("decodeRevert", () => {
    const data = encodeErrorResult({ abi: edgeStakingAbi, errorName: "StakingUnknownEdge", args: [1n] });

    it("finds revert data however viem and providers nest it", () => {
      expect(revertDataOf({ data })).to.equal(data);
      expect(revertDataOf({ cause: { cause: { raw: data } } })).to.equal(data);
      expect(revertDataOf({ error: { data: { data } } })).to.equal(data);
      expect(decodeRevert(new Error("wrapped", { cause: { code: 3, data } }))?.message).to.equal("StakingUnknownEdge(edgeId=1)");
    });

    it("ignores calldata of the request that failed, and errors that are not reverts", () => {
      expect(revertDataOf({ request: { data }, message: "boom" })).to.equal(undefined);
      expect(revertDataOf({ data: "0x1234" })).to.equal(undefined);
      expect(decodeRevert(new Error("ECONNREFUSED 127.0.0.1:8545"))).to.equal(undefined);
      expect(decodeRevert("plain string")).to.equal(undefined);
    });

    it("reports what the node said for a revert without data", () => {
      const err = new Error("outer", { cause: { name: "ExecutionRevertedError", details: "execution reverted" } });
      expect(decodeRevert(err)).to.deep.equal({
        name: undefined,
        contract: undefined,
        args: [],
        message: "execution reverted",
        data: undefined,
      });
    });
  });

  describe("isRevert", () => {
    it("takes only viem's revert errors and JSON-RPC code 3, so the transaction sender retries everything else", () => {
      expect(isRevert(new Error("outer", { cause: { name: "ContractFunctionRevertedError" } }))).to.equal(true);
      expect(isRevert({ code: 3, message: "execution reverted" })).to.equal(true);
      // A transport failure whose text happens to say "revert" is not a revert: retrying it is right.
      expect(isRevert(new Error("proxy: upstream connection reverted to idle"))).to.equal(false);
    });

    it("leaves the decoder its looser reading of a provider's message", () => {
      const hardhat = new Error("VM Exception while processing transaction: reverted with reason string 'nope'");
      expect(isRevert(hardhat)).to.equal(false);
      expect(decodeRevert(hardhat)?.message).to.equal(hardhat.message);
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

    it("rejects what is not a positive token amount, saying why", () => {
      for (const bad of ["1e3", "1,000", "0x10", "abc", "1.2.3", "5-"]) {
        expect(() => parseTokenAmount(bad), bad).to.throw(/is not a token amount/);
      }
      expect(() => parseTokenAmount("-5")).to.throw('"-5" is negative: amounts are positive; write it in EDGE, e.g. 1000 or 0.5');
      expect(() => parseTokenAmount(" -0.5")).to.throw(/is negative/);
      expect(() => parseTokenAmount("1e3")).to.throw('"1e3" is not a token amount (no exponents): write it in EDGE, e.g. 1000 or 0.5');
      expect(() => parseTokenAmount("1,000")).to.throw(/\(no thousands commas; use _ if you like\)/);
      expect(() => parseTokenAmount("")).to.throw(/^no amount given/);
      expect(() => parseTokenAmount("0.0000000000000000001")).to.throw(/more than 18 decimals/);
      expect(() => parseTokenAmount("0.000")).to.throw(/more than 0/);
    });

    it("formats wei as grouped tokens rounded half up to 6 decimals, without trailing zeros", () => {
      expect(formatTokenAmount((1_234_567n * TOKEN) / 1_000n)).to.equal("1,234.567 EDGE");
      expect(formatTokenAmount(1_000_000n * TOKEN)).to.equal("1,000,000 EDGE");
      expect(formatTokenAmount(TOKEN / 3n)).to.equal("0.333333 EDGE");
      expect(formatTokenAmount((2n * TOKEN) / 3n)).to.equal("0.666667 EDGE");
      expect(formatTokenAmount(1_234n * TOKEN + 567_891_499_999_999_999n)).to.equal("1,234.567891 EDGE");
      expect(formatTokenAmount(999_999_999_999_999_999n)).to.equal("1 EDGE");
      expect(formatTokenAmount(500_000_000_000n)).to.equal("0.000001 EDGE");
      expect(formatTokenAmount(1n)).to.equal("<0.000001 EDGE");
      expect(formatTokenAmount(0n)).to.equal("0 EDGE");
      expect(formatTokenAmount(-TOKEN / 2n, { symbol: false })).to.equal("-0.5");
    });

    it("writes durations in their two largest units", () => {
      expect(formatDuration(250n)).to.equal("4 min 10 s");
      expect(formatDuration(45n)).to.equal("45 s");
      expect(formatDuration(0n)).to.equal("0 s");
      expect(formatDuration(3_600n * 26n + 61n)).to.equal("1 d 2 h");
      expect(formatDuration(3_600n * 3n + 59n * 60n + 59n)).to.equal("3 h 59 min");
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
