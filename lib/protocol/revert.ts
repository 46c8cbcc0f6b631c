// Turns a revert into readable text — `StakingStillWarmingUp(edgeId=1, account=0x…,
// activationEpoch=7 [starts 2026-12-07 06:31:00 UTC, in 4 min 10 s])` — against every protocol
// contract's ABI (the generated ones), so tools print the contracts' custom errors, with enum
// arguments by name and times as dates, instead of raw hex or stack traces.
//
//   const decoded = decodeRevert(err, { prefer: "EdgeStaking" });
//   if (decoded !== undefined) console.error(decoded.message);
//
// decodeRevert finds the revert data wherever viem, a Hardhat provider or a JSON-RPC server put
// it (each nests it differently) and returns undefined for errors that are not reverts (RPC
// failures, bad input), so callers can tell "the chain said no" from "we could not ask".
import { BaseError, decodeErrorResult, getAddress, toFunctionSelector } from "viem";
import type { Abi, AbiParameter, Hex } from "viem";

import { ABIS } from "./abis.generated.ts";
import type { ProtocolAbiName } from "./abis.ts";
import { ENUMS_BY_INTERNAL_TYPE } from "./enums.ts";
import { formatDate, formatRelative } from "./units.ts";

/** One decoded argument of a revert. */
export interface RevertArg {
  name: string;
  /** Solidity type, e.g. `uint256`. */
  type: string;
  /** The value as viem decodes it (bigint, address string, …). */
  value: unknown;
  /** The value as printed: enums by name, addresses checksummed, strings quoted. */
  text: string;
}

/** A decoded revert. */
export interface DecodedRevert {
  /** Error name: a custom error, `Error` (require message), `Panic`; undefined when not decodable. */
  name: string | undefined;
  /** Protocol contract whose ABI declares the error (undefined for Error, Panic and unknown data). */
  contract: ProtocolAbiName | undefined;
  args: readonly RevertArg[];
  /** `Name(arg=value, ...)`, or what the node said when there is no decodable data. */
  message: string;
  /** Raw revert data, when the node returned some. */
  data: Hex | undefined;
}

/** Context that makes times and epochs in a revert readable. */
export interface DecodeRevertOptions {
  /** Contract to attribute an error to when several declare it (e.g. AccessControl's errors). */
  prefer?: ProtocolAbiName;
  /** The chain's time: times then also say how far away they are (`in 4 min 10 s`). */
  now?: bigint;
  /** Start time of epochs named in the revert (see {revertEpochs}), shown beside them. */
  epochStarts?: ReadonlyMap<bigint, bigint>;
}

/** Contracts an error is attributed to, in this order when several declare it. */
const REVERT_CONTRACT_ORDER: readonly ProtocolAbiName[] = [
  "EdgeStaking",
  "EdgeRegistry",
  "EdgeToken",
  "VerifierSet",
  "EpochSettlement",
  "ComputeMarket",
  "EdgeGovernor",
  "TimelockController",
];

/** Error arguments that are unix times (seconds). */
const TIME_ARGS = new Set(["deadline", "exitableAt", "expiry", "finalAt", "jailedUntil", "nowTime", "thawEndsAt", "withdrawableAt"]);
/** Error arguments that are epoch numbers on the staking clock. */
const EPOCH_ARGS = new Set([
  "activationEpoch",
  "changeableFromEpoch",
  "currentEpoch",
  "epoch",
  "epochA",
  "epochB",
  "faultEpoch",
  "firstKnownEpoch",
]);

const PANIC_REASONS: Readonly<Record<number, string>> = {
  0: "generic compiler panic",
  1: "assertion failed",
  17: "arithmetic overflow or underflow",
  18: "division or modulo by zero",
  33: "invalid enum value",
  34: "corrupt storage byte array",
  49: "pop on an empty array",
  50: "array index out of bounds",
  65: "out of memory",
  81: "call to an uninitialised function",
};

type AbiError = Extract<Abi[number], { type: "error" }>;

interface KnownError {
  contract: ProtocolAbiName;
  item: AbiError;
}

let bySelector: Map<string, KnownError[]> | undefined;

/** Every protocol error by selector, declaring contracts in {REVERT_CONTRACT_ORDER}. */
function errorsBySelector(): Map<string, KnownError[]> {
  if (bySelector !== undefined) return bySelector;
  const map = new Map<string, KnownError[]>();
  for (const contract of REVERT_CONTRACT_ORDER) {
    for (const entry of ABIS[contract] as readonly { type: string }[]) {
      if (entry.type !== "error") continue;
      const item = entry as AbiError;
      const selector = toFunctionSelector(`${item.name}(${item.inputs.map(canonicalType).join(",")})`);
      map.set(selector, [...(map.get(selector) ?? []), { contract, item }]);
    }
  }
  bySelector = map;
  return map;
}

/** The type as it appears in a signature (tuples expanded). */
function canonicalType(p: AbiParameter): string {
  if (!p.type.startsWith("tuple") || !("components" in p)) return p.type;
  return `(${p.components.map(canonicalType).join(",")})${p.type.slice("tuple".length)}`;
}

/** Names of the protocol contracts that declare an error with `selector`, in attribution order. */
export function contractsDeclaring(selector: Hex): ProtocolAbiName[] {
  return (errorsBySelector().get(selector.toLowerCase()) ?? []).map((k) => k.contract);
}

/** Formats a decoded ABI value; enum arguments print as their names. */
function formatValue(value: unknown, param: AbiParameter): string {
  const internalType = "internalType" in param ? param.internalType : undefined;
  const arrayMatch = /^(.*)\[\d*\]$/.exec(param.type);
  if (arrayMatch !== null && Array.isArray(value)) {
    const inner = { ...param, type: arrayMatch[1], internalType: internalType?.replace(/\[\d*\]$/, "") } as AbiParameter;
    return `[${value.map((v) => formatValue(v, inner)).join(", ")}]`;
  }
  if (param.type === "tuple" && "components" in param && typeof value === "object" && value !== null) {
    const record = value as Record<string | number, unknown>;
    const parts = param.components.map((c, i) => `${c.name || i}=${formatValue(c.name ? record[c.name] : record[i], c)}`);
    return `(${parts.join(", ")})`;
  }
  const enumNames = internalType === undefined ? undefined : ENUMS_BY_INTERNAL_TYPE[internalType];
  if (enumNames !== undefined && (typeof value === "number" || typeof value === "bigint")) return enumNames[Number(value)] ?? String(value);
  if (param.type === "address" && typeof value === "string") return getAddress(value);
  if (param.type === "string") return JSON.stringify(value);
  return String(value);
}

/** `date, in 4 min 10 s` (or the date alone without `now`). */
function when(timestamp: bigint, now: bigint | undefined): string {
  return now === undefined ? formatDate(timestamp) : `${formatDate(timestamp)}, ${formatRelative(timestamp, now)}`;
}

/** `value [date, in …]` for times, `value [starts date, in …]` for epochs whose start is known. */
function annotate(arg: RevertArg, options: DecodeRevertOptions): string {
  if (typeof arg.value !== "bigint") return arg.text;
  if (TIME_ARGS.has(arg.name)) return `${arg.text} [${when(arg.value, options.now)}]`;
  const start = EPOCH_ARGS.has(arg.name) ? options.epochStarts?.get(arg.value) : undefined;
  if (start !== undefined) {
    const verb = options.now !== undefined && start <= options.now ? "started" : "starts";
    return `${arg.text} [${verb} ${when(start, options.now)}]`;
  }
  return arg.text;
}

/** The message of a decoded error: `Name(arg=value, ...)`, times and epochs annotated. */
function messageOf(name: string, args: readonly RevertArg[], options: DecodeRevertOptions): string {
  return `${name}(${args.map((a) => `${a.name}=${annotate(a, options)}`).join(", ")})`;
}

/** Decodes revert data against every protocol contract's errors, Error(string) and Panic(uint256). */
export function decodeRevertData(data: Hex, options: DecodeRevertOptions = {}): DecodedRevert {
  const hex = data.toLowerCase() as Hex;
  if (hex === "0x") return { name: undefined, contract: undefined, args: [], message: "no revert reason", data: hex };
  const selector = hex.slice(0, 10) as Hex;
  const unknown: DecodedRevert = {
    name: undefined,
    contract: undefined,
    args: [],
    message: `unknown error ${selector} (data ${hex})`,
    data: hex,
  };
  const candidates = errorsBySelector().get(selector) ?? [];
  const known = candidates.find((k) => k.contract === options.prefer) ?? candidates[0];
  try {
    if (known !== undefined) {
      const { args } = decodeErrorResult({ abi: [known.item], data: hex });
      const values = (args ?? []) as readonly unknown[];
      const decoded = known.item.inputs.map((input: AbiParameter, i: number) => ({
        name: input.name || `arg${i}`,
        type: input.type,
        value: values[i],
        text: formatValue(values[i], input),
      }));
      return {
        name: known.item.name,
        contract: known.contract,
        args: decoded,
        message: messageOf(known.item.name, decoded, options),
        data: hex,
      };
    }
    // Error(string) and Panic(uint256), which viem knows without an ABI.
    const { errorName, args } = decodeErrorResult({ abi: [], data: hex });
    const value = (args ?? [])[0];
    if (errorName === "Panic" && typeof value === "bigint") {
      const code = `0x${value.toString(16).padStart(2, "0")}`;
      const reason = PANIC_REASONS[Number(value)] ?? "unknown panic code";
      return {
        name: "Panic",
        contract: undefined,
        args: [{ name: "code", type: "uint256", value, text: code }],
        message: `Panic(${code}: ${reason})`,
        data: hex,
      };
    }
    if (errorName === "Error") {
      const text = JSON.stringify(value);
      return {
        name: "Error",
        contract: undefined,
        args: [{ name: "message", type: "string", value, text }],
        message: `Error(${text})`,
        data: hex,
      };
    }
  } catch {
    // Unknown selector, or data too short for its error's arguments.
  }
  return unknown;
}

/** The epochs a decoded revert names (to look up their start times for {DecodeRevertOptions.epochStarts}). */
export function revertEpochs(decoded: DecodedRevert): bigint[] {
  return decoded.args.filter((a) => EPOCH_ARGS.has(a.name) && typeof a.value === "bigint").map((a) => a.value as bigint);
}

/** Every error in the chain of `cause`s (and JSON-RPC `error`s), outermost first. */
function errorChain(err: unknown): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  const queue: unknown[] = [err];
  while (queue.length > 0 && out.length < 32) {
    const current = queue.shift();
    if (typeof current !== "object" || current === null || out.includes(current as Record<string, unknown>)) continue;
    const record = current as Record<string, unknown>;
    out.push(record);
    queue.push(record.cause, record.error);
  }
  return out;
}

const REVERT_DATA = /^0x([0-9a-fA-F]{8}([0-9a-fA-F]{64})*)?$/;

/**
 * The revert data carried by `err` (viem's `raw`, a provider's `data` or `data.data`), undefined
 * when it carries none. Calldata of the request that failed is never taken for it.
 */
export function revertDataOf(err: unknown): Hex | undefined {
  for (const e of errorChain(err)) {
    for (const candidate of [e.raw, e.data, (e.data as { data?: unknown } | undefined)?.data]) {
      if (typeof candidate === "string" && REVERT_DATA.test(candidate)) return candidate as Hex;
    }
  }
  return undefined;
}

/**
 * Whether `err` says the EVM reverted (viem's revert errors, or JSON-RPC error code 3), as opposed
 * to an RPC failure or a bad request. Strict, because the transaction sender retries whatever is
 * not a revert.
 */
export function isRevert(err: unknown): boolean {
  return errorChain(err).some((e) => e.name === "ExecutionRevertedError" || e.name === "ContractFunctionRevertedError" || e.code === 3);
}

/** Looser than {@link isRevert}: also a provider's message that says it reverted (Hardhat's in-process network). */
function saysReverted(err: unknown): boolean {
  return isRevert(err) || errorChain(err).some((e) => /revert/i.test(String(e.message ?? "")));
}

/**
 * Decodes the revert in `err` (thrown by viem, a Hardhat provider or a JSON-RPC server), or
 * returns undefined when `err` is not a revert. A revert without decodable data reports what the
 * node said.
 */
export function decodeRevert(err: unknown, options: DecodeRevertOptions = {}): DecodedRevert | undefined {
  const data = revertDataOf(err);
  if (data !== undefined && data !== "0x") return decodeRevertData(data, options);
  if (!saysReverted(err)) return undefined;
  const details = errorChain(err)
    .map((e) => e.details)
    .find((d) => typeof d === "string" && d !== "");
  const said =
    (details as string | undefined) ?? (err instanceof BaseError ? err.shortMessage : err instanceof Error ? err.message : String(err));
  return { name: undefined, contract: undefined, args: [], message: said.split("\n")[0], data };
}

/** A call or transaction to a protocol contract reverted. */
export class ContractRevertError extends Error {
  /** The contract called (errors bubbling up from contracts it calls are still decoded). */
  readonly contract: string;
  readonly decoded: DecodedRevert;
  constructor(contract: string, decoded: DecodedRevert, options?: { cause?: unknown }) {
    super(`${contract} reverted: ${decoded.message}`, options);
    this.name = "ContractRevertError";
    this.contract = contract;
    this.decoded = decoded;
  }
}
