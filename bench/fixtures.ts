// Synthetic epochs for the benchmarks (and the tests that check the fast tree builder on them).
// Importing this file runs nothing.
import { buildEpochTreeFast, QUALITY_ONE, type EdgeResult, type FastEpochTree } from "../lib/protocol/merkle.ts";

/** The `index`-th result of a synthetic epoch: edge `index + 1`, stake and quality varied deterministically. */
export function syntheticResult(index: number): EdgeResult {
  const i = BigInt(index);
  return {
    edgeId: i + 1n,
    stake: (1_000n + (i % 997n)) * 10n ** 18n,
    quality: (i * 7_919n) % (QUALITY_ONE + 1n),
  };
}

/** A synthetic epoch of `n` edges (ids 1..n), built without materialising the results. */
export function buildLargeEpochTree(epoch: bigint, n: number): FastEpochTree {
  return buildEpochTreeFast(epoch, { length: n, get: syntheticResult });
}
