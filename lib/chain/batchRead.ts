// Many contract reads at one block, in multicall batches with bounded concurrency: one eth_call
// runs a batch through viem's deployless Multicall3 (the aggregator's code travels with the call,
// so no contract needs deploying on the chain), and only `concurrency` batches are in flight at
// once, so reading 100,000 records is a few hundred requests that never flood the node.
import pMap from "p-map";
import type { Abi, Address, PublicClient } from "viem";

/** One read: the same shape as viem's `multicall` contracts. */
export interface ContractRead {
  address: Address;
  abi: Abi;
  functionName: string;
  args?: readonly unknown[];
}

export interface BatchReadOptions {
  /** The block to read at (default: latest). */
  blockNumber?: bigint;
  /** Reads per multicall. Default 600. */
  callsPerBatch?: number;
  /** Multicalls in flight at once. Default 4. */
  concurrency?: number;
}

/** The results of `reads`, in order. Throws if any read reverts (callers retry). */
export async function readInBatches(
  client: PublicClient,
  reads: readonly ContractRead[],
  options: BatchReadOptions = {},
): Promise<unknown[]> {
  const size = options.callsPerBatch ?? 600;
  const batches: ContractRead[][] = [];
  for (let i = 0; i < reads.length; i += size) batches.push(reads.slice(i, i + size));
  const results = await pMap(
    batches,
    (contracts) =>
      client.multicall({
        contracts,
        allowFailure: false,
        deployless: true,
        // The batches are already bounded: viem's own chunking by bytes would split them again.
        batchSize: 0,
        blockNumber: options.blockNumber,
      }) as Promise<unknown[]>,
    { concurrency: options.concurrency ?? 4 },
  );
  return results.flat();
}
