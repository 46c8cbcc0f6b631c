// The protocol contracts' ABIs as `as const` literals, for viem (typed function names, arguments,
// results, events and errors). The literals live in abis.generated.ts, written by
// scripts/gen-abis.ts from Hardhat's artifacts; test/lib/abis.test.ts fails when it is stale.
import type { Abi } from "viem";

import { ABIS } from "./abis.generated.ts";

export * from "./abis.generated.ts";

/** Contracts whose ABI is generated. */
export type ProtocolAbiName = keyof typeof ABIS;

/** The ABI of `name` (typed). */
export function protocolAbi<N extends ProtocolAbiName>(name: N): (typeof ABIS)[N] {
  return ABIS[name];
}
