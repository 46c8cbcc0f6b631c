// Peak-EWMA (Finagle, and Linkerd's proxy after it): an edge's cost is its peak-sensitive moving
// average of latency times the requests it would then have in flight, cost = latency ×
// (outstanding + 1). The average jumps up at once on a slow response and decays slowly, so an edge
// that turns slow is avoided before its queue grows; multiplying by the outstanding count makes a
// fast edge lose its lead as work piles onto it. An edge without a latency sample yet is costed at
// its round-trip time, so it is neither shunned nor flooded.
//
// Like Linkerd, it compares two random distinct edges (power of two choices) rather than taking
// the global minimum: latency averages move slowly, so every router would see the same minimum
// and pile onto it until its average caught up, while random pairs spread the load and still
// never send to the costlier of the two.
import { twoDistinct } from "./choice.ts";
import type { EdgeCandidate, PolicyOptions, RouteDecision, RoutingPolicy } from "./types.ts";

/** The Peak-EWMA cost of sending one more request to `edge`, in latency-milliseconds. */
export function peakEwmaCost(edge: EdgeCandidate): number {
  const latencyMs = edge.peakEwmaMs > 0 ? edge.peakEwmaMs : edge.rttMs;
  return latencyMs * (edge.outstanding + 1);
}

export function createPeakEwmaPolicy(options: PolicyOptions = {}): RoutingPolicy {
  const random = options.random ?? Math.random;
  return {
    name: "peak-ewma",
    choose(candidates: readonly EdgeCandidate[]): RouteDecision {
      if (candidates.length === 1) return { edge: candidates[0], terms: { cost: peakEwmaCost(candidates[0]) }, reason: "only-candidate" };
      const [a, b] = twoDistinct(candidates, random);
      const edge = peakEwmaCost(b) < peakEwmaCost(a) ? b : a;
      return { edge, terms: { cost: peakEwmaCost(edge), otherCost: peakEwmaCost(edge === a ? b : a) }, reason: "best-of-2" };
    },
  };
}
