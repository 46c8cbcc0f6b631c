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

/** All generated ABIs merged (functions, events and errors of every contract), e.g. to decode any protocol error. */
export function mergedProtocolAbi(): Abi {
  const seen = new Set<string>();
  const merged: Abi[number][] = [];
  for (const abi of Object.values(ABIS) as readonly Abi[]) {
    for (const entry of abi) {
      if (entry.type === "constructor" || entry.type === "fallback" || entry.type === "receive") continue;
      const key = `${entry.type}:${entry.name}(${entry.inputs.map((i) => i.type).join(",")})`;
      if (seen.has(key)) continue;
      seen.add(key);
      merged.push(entry);
    }
  }
  return merged;
}
