// The contract every policy keeps (one of the given candidates, untouched, for any non-empty list)
// and the baselines' own rules: round robin's rotation, least outstanding's minimum, the power of
// two choices and Peak-EWMA never taking the worse of their pair; createPolicy by name.
import { expect } from "chai";
import fc from "fast-check";

import { TidewayError } from "../../../../lib/errors.ts";
import { createPolicy, POLICY_NAMES } from "../../../../router/policy/index.ts";
import { createLeastOutstandingPolicy } from "../../../../router/policy/least-outstanding.ts";
import { createPeakEwmaPolicy, peakEwmaCost } from "../../../../router/policy/peak-ewma.ts";
import { createPowerOfTwoPolicy } from "../../../../router/policy/power-of-two.ts";
import { createRoundRobinPolicy } from "../../../../router/policy/round-robin.ts";
import { candidateLists, edge, request, requests, seeded, tally, expectNear } from "./fixtures.ts";

describe("routing policies: the contract", function () {
  for (const name of POLICY_NAMES) {
    for (const affinity of [undefined, { epsilon: 0.25 }]) {
      it(`${name}${affinity ? " with affinity" : ""} returns one of the candidates, unchanged, with finite terms`, function () {
        fc.assert(
          fc.property(candidateLists(), requests, fc.integer(), (candidates, req, seed) => {
            const policy = createPolicy(name, { random: seeded(seed), affinity });
            const before = structuredClone(candidates);
            for (let i = 0; i < 3; i++) {
              const decision = policy.choose(candidates, req);
              expect(candidates).to.include(decision.edge);
              for (const value of Object.values(decision.terms ?? {})) expect(Number.isFinite(value), `term ${value}`).to.equal(true);
            }
            expect(candidates).to.deep.equal(before);
          }),
          { numRuns: 200 },
        );
      });
    }
  }
});

describe("createPolicy", function () {
  it("builds each named policy, and wraps it in affinity when asked", function () {
    for (const name of POLICY_NAMES) {
      expect(createPolicy(name).name).to.equal(name);
      expect(createPolicy(name, { affinity: {} }).name).to.equal(`${name}+affinity`);
    }
  });

  it("refuses an unknown name with a TidewayError listing the valid ones", function () {
    let error: unknown;
    try {
      createPolicy("fastest");
    } catch (e) {
      error = e;
    }
    expect(error).to.be.instanceOf(TidewayError);
    expect((error as TidewayError).code).to.equal("unknown_routing_policy");
    for (const name of POLICY_NAMES) expect((error as Error).message).to.include(name);
  });
});

describe("round-robin policy", function () {
  it("takes the candidates in turn, each equally often", function () {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 12 }), fc.integer({ min: 1, max: 5 }), (n, rounds) => {
        const candidates = Array.from({ length: n }, (_, i) => edge(`e${i}`));
        const policy = createRoundRobinPolicy();
        const picks = Array.from({ length: n * rounds }, () => policy.choose(candidates, request).edge);
        expect(picks).to.deep.equal(picks.map((_, i) => candidates[i % n]));
        expect(Object.values(tally(picks.map((p) => p.key)))).to.deep.equal(Array(n).fill(rounds));
      }),
    );
  });

  it("keeps rotating when the list shrinks", function () {
    const policy = createRoundRobinPolicy();
    const three = [edge("e1"), edge("e2"), edge("e3")];
    policy.choose(three, request);
    policy.choose(three, request);
    const two = three.slice(0, 2);
    const keys = Array.from({ length: 4 }, () => policy.choose(two, request).edge.key);
    expect(tally(keys)).to.deep.equal({ e1: 2, e2: 2 });
  });
});

describe("least-outstanding policy", function () {
  it("never picks an edge with more outstanding requests than the minimum", function () {
    fc.assert(
      fc.property(candidateLists(), fc.integer(), (candidates, seed) => {
        const picked = createLeastOutstandingPolicy({ random: seeded(seed) }).choose(candidates, request).edge;
        expect(picked.outstanding).to.equal(Math.min(...candidates.map((c) => c.outstanding)));
      }),
    );
  });

  it("breaks ties at random rather than by list order", function () {
    const candidates = [edge("e1", { outstanding: 2 }), edge("e2", { outstanding: 1 }), edge("e3", { outstanding: 1 })];
    const policy = createLeastOutstandingPolicy({ random: seeded(7) });
    const counts = tally(Array.from({ length: 2000 }, () => policy.choose(candidates, request).edge.key));
    expect(counts.e1).to.equal(undefined);
    expect(counts.e2).to.be.within(900, 1100);
  });
});

describe("power-of-two policy", function () {
  it("of two edges, always takes the one with fewer outstanding", function () {
    fc.assert(
      fc.property(
        candidateLists(2).filter((l) => l.length === 2),
        fc.integer(),
        (candidates, seed) => {
          const picked = createPowerOfTwoPolicy({ random: seeded(seed) }).choose(candidates, request).edge;
          expect(picked.outstanding).to.equal(Math.min(candidates[0].outstanding, candidates[1].outstanding));
        },
      ),
    );
  });

  it("compares a uniformly drawn pair: never the worst edge, the middle one about a third of the time", function () {
    const candidates = [edge("best", { outstanding: 0 }), edge("middle", { outstanding: 1 }), edge("worst", { outstanding: 2 })];
    const policy = createPowerOfTwoPolicy({ random: seeded(11) });
    const counts = tally(Array.from({ length: 6000 }, () => policy.choose(candidates, request).edge.key));
    expect(counts.worst).to.equal(undefined);
    expectNear(counts.middle / 6000, 1 / 3, 0.03);
  });
});

describe("peak-ewma policy", function () {
  it("costs an edge its peak latency (its round trip while unmeasured) times outstanding + 1", function () {
    expect(peakEwmaCost(edge("a", { peakEwmaMs: 50, rttMs: 10, outstanding: 3 }))).to.equal(200);
    expect(peakEwmaCost(edge("b", { peakEwmaMs: 0, rttMs: 10, outstanding: 2 }))).to.equal(30);
  });

  it("of two edges, always takes the lower cost: a slower idle edge beats a faster busy one", function () {
    const fastBusy = edge("fast", { peakEwmaMs: 40, outstanding: 4 });
    const slowIdle = edge("slow", { peakEwmaMs: 100, outstanding: 0 });
    const policy = createPeakEwmaPolicy({ random: seeded(3) });
    for (let i = 0; i < 50; i++) expect(policy.choose([fastBusy, slowIdle], request).edge).to.equal(slowIdle);
    fc.assert(
      fc.property(
        candidateLists(2).filter((l) => l.length === 2),
        fc.integer(),
        (candidates, seed) => {
          const picked = createPeakEwmaPolicy({ random: seeded(seed) }).choose(candidates, request).edge;
          expect(peakEwmaCost(picked)).to.equal(Math.min(...candidates.map(peakEwmaCost)));
        },
      ),
    );
  });

  it("never takes the costliest of three", function () {
    const candidates = [edge("a", { peakEwmaMs: 10 }), edge("b", { peakEwmaMs: 20 }), edge("c", { peakEwmaMs: 30 })];
    const policy = createPeakEwmaPolicy({ random: seeded(5) });
    const counts = tally(Array.from({ length: 3000 }, () => policy.choose(candidates, request).edge.key));
    expect(counts.c).to.equal(undefined);
    expect(counts.a).to.be.greaterThan(counts.b);
  });
});
