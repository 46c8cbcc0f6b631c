// Turns revert data into readable text — `StakingStillWarmingUp(edgeId=1, account=0x…,
// activationEpoch=7)` — using the contracts' ABIs from the Hardhat artifacts, so tools print the
// contracts' custom errors (with enum arguments by name) instead of raw hex or stack traces.
import { readFileSync } from "node:fs";
import path from "node:path";

import { AbiCoder, getAddress, hexlify, Interface } from "ethers";
import type { ErrorFragment } from "ethers";

import { REPO_ROOT } from "./deployments.ts";
import { ENUMS_BY_INTERNAL_TYPE } from "./enums.ts";

/** One parameter of an ABI entry, as the compiler writes it in the artifacts. */
export interface AbiParameter {
  name: string;
  type: string;
  internalType?: string;
  components?: readonly AbiParameter[];
}

/** One ABI entry (only what decoding needs). */
export interface AbiEntry {
  type: string;
  name?: string;
  inputs?: readonly AbiParameter[];
  [key: string]: unknown;
}

export type Abi = readonly AbiEntry[];

/** A decoded revert. */
export interface DecodedRevert {
  /** First 4 bytes of the data, `0x` when the revert carried no data. */
  selector: string;
  /** Error name: a custom error, `Error` (require message), `Panic`, or `` when unknown. */
  name: string;
  /** Contract whose ABI declares the error (undefined for Error, Panic and unknown data). */
  contract?: string;
  /** Arguments by name, formatted. */
  args: Array<{ name: string; value: string }>;
  /** `Name(arg=value, ...)`, or a description of data that could not be decoded. */
  text: string;
}

/** Contracts whose ABIs the protocol's tools decode errors with, in order of preference. */
export const PROTOCOL_ARTIFACTS: Readonly<Record<string, string>> = {
  EdgeStaking: "contracts/staking/EdgeStaking.sol/EdgeStaking.json",
  EdgeRegistry: "contracts/registry/EdgeRegistry.sol/EdgeRegistry.json",
  EdgeToken: "contracts/token/EdgeToken.sol/EdgeToken.json",
  VerifierSet: "contracts/verifiers/VerifierSet.sol/VerifierSet.json",
  EpochSettlement: "contracts/settlement/EpochSettlement.sol/EpochSettlement.json",
  ComputeMarket: "contracts/market/ComputeMarket.sol/ComputeMarket.json",
  EdgeGovernor: "contracts/governance/EdgeGovernor.sol/EdgeGovernor.json",
  TimelockController: "@openzeppelin/contracts/governance/TimelockController.sol/TimelockController.json",
};

/** Hardhat's artifacts directory of this repository. */
export const DEFAULT_ARTIFACTS_DIR: string = path.join(REPO_ROOT, "artifacts");

/** Reads the protocol contracts' ABIs from Hardhat artifacts (`artifacts/contracts/.../X.json`). */
export function loadProtocolAbis(artifactsDir: string = DEFAULT_ARTIFACTS_DIR): Record<string, Abi> {
  const abis: Record<string, Abi> = {};
  for (const [name, relative] of Object.entries(PROTOCOL_ARTIFACTS)) {
    const file = path.join(artifactsDir, relative);
    let artifact: { abi?: unknown };
    try {
      artifact = JSON.parse(readFileSync(file, "utf8")) as { abi?: unknown };
    } catch (err) {
      throw new Error(`cannot read the ${name} artifact (${file}): ${(err as Error).message} — run \`npx hardhat compile\``);
    }
    if (!Array.isArray(artifact.abi)) throw new Error(`${file} has no ABI — run \`npx hardhat compile\``);
    abis[name] = artifact.abi as Abi;
  }
  return abis;
}

const PANIC_REASONS: Readonly<Record<number, string>> = {
  0x00: "generic compiler panic",
  0x01: "assertion failed",
  0x11: "arithmetic overflow or underflow",
  0x12: "division or modulo by zero",
  0x21: "invalid enum value",
  0x22: "corrupt storage byte array",
  0x31: "pop on an empty array",
  0x32: "array index out of bounds",
  0x41: "out of memory",
  0x51: "call to an uninitialised function",
};

const ERROR_STRING_SELECTOR = "0x08c379a0";
const PANIC_SELECTOR = "0x4e487b71";

interface KnownError {
  contract: string;
  fragment: ErrorFragment;
  inputs: readonly AbiParameter[];
}

/** Decodes revert data against a set of contract ABIs. */
export class ErrorDecoder {
  readonly #bySelector = new Map<string, KnownError[]>();

  /** @param abis ABIs by contract name; earlier contracts win when several declare an error. */
  constructor(abis: Readonly<Record<string, Abi>>) {
    for (const [contract, abi] of Object.entries(abis)) {
      const iface = new Interface(abi.filter((e) => e.type === "error") as never);
      for (const entry of abi) {
        if (entry.type !== "error" || entry.name === undefined) continue;
        const inputs = entry.inputs ?? [];
        const fragment = iface.getError(`${entry.name}(${inputs.map(canonicalType).join(",")})`);
        if (fragment === null) continue;
        const list = this.#bySelector.get(fragment.selector) ?? [];
        list.push({ contract, fragment, inputs });
        this.#bySelector.set(fragment.selector, list);
      }
    }
  }

  /** Names of the contracts that declare an error with `selector`. */
  contractsDeclaring(selector: string): string[] {
    return (this.#bySelector.get(selector.toLowerCase()) ?? []).map((k) => k.contract);
  }

  /**
   * Decodes `data`. `preferContract` picks which declaration to report when several contracts
   * declare the same error (e.g. AccessControl's errors).
   */
  decode(data: string, preferContract?: string): DecodedRevert {
    const hex = data.toLowerCase();
    if (hex === "0x" || hex === "") return { selector: "0x", name: "", args: [], text: "no revert reason" };
    const selector = hex.slice(0, 10);
    try {
      if (selector === ERROR_STRING_SELECTOR) {
        const [message] = AbiCoder.defaultAbiCoder().decode(["string"], "0x" + hex.slice(10));
        return { selector, name: "Error", args: [{ name: "message", value: JSON.stringify(message) }], text: `Error(${JSON.stringify(message)})` };
      }
      if (selector === PANIC_SELECTOR) {
        const [code] = AbiCoder.defaultAbiCoder().decode(["uint256"], "0x" + hex.slice(10));
        const n = Number(code);
        const reason = PANIC_REASONS[n] ?? "unknown panic code";
        const value = `0x${n.toString(16).padStart(2, "0")}`;
        return { selector, name: "Panic", args: [{ name: "code", value }], text: `Panic(${value}: ${reason})` };
      }
      const candidates = this.#bySelector.get(selector) ?? [];
      const known = candidates.find((k) => k.contract === preferContract) ?? candidates[0];
      if (known !== undefined) {
        const iface = new Interface([known.fragment]);
        const values = iface.decodeErrorResult(known.fragment, hex);
        const args = known.inputs.map((input, i) => ({ name: input.name || `arg${i}`, value: formatValue(values[i], input) }));
        const text = `${known.fragment.name}(${args.map((a) => `${a.name}=${a.value}`).join(", ")})`;
        return { selector, name: known.fragment.name, contract: known.contract, args, text };
      }
    } catch {
      // Malformed data for its selector: fall through to the raw description.
    }
    return { selector, name: "", args: [], text: `unknown error ${selector} (data ${hex})` };
  }
}

/** The type as it appears in a signature (tuples expanded). */
function canonicalType(p: AbiParameter): string {
  if (!p.type.startsWith("tuple")) return p.type;
  return `(${(p.components ?? []).map(canonicalType).join(",")})${p.type.slice("tuple".length)}`;
}

/** Formats a decoded ABI value; enum arguments print as their names. */
export function formatValue(value: unknown, param: AbiParameter): string {
  const arrayMatch = /^(.*)\[\d*\]$/.exec(param.type);
  if (arrayMatch !== null && Array.isArray(value)) {
    const inner: AbiParameter = { ...param, type: arrayMatch[1], internalType: param.internalType?.replace(/\[\d*\]$/, "") };
    return `[${value.map((v) => formatValue(v, inner)).join(", ")}]`;
  }
  if (param.type === "tuple" && Array.isArray(value)) {
    const parts = (param.components ?? []).map((c, i) => `${c.name || i}=${formatValue(value[i], c)}`);
    return `(${parts.join(", ")})`;
  }
  const enumNames = param.internalType === undefined ? undefined : ENUMS_BY_INTERNAL_TYPE[param.internalType];
  if (enumNames !== undefined && typeof value === "bigint") {
    return enumNames[Number(value)] ?? `${value}`;
  }
  if (param.type === "address" && typeof value === "string") return getAddress(value);
  if (param.type === "string") return JSON.stringify(value);
  if (typeof value === "bigint" || typeof value === "boolean" || typeof value === "number") return String(value);
  if (param.type.startsWith("bytes") && (typeof value === "string" || value instanceof Uint8Array)) return hexlify(value);
  return String(value);
}

// Keys that hold what was *sent* (calldata), never what came back.
const SKIP_KEYS = new Set(["transaction", "tx", "request", "payload", "params", "invocation"]);
const NESTED_KEYS = ["error", "info", "cause", "errors", "value", "body", "revert"];

/** Whether `s` looks like revert data: `0x`, or a selector followed by whole 32-byte words. */
function isRevertData(s: unknown): s is string {
  return typeof s === "string" && /^0x([0-9a-fA-F]{8}([0-9a-fA-F]{64})*)?$/.test(s);
}

/**
 * Finds the revert data in an error thrown by ethers, a Hardhat provider or a JSON-RPC server
 * (they nest it differently). Returns undefined when the error carries none.
 */
export function revertDataOf(err: unknown): string | undefined {
  const seen = new Set<unknown>();
  const queue: unknown[] = [err];
  while (queue.length > 0) {
    const current = queue.shift();
    if (current === null || current === undefined || seen.has(current)) continue;
    seen.add(current);
    if (typeof current === "string") {
      // JSON-RPC servers' raw response bodies.
      if (current.startsWith("{")) {
        try {
          queue.push(JSON.parse(current));
        } catch {
          // not JSON
        }
      }
      continue;
    }
    if (typeof current !== "object") continue;
    const record = current as Record<string, unknown>;
    if (isRevertData(record.data)) return record.data;
    if (typeof record.data === "object" && record.data !== null && isRevertData((record.data as Record<string, unknown>).data)) {
      return (record.data as Record<string, unknown>).data as string;
    }
    for (const key of NESTED_KEYS) {
      if (!SKIP_KEYS.has(key) && key in record) {
        const v = record[key];
        if (Array.isArray(v)) queue.push(...v);
        else queue.push(v);
      }
    }
  }
  return undefined;
}

/** A call or transaction to a protocol contract reverted. */
export class ContractRevertError extends Error {
  readonly contract: string;
  readonly decoded: DecodedRevert;
  constructor(contract: string, decoded: DecodedRevert, options?: { cause?: unknown }) {
    super(`${contract} reverted: ${decoded.text}`, options);
    this.name = "ContractRevertError";
    this.contract = contract;
    this.decoded = decoded;
  }
}

/**
 * If `err` is a revert, returns it as a {ContractRevertError} naming `contract` (the contract
 * called; errors bubbling up from contracts it calls are still decoded). Otherwise undefined.
 */
export function asContractRevert(err: unknown, decoder: ErrorDecoder, contract?: string): ContractRevertError | undefined {
  if (err instanceof ContractRevertError) return err;
  const data = revertDataOf(err);
  if (data === undefined) return undefined;
  const decoded = decoder.decode(data, contract);
  return new ContractRevertError(contract ?? decoded.contract ?? "transaction", decoded, { cause: err });
}
