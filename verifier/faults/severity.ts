// Which fault is reported when an edge has several in one epoch (one report per edge and epoch).
import type { FaultKindName } from "../../lib/protocol/eip712.ts";

/** Fault kinds from most to least severe: the one reported when an edge has several in an epoch. */
export const FAULT_SEVERITY: readonly FaultKindName[] = ["WrongAnswer", "AuditFailure", "Unresponsive", "CapacityShortfall"];

/** The most severe of `kinds`. */
export function mostSevere(kinds: readonly FaultKindName[]): FaultKindName | undefined {
  return FAULT_SEVERITY.find((k) => kinds.includes(k));
}
