import { ABIS } from "./abis.generated.ts";

export * from "./abis.generated.ts";

/** Contracts whose ABI is generated. */
export type ProtocolAbiName = keyof typeof ABIS;

/** The ABI of `name` (typed). */
export function protocolAbi<N extends ProtocolAbiName>(name: N): (typeof ABIS)[N] {
  return ABIS[name];
}
