// Random choices the policies share: a uniform index, a uniform pick, an argmin that breaks ties
// at random (a fixed tie-break would send every tied request to the first edge in the list, and
// the list order comes from the router's map, not from anything about the edges), and sampling
// without replacement weighted by capacity. Every function takes the policy's random source, so
// a seeded source makes a whole decision reproducible. Also the tenant's price cap, which every
// choice starts from.
import type { EdgeCandidate } from "./types.ts";

/** A random source in [0, 1). */
export type RandomSource = () => number;

/** A uniform index in [0, n). Clamped, so a source that returns exactly 1 still stays in range. */
export function randomIndex(random: RandomSource, n: number): number {
  return Math.min(n - 1, Math.floor(random() * n));
}

/** One of `items` (non-empty), uniformly. */
export function pickUniform<T>(items: readonly T[], random: RandomSource): T {
  return items[randomIndex(random, items.length)];
}

/** Two different items of `candidates` (at least two), uniformly over ordered pairs. */
export function twoDistinct<T>(candidates: readonly T[], random: RandomSource): [T, T] {
  const i = randomIndex(random, candidates.length);
  // Draw from the n - 1 others and skip over i: uniform without a retry loop.
  let j = randomIndex(random, candidates.length - 1);
  if (j >= i) j++;
  return [candidates[i], candidates[j]];
}

/**
 * The item of `items` (non-empty) with the lowest `score`, ties broken uniformly at random
 * (reservoir sampling over the tied items, so one pass and no extra array).
 */
export function minBy<T>(items: readonly T[], score: (item: T) => number, random: RandomSource): T {
  let best = items[0];
  let bestScore = score(best);
  let ties = 1;
  for (let i = 1; i < items.length; i++) {
    const s = score(items[i]);
    if (s < bestScore) {
      best = items[i];
      bestScore = s;
      ties = 1;
    } else if (s === bestScore) {
      ties++;
      if (randomIndex(random, ties) === 0) best = items[i];
    }
  }
  return best;
}

/**
 * Up to `count` distinct items of `items`, drawn one at a time with probability proportional to
 * `weight` among those not drawn yet. Items of weight 0 (or less) are drawn only once every
 * positive-weight item is taken, and then uniformly. O(n × count): meant for small counts.
 */
export function sampleWeighted<T>(items: readonly T[], weight: (item: T) => number, count: number, random: RandomSource): T[] {
  const pool = [...items];
  const weights = pool.map((item) => Math.max(0, weight(item)));
  const picked: T[] = [];
  while (picked.length < count && pool.length > 0) {
    const total = weights.reduce((sum, w) => sum + w, 0);
    let index: number;
    if (total > 0) {
      const target = random() * total;
      let cumulative = 0;
      index = weights.findIndex((w) => {
        cumulative += w;
        return w > 0 && target < cumulative;
      });
      // Rounding can leave the sum a hair under `target` after the last positive weight.
      if (index < 0) index = weights.findLastIndex((w) => w > 0);
    } else {
      index = randomIndex(random, pool.length);
    }
    picked.push(pool[index]);
    pool.splice(index, 1);
    weights.splice(index, 1);
  }
  return picked;
}

/** Requests an edge serves at once: its concurrency, at least 1 (a profile may leave it 0). */
export function slots(edge: EdgeCandidate): number {
  return Math.max(1, edge.concurrency);
}

/**
 * The candidates at or under the tenant's price cap per output token, or all of them (`fallback`)
 * when none is: a cap is a preference, and an answer at a higher price beats none.
 */
export function withinPrice(
  candidates: readonly EdgeCandidate[],
  maxPricePerOutputToken: bigint | undefined,
): { pool: readonly EdgeCandidate[]; fallback: boolean } {
  if (maxPricePerOutputToken === undefined) return { pool: candidates, fallback: false };
  const affordable = candidates.filter((c) => c.price.outputPerToken <= maxPricePerOutputToken);
  return affordable.length > 0 ? { pool: affordable, fallback: false } : { pool: candidates, fallback: true };
}
