// Uniform random choice: the baseline with no state and no information. Many routers using it do
// not herd, but a slow or full edge gets as many requests as a fast idle one.
import { pickUniform } from "./choice.ts";
import type { EdgeCandidate, PolicyOptions, RouteDecision, RoutingPolicy } from "./types.ts";

export function createRandomPolicy(options: PolicyOptions = {}): RoutingPolicy {
  const random = options.random ?? Math.random;
  return {
    name: "random",
    choose(candidates: readonly EdgeCandidate[]): RouteDecision {
      return { edge: pickUniform(candidates, random), reason: "random" };
    },
  };
}
