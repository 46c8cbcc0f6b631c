// Many contract reads at one block, in multicall batches with bounded concurrency: one eth_call
// runs a batch through viem's deployless Multicall3 (the aggregator's code travels with the call,
// so no contract needs deploying on the chain), and only `concurrency` batches are in flight at
// once, so reading 100,000 records is a few hundred requests that never flood the node.
import pMap from "p-map";
import type { Abi, AbiFunction, AbiParameter, Address, PublicClient } from "viem";

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
  /** Reads per multicall at most (default 600); fewer when their calldata would exceed {MAX_BATCH_CALL_BYTES}. */
  callsPerBatch?: number;
  /** Multicalls in flight at once. Default 4. */
  concurrency?: number;
}

/**
 * A deployless multicall is creation code run by eth_call: nodes bound that code at 49,152 bytes
 * (EIP-3860; the aggregator's own code takes about 6 KB of it) and what it returns, the results,
 * at 24,576 bytes (EIP-170), so a batch is cut where either would be exceeded.
 */
export const MAX_BATCH_CALL_BYTES = 40_000;
export const MAX_BATCH_RESULT_BYTES = 23_000;

/**
 * A read's size in an aggregate3 call: the array's offset, the target, allowFailure, the data's
 * offset and length (5 words), then the data (selector and one word an argument: the reads here
 * take static arguments), padded to words.
 */
const callBytes = (read: ContractRead) => 160 + 32 * Math.ceil((4 + 32 * (read.args?.length ?? 0)) / 32);

/** A dynamic value (string, bytes, array) counts as this many bytes: the reads here return few. */
const DYNAMIC_BYTES = 256;

function abiBytes(p: AbiParameter): number {
  if (p.type === "tuple") return (p as { components: readonly AbiParameter[] }).components.reduce((a, c) => a + abiBytes(c), 0);
  if (p.type === "string" || p.type === "bytes" || p.type.endsWith("]")) return DYNAMIC_BYTES;
  return 32;
}

const resultSizes = new WeakMap<Abi, Map<string, number>>();

/** A read's size in aggregate3's results: the result's offset, success, the data's offset and length (4 words), then what the function returns. */
function resultBytes(read: ContractRead): number {
  let sizes = resultSizes.get(read.abi);
  if (sizes === undefined) {
    sizes = new Map();
    resultSizes.set(read.abi, sizes);
  }
  let size = sizes.get(read.functionName);
  if (size === undefined) {
    const fn = read.abi.find((item): item is AbiFunction => item.type === "function" && item.name === read.functionName);
    size = 128 + (fn?.outputs.reduce((a, o) => a + abiBytes(o), 0) ?? DYNAMIC_BYTES);
    sizes.set(read.functionName, size);
  }
  return size;
}

/** The results of `reads`, in order. Throws if any read reverts (callers retry). */
export async function readInBatches(
  client: PublicClient,
  reads: readonly ContractRead[],
  options: BatchReadOptions = {},
): Promise<unknown[]> {
  const size = options.callsPerBatch ?? 600;
  const batches: ContractRead[][] = [];
  let batch: ContractRead[] = [];
  let inBytes = 0;
  let outBytes = 0;
  for (const read of reads) {
    const i = callBytes(read);
    const o = resultBytes(read);
    if (batch.length > 0 && (batch.length >= size || inBytes + i > MAX_BATCH_CALL_BYTES || outBytes + o > MAX_BATCH_RESULT_BYTES)) {
      batches.push(batch);
      batch = [];
      inBytes = 0;
      outBytes = 0;
    }
    batch.push(read);
    inBytes += i;
    outBytes += o;
  }
  if (batch.length > 0) batches.push(batch);
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
