// The power of two choices (Mitzenmacher; Azar, Broder, Karlin and Upfal): draw two distinct
// edges uniformly and send to the one with fewer outstanding requests. Comparing only two random
// edges already brings the worst queue down from about log n / log log n to about log log n, and
// since each router compares a different pair, routers working from the same view do not all
// pick the same edge. A tie keeps the first of the pair, which is itself a random draw.
import { twoDistinct } from "./choice.ts";
import type { EdgeCandidate, PolicyOptions, RouteDecision, RoutingPolicy } from "./types.ts";

export function createPowerOfTwoPolicy(options: PolicyOptions = {}): RoutingPolicy {
  const random = options.random ?? Math.random;
  return {
    name: "power-of-two",
    choose(candidates: readonly EdgeCandidate[]): RouteDecision {
      if (candidates.length === 1) return { edge: candidates[0], reason: "only-candidate" };
      const [a, b] = twoDistinct(candidates, random);
      const edge = b.outstanding < a.outstanding ? b : a;
      return { edge, terms: { outstanding: edge.outstanding, otherOutstanding: (edge === a ? b : a).outstanding }, reason: "best-of-2" };
    },
  };
}
