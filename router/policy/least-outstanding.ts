// Least outstanding requests: the edge this router has the fewest unfinished requests on, ties at
// random. It reacts to slow edges (their requests pile up), but it sees only this router's own
// traffic and ignores capacity and distance, and every router that sees the same minimum sends
// its next request there at once (herding).
import { minBy } from "./choice.ts";
import type { EdgeCandidate, PolicyOptions, RouteDecision, RoutingPolicy } from "./types.ts";

export function createLeastOutstandingPolicy(options: PolicyOptions = {}): RoutingPolicy {
  const random = options.random ?? Math.random;
  return {
    name: "least-outstanding",
    choose(candidates: readonly EdgeCandidate[]): RouteDecision {
      const edge = minBy(candidates, (c) => c.outstanding, random);
      return { edge, terms: { outstanding: edge.outstanding }, reason: "least-outstanding" };
    },
  };
}
