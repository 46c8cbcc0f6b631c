// Fees of the sender's transactions: EIP-1559 where the chain has a base fee (legacy gas price
// where it has none, learnt once), and the fees of a replacement, which nodes accept only when
// every fee field rises by at least 10 %.
import { Eip1559FeesNotSupportedError } from "viem";
import type { PublicClient } from "viem";

import { causes } from "./errors.ts";
import type { TxFees } from "./record.ts";

/** Returns a function that reads the current fees from the node (one RPC call, or two the first time on a legacy chain). */
export function createFeeEstimator(publicClient: PublicClient): () => Promise<TxFees> {
  let mode: "eip1559" | "legacy" | undefined;
  return async () => {
    if (mode !== "legacy") {
      try {
        const f = await publicClient.estimateFeesPerGas({ type: "eip1559", chain: undefined });
        mode = "eip1559";
        return { type: "eip1559", maxFeePerGas: f.maxFeePerGas, maxPriorityFeePerGas: f.maxPriorityFeePerGas };
      } catch (err) {
        if (!causes(err).some((e) => e instanceof Eip1559FeesNotSupportedError)) throw err;
        mode = "legacy"; // no base fee on this chain: legacy gas price
      }
    }
    const f = await publicClient.estimateFeesPerGas({ type: "legacy", chain: undefined });
    return { type: "legacy", gasPrice: f.gasPrice };
  };
}

/** Fees for a replacement: +`bumpPercent` on each field (rounded up), and at least the current estimate. */
export function bumpedFees(prev: TxFees, current: TxFees, bumpPercent: number): TxFees {
  const pct = BigInt(bumpPercent);
  const up = (x: bigint) => {
    const y = (x * (100n + pct) + 99n) / 100n;
    return y > x ? y : x + 1n;
  };
  const max = (...xs: bigint[]) => xs.reduce((a, b) => (a > b ? a : b));
  if (prev.type === "legacy") {
    const cur = current.type === "legacy" ? current.gasPrice : current.maxFeePerGas;
    return { type: "legacy", gasPrice: max(up(prev.gasPrice), cur) };
  }
  const curFee = current.type === "eip1559" ? current.maxFeePerGas : current.gasPrice;
  const curTip = current.type === "eip1559" ? current.maxPriorityFeePerGas : current.gasPrice;
  const tip = max(up(prev.maxPriorityFeePerGas), curTip);
  return { type: "eip1559", maxPriorityFeePerGas: tip, maxFeePerGas: max(up(prev.maxFeePerGas), curFee, tip) };
}
