// Session affinity with bounded loads: requests of one conversation go to the same edge (its
// prompt cache stays warm there), unless that edge already carries more than its share.
//
// - Which edge: rendezvous (highest-random-weight) hashing, Thaler and Ravishankar. Every edge gets
//   a pseudo-random weight hash(key, edge) and the key's edges are ranked by weight. An edge coming
//   or going moves only the keys it ranks first for, and the order of the other edges for a key
//   never changes, so a key's fallback is as stable as its first choice. With a few dozen edges,
//   hashing each one per request is cheaper than keeping a ring up to date.
// - How much: consistent hashing with bounded loads, Mirrokni, Thorup and Zadimoghaddam. With the
//   request counted, the average load per slot is (Σ outstanding + 1) / Σ slots; an edge may take
//   the request while its outstanding + 1 stays within max(1, (1 + ε) × average × its slots) —
//   not rounded up as in the paper, since with a few slots an edge would go well past 1 + ε of the
//   average. The ranked edges are walked in order and the first within its bound takes the
//   request (reason "affinity" when it is the first, "spill" otherwise); since the walk follows
//   the fixed ranking, an overloaded edge's keys all spill to the same next edge (its cache warms
//   too). When no edge is within its bound (every one at the average), the inner policy chooses.
// - The tenant's price cap comes first, as in every policy (choice.ts, withinPrice): the edges are
//   ranked among those it accepts, all of them when none does.
// - Requests without a key are left to the inner policy.
//
// The hash is lib/reference-model's FNV-1a with a splitmix finaliser: integer arithmetic with a
// frozen output, so every router process, on any machine or version, ranks a key's edges in the
// same order, and it costs far less than a cryptographic digest. Being predictable is harmless:
// whoever picks a key can already aim it at any edge by trying a few keys, and the bound caps the
// load such keys can put on one edge.
import { hash2, hashString } from "../../lib/reference-model/hash.ts";
import { slots, withinPrice } from "./choice.ts";
import { checkOption } from "./errors.ts";
import type { EdgeCandidate, RouteDecision, RouteRequest, RoutingPolicy } from "./types.ts";

export interface AffinityOptions {
  /** How far over the average load per slot the preferred edge may go, as a fraction. Default 0.25. */
  epsilon?: number;
}

/** `candidates` in rendezvous order for `key`: highest weight first, ties by edge key. */
export function rendezvousOrder(key: string, candidates: readonly EdgeCandidate[]): EdgeCandidate[] {
  const keyHash = hashString(key);
  return candidates
    .map((edge) => ({ edge, weight: hash2(keyHash, hashString(edge.key)) }))
    .sort((a, b) => b.weight - a.weight || (a.edge.key < b.edge.key ? -1 : a.edge.key > b.edge.key ? 1 : 0))
    .map((ranked) => ranked.edge);
}

/** Wraps `inner` so requests with an affinity key stick to an edge within a bounded load. */
export function withAffinity(inner: RoutingPolicy, options: AffinityOptions = {}): RoutingPolicy {
  const epsilon = options.epsilon ?? 0.25;
  checkOption(Number.isFinite(epsilon) && epsilon >= 0, "affinity", "epsilon", epsilon, "a finite number of at least 0");
  return {
    name: `${inner.name}+affinity`,
    choose(candidates: readonly EdgeCandidate[], request: RouteRequest): RouteDecision {
      if (request.affinityKey === undefined) return inner.choose(candidates, request);
      const { pool, fallback } = withinPrice(candidates, request.maxPricePerOutputToken);
      let totalOutstanding = 0;
      let totalSlots = 0;
      for (const c of pool) {
        totalOutstanding += c.outstanding;
        totalSlots += slots(c);
      }
      const averagePerSlot = (totalOutstanding + 1) / totalSlots;
      const ranked = rendezvousOrder(request.affinityKey, pool);
      // Not rounded up (a small edge would go well past 1 + ε of the average), but at least one
      // request, so that an idle network keeps every key on its edge.
      const bound = (edge: EdgeCandidate) => Math.max(1, (1 + epsilon) * averagePerSlot * slots(edge));
      const rank = ranked.findIndex((edge) => edge.outstanding + 1 <= bound(edge));
      // Every edge at its bound (it is fractional, so all can be): the inner policy spreads it.
      if (rank < 0) return { ...inner.choose(pool, request), reason: "spill" };
      const edge = ranked[rank]!;
      return {
        edge,
        terms: { rank, outstanding: edge.outstanding, bound: bound(edge), averagePerSlot },
        reason: fallback ? "price-fallback" : rank === 0 ? "affinity" : "spill",
      };
    },
  };
}
