// The chain's current epoch, read at most once a second per process: every challenge job asks,
// thousands a second at full load.
import type { Address, PublicClient } from "viem";

import { edgeStakingAbi } from "../../lib/protocol/abis.ts";

export type EpochClock = () => Promise<bigint>;

export function createEpochClock(client: PublicClient, staking: Address, maxAgeMs = 1_000): EpochClock {
  let cache: { value: bigint; at: number } | undefined;
  return async () => {
    if (cache === undefined || Date.now() - cache.at > maxAgeMs) {
      cache = { value: await client.readContract({ address: staking, abi: edgeStakingAbi, functionName: "currentEpoch" }), at: Date.now() };
    }
    return cache.value;
  };
}
