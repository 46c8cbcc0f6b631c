// Session affinity with bounded loads: a key sticks to its rendezvous-first edge, which does not
// move when other edges come and go, until that edge is over (1 + ε) × the average load per slot;
// then it spills down the key's fixed ranking. Requests without a key go to the wrapped policy.
import { expect } from "chai";
import fc from "fast-check";

import { rendezvousOrder, withAffinity } from "../../../../router/policy/affinity.ts";
import { RoutingPolicyError } from "../../../../router/policy/errors.ts";
import { createRandomPolicy } from "../../../../router/policy/random.ts";
import type { EdgeCandidate, RouteDecision, RoutingPolicy } from "../../../../router/policy/types.ts";
import { edge, request, seeded, tally, expectNear } from "./fixtures.ts";

const edges = (n: number, overrides: Partial<EdgeCandidate> = {}) => Array.from({ length: n }, (_, i) => edge(`edge-${i + 1}`, overrides));
const keys = fc.string({ minLength: 1, maxLength: 32 });

/** An inner policy that must not be asked (keyed requests never reach it). */
const unreachable: RoutingPolicy = {
  name: "unreachable",
  choose() {
    throw new Error("the inner policy was asked for a keyed request");
  },
};

describe("affinity wrapper", function () {
  it("sends a key to its rendezvous-first edge, every time, while that edge is within the bound", function () {
    fc.assert(
      fc.property(keys, fc.integer({ min: 1, max: 20 }), (key, n) => {
        const candidates = edges(n);
        const policy = withAffinity(unreachable);
        const first = policy.choose(candidates, { ...request, affinityKey: key });
        expect(first.edge).to.equal(rendezvousOrder(key, candidates)[0]);
        expect(first.reason).to.equal("affinity");
        for (let i = 0; i < 5; i++) expect(policy.choose(candidates, { ...request, affinityKey: key }).edge).to.equal(first.edge);
      }),
    );
  });

  it("spreads different keys over the edges", function () {
    const candidates = edges(8);
    const policy = withAffinity(unreachable);
    const counts = tally(
      Array.from({ length: 8000 }, (_, i) => policy.choose(candidates, { ...request, affinityKey: `conversation-${i}` }).edge.key),
    );
    for (const c of candidates) expectNear(counts[c.key] / 8000, 1 / 8, 0.025, c.key);
  });

  it("keeps a key on its edge when another edge leaves, and moves only the keys a new edge ranks first", function () {
    fc.assert(
      fc.property(keys, fc.integer({ min: 2, max: 20 }), fc.nat(), (key, n, pick) => {
        const candidates = edges(n);
        const policy = withAffinity(unreachable);
        const home = policy.choose(candidates, { ...request, affinityKey: key }).edge;
        const others = candidates.filter((c) => c !== home);
        const without = candidates.filter((c) => c !== others[pick % others.length]);
        expect(policy.choose(without, { ...request, affinityKey: key }).edge).to.equal(home);
      }),
    );
    const candidates = edges(6);
    const grown = [...candidates, edge("edge-new")];
    const policy = withAffinity(unreachable);
    let moved = 0;
    for (let i = 0; i < 3000; i++) {
      const key = `conversation-${i}`;
      const before = policy.choose(candidates, { ...request, affinityKey: key }).edge;
      const after = policy.choose(grown, { ...request, affinityKey: key }).edge;
      if (after !== before) {
        moved++;
        expect(after.key).to.equal("edge-new");
      }
    }
    expectNear(moved / 3000, 1 / 7, 0.03);
  });

  it("spills once the edge's load passes (1 + ε) × the average per slot, to the key's next edge", function () {
    // 4 edges of 4 slots; the others carry 4 each. With o on the home edge the bound is
    // 1.25 × (12 + o + 1) / 16 × 4: 5.31 for o = 4 and 5.63 for o = 5, so o + 1 fits up to o = 4.
    const key = "conversation-7";
    const base = edges(4, { concurrency: 4, outstanding: 4 });
    const [home, next] = rendezvousOrder(key, base);
    const policy = withAffinity(unreachable, { epsilon: 0.25 });
    const withHomeAt = (o: number) => base.map((c) => (c === home ? { ...c, outstanding: o } : c));
    const choose = (candidates: EdgeCandidate[]) => policy.choose(candidates, { ...request, affinityKey: key });
    for (const o of [0, 3, 4]) {
      const candidates = withHomeAt(o);
      expect(choose(candidates).edge.key, `outstanding ${o}`).to.equal(home.key);
    }
    for (const o of [5, 6, 7, 20]) {
      const candidates = withHomeAt(o);
      for (let i = 0; i < 5; i++) {
        const decision = choose(candidates);
        expect(decision.edge.key, `outstanding ${o}`).to.equal(next.key);
        expect(decision.reason).to.equal("spill");
      }
    }
  });

  it("spills every overloaded key to its own next edge, skipping edges over the bound too", function () {
    fc.assert(
      fc.property(keys, fc.integer({ min: 3, max: 12 }), (key, n) => {
        const idle = edges(n, { concurrency: 2 });
        const [home, second, third] = rendezvousOrder(key, idle);
        const overloaded = idle.map((c) => (c === home ? { ...c, outstanding: 50 } : c));
        const policy = withAffinity(unreachable);
        const spilled = policy.choose(overloaded, { ...request, affinityKey: key });
        expect(spilled.edge.key).to.equal(second.key);
        const both = overloaded.map((c) => (c.key === second.key ? { ...c, outstanding: 50 } : c));
        expect(policy.choose(both, { ...request, affinityKey: key }).edge.key).to.equal(third.key);
      }),
    );
  });

  it("weighs an edge's bound by its slots: a bigger edge holds a key under more load", function () {
    const key = "conversation-3";
    const ranked = rendezvousOrder(key, edges(4));
    const homeKey = ranked[0].key;
    const at = (concurrency: number) =>
      edges(4, { outstanding: 2 }).map((c) => (c.key === homeKey ? { ...c, concurrency, outstanding: 10 } : { ...c, concurrency: 4 }));
    const policy = withAffinity(unreachable);
    expect(policy.choose(at(4), { ...request, affinityKey: key }).reason).to.equal("spill");
    expect(policy.choose(at(32), { ...request, affinityKey: key }).reason).to.equal("affinity");
  });

  it("leaves requests without a key to the inner policy", function () {
    const candidates = edges(5);
    const decision: RouteDecision = { edge: candidates[3], reason: "inner" };
    const asked: unknown[] = [];
    const inner: RoutingPolicy = {
      name: "recording",
      choose(c, r) {
        asked.push([c, r]);
        return decision;
      },
    };
    const policy = withAffinity(inner);
    expect(policy.name).to.equal("recording+affinity");
    expect(policy.choose(candidates, request)).to.equal(decision);
    expect(asked).to.deep.equal([[candidates, request]]);
    const randomInside = withAffinity(createRandomPolicy({ random: seeded(1) }));
    const counts = tally(Array.from({ length: 500 }, () => randomInside.choose(candidates, request).edge.key));
    expect(Object.keys(counts)).to.have.length(5);
  });

  it("ranks only the edges within the tenant's price cap, and all of them when none is", function () {
    fc.assert(
      fc.property(keys, fc.integer({ min: 1, max: 10 }), fc.integer({ min: 1, max: 10 }), (key, cheapCount, dearCount) => {
        const cheap = edges(cheapCount);
        const dear = Array.from({ length: dearCount }, (_, i) =>
          edge(`dear-${i + 1}`, { price: { inputPerToken: 1n, outputPerToken: 5n } }),
        );
        const policy = withAffinity(unreachable);
        const capped = policy.choose([...dear, ...cheap], { ...request, affinityKey: key, maxPricePerOutputToken: 2n });
        expect(capped.edge).to.equal(rendezvousOrder(key, cheap)[0]);
        expect(capped.reason).to.equal("affinity");
        const over = policy.choose(dear, { ...request, affinityKey: key, maxPricePerOutputToken: 2n });
        expect(over.edge).to.equal(rendezvousOrder(key, dear)[0]);
        expect(over.reason).to.equal("price-fallback");
      }),
    );
  });

  it("refuses a negative epsilon", function () {
    expect(() => withAffinity(unreachable, { epsilon: -0.1 }))
      .to.throw(RoutingPolicyError)
      .with.property("code", "invalid_policy_option");
  });
});
