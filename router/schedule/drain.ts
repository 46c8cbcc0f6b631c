// How fast the requests waiting for a model's edges will get a slot: the sum over its edges of
// slots / mean time a request holds one (learned per edge, from grant to release). A measured
// count of releases is not used on its own: at the start of a surge it still reflects the quiet
// minute before, and would shed requests the edges can serve.
/** Smoothing of the hold times (a slow average: requests' lengths vary by an order of magnitude). */
const HOLD_EWMA = 0.05;

export interface DrainEstimator {
  /** A request held a slot on `edgeKey` for `heldMs`. */
  released(edgeKey: string, heldMs: number): void;
  /** Slots freed per second by `edges` (their slots over their mean hold time). */
  rate(edges: ReadonlyArray<{ key: string; slots: number }>): number;
  /** Mean hold time over every edge, ms (the prior for an edge not measured yet). */
  meanHoldMs(): number;
}

export function createDrainEstimator(options: { priorHoldMs: number }): DrainEstimator {
  const holds = new Map<string, number>();
  let overall = 0;
  return {
    released(edgeKey, heldMs) {
      if (!(heldMs >= 0)) return;
      const held = holds.get(edgeKey);
      holds.set(edgeKey, held === undefined ? heldMs : held * (1 - HOLD_EWMA) + heldMs * HOLD_EWMA);
      overall = overall === 0 ? heldMs : overall * (1 - HOLD_EWMA) + heldMs * HOLD_EWMA;
    },
    rate(edges) {
      const prior = overall > 0 ? overall : options.priorHoldMs;
      let perMs = 0;
      for (const edge of edges) perMs += edge.slots / Math.max(1, holds.get(edge.key) ?? prior);
      return perMs * 1000;
    },
    meanHoldMs: () => (overall > 0 ? overall : options.priorHoldMs),
  };
}
