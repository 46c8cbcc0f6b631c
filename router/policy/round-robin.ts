// Round robin: each call takes the next candidate in list order. The baseline every balancer is
// compared against; it ignores load, so it only balances when every edge is alike and every
// request costs the same. The cursor survives changes to the list (it is taken modulo its length),
// so edges joining or leaving shift the order but never stop the rotation.
import type { EdgeCandidate, RouteDecision, RoutingPolicy } from "./types.ts";

export function createRoundRobinPolicy(): RoutingPolicy {
  let cursor = 0;
  return {
    name: "round-robin",
    choose(candidates: readonly EdgeCandidate[]): RouteDecision {
      const edge = candidates[cursor % candidates.length];
      cursor = (cursor + 1) % Number.MAX_SAFE_INTEGER;
      return { edge, reason: "round-robin" };
    },
  };
}
