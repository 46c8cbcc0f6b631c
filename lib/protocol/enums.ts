// Names of the contracts' enums, in the order of their Solidity declarations (the ABI encodes an
// enum as its index). `test/tasks/tasks.test.ts` checks these lists against the interfaces.
//
// Plain `as const` arrays, not TypeScript enums: this module also runs under Node's type
// stripping (see index.ts).
import { FAULT_KIND_NAMES } from "./eip712.ts";

/** {IEdgeStaking.EdgeStatus}: lifecycle status derived by the staking contract. */
export const EDGE_STATUS_NAMES = ["None", "Registered", "Active", "Paused", "Jailed", "Exiting"] as const;
export type EdgeStatusName = (typeof EDGE_STATUS_NAMES)[number];

/** {IEdgeRegistry.EdgeState}: registry-level state of an edge. */
export const EDGE_STATE_NAMES = ["None", "Registered", "Paused", "Exiting"] as const;
export type EdgeStateName = (typeof EDGE_STATE_NAMES)[number];

/** {IEdgeStaking.DeclineReason}: why a reward credit paid nothing. */
export const DECLINE_REASON_NAMES = ["Jailed", "NoEarningStake"] as const;
export type DeclineReasonName = (typeof DECLINE_REASON_NAMES)[number];

/** {IEdgeStaking.Parameter}: governance parameters named in events and errors. */
export const PARAMETER_NAMES = [
  "MinSelfBond",
  "UnbondingDelay",
  "CommissionDelay",
  "OperatorFirstLossBps",
  "SlashBurnBps",
  "MaxSlashBps",
  "JailPeriod",
] as const;
export type ParameterName = (typeof PARAMETER_NAMES)[number];

/** {IVerifierSet.VerifierStatus}. */
export const VERIFIER_STATUS_NAMES = ["None", "Pending", "Active", "Exiting", "Withdrawn", "Ejected"] as const;
/** {IVerifierSet.Parameter}. */
const VERIFIER_PARAMETER_NAMES = ["MinBond", "ExitDelay", "Quorum", "SlashBps", "ReporterBps"] as const;
/** {IEpochSettlement.EpochState}. */
const EPOCH_STATE_NAMES = ["None", "Pending", "Frozen", "Resolved"] as const;
export type EpochStateName = (typeof EPOCH_STATE_NAMES)[number];
/** {IEpochSettlement.Parameter}. */
const SETTLEMENT_PARAMETER_NAMES = [
  "DisputeWindow",
  "MinInflation",
  "MaxInflation",
  "InflationStep",
  "TargetBondingRate",
  "FaultSlashBps",
  "MaxFaultAge",
  "GuardianDelay",
] as const;
/** {IComputeMarket.Parameter}. */
const MARKET_PARAMETER_NAMES = ["FeeBps", "ThawingPeriod"] as const;

/** Enum lists by the ABI's `internalType` (what the compiler writes for enum parameters). */
export const ENUMS_BY_INTERNAL_TYPE: Readonly<Record<string, readonly string[]>> = {
  "enum IEdgeStaking.EdgeStatus": EDGE_STATUS_NAMES,
  "enum IEdgeRegistry.EdgeState": EDGE_STATE_NAMES,
  "enum IEdgeStaking.DeclineReason": DECLINE_REASON_NAMES,
  "enum IEdgeStaking.Parameter": PARAMETER_NAMES,
  "enum IVerifierSet.VerifierStatus": VERIFIER_STATUS_NAMES,
  "enum IVerifierSet.Parameter": VERIFIER_PARAMETER_NAMES,
  "enum IEpochSettlement.EpochState": EPOCH_STATE_NAMES,
  "enum IEpochSettlement.FaultKind": FAULT_KIND_NAMES,
  "enum IEpochSettlement.Parameter": SETTLEMENT_PARAMETER_NAMES,
  "enum IComputeMarket.Parameter": MARKET_PARAMETER_NAMES,
};

function nameIn<T extends readonly string[]>(names: T, value: bigint | number): T[number] | `Unknown(${string})` {
  const i = Number(value);
  return Number.isInteger(i) && i >= 0 && i < names.length ? names[i] : `Unknown(${value})`;
}

/** Name of an {IEdgeStaking.EdgeStatus} value, `Unknown(n)` when out of range. */
export function edgeStatusName(value: bigint | number): EdgeStatusName | `Unknown(${string})` {
  return nameIn(EDGE_STATUS_NAMES, value);
}

/** Name of an {IEdgeRegistry.EdgeState} value, `Unknown(n)` when out of range. */
export function edgeStateName(value: bigint | number): EdgeStateName | `Unknown(${string})` {
  return nameIn(EDGE_STATE_NAMES, value);
}

/** Name of an {IEdgeStaking.Parameter} value, `Unknown(n)` when out of range. */
export function parameterName(value: bigint | number): ParameterName | `Unknown(${string})` {
  return nameIn(PARAMETER_NAMES, value);
}

/** Name of an {IVerifierSet.VerifierStatus} value, `Unknown(n)` when out of range. */
export function verifierStatusName(value: bigint | number): (typeof VERIFIER_STATUS_NAMES)[number] | `Unknown(${string})` {
  return nameIn(VERIFIER_STATUS_NAMES, value);
}

/** Name of an {IEpochSettlement.EpochState} value, `Unknown(n)` when out of range. */
export function epochStateName(value: bigint | number): EpochStateName | `Unknown(${string})` {
  return nameIn(EPOCH_STATE_NAMES, value);
}
