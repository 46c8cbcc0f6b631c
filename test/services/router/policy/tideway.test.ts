// The default policy: the lowest estimated time to first token among a few edges drawn by
// capacity, cold (free slot) edges first, a share of exploration for unmeasured edges, and a price
// cap that falls back rather than fails.
import { expect } from "chai";
import fc from "fast-check";

import { sampleWeighted } from "../../../../router/policy/choice.ts";
import { RoutingPolicyError } from "../../../../router/policy/errors.ts";
import { createTidewayPolicy, estimateFirstToken } from "../../../../router/policy/tideway.ts";
import type { EdgeCandidate } from "../../../../router/policy/types.ts";
import { candidateLists, edge, request, requests, seeded, tally, expectNear } from "./fixtures.ts";

const noExploration = { explorationShare: 0 };

describe("tideway policy", function () {
  describe("the estimate", function () {
    it("adds round trip, queueing beyond the free slots and prefill", function () {
      // 4 slots at 100 tokens/s each; 6 in flight: this request waits for 3 of them (256 tokens each).
      const busy = edge("e1", { rttMs: 30, outstanding: 6, concurrency: 4, serviceTokensPerSecond: 100, prefillTokensPerSecond: 2000 });
      const estimate = estimateFirstToken(busy, { ...request, promptTokens: 500 });
      expect(estimate).to.deep.include({ rttMs: 30, load: 6, occupancy: 1.5, prefillMs: 250 });
      expectNear(estimate.queueMs, ((3 * 256) / 400) * 1000, 1e-9);
      expectNear(estimate.estimateMs, 30 + 1920 + 250, 1e-9);
      expect(estimateFirstToken(edge("e2", { outstanding: 3, concurrency: 4 }), request).queueMs).to.equal(0);
    });

    it("falls back to the declared capacity over the slots, and a prefill prior, for an unmeasured edge", function () {
      const fresh = edge("e1", {
        outstanding: 4,
        concurrency: 4,
        declaredTokensPerSecond: 800,
        serviceTokensPerSecond: 0,
        prefillTokensPerSecond: 0,
      });
      const estimate = estimateFirstToken(fresh, { ...request, promptTokens: 1000 });
      expectNear(estimate.queueMs, (256 / 800) * 1000, 1e-9);
      expect(estimate.prefillMs).to.equal(500);
    });

    it("counts a fresh load report (never below the router's own count) and ignores a stale one", function () {
      const reported = (ageMs: number, inFlight: number) =>
        edge("e1", { outstanding: 2, reported: { inFlight, queued: 1, saturation: 1, ageMs } });
      expect(estimateFirstToken(reported(100, 5), request).load).to.equal(6);
      expect(estimateFirstToken(reported(100, 0), request).load).to.equal(2);
      expect(estimateFirstToken(reported(60_000, 5), request).load).to.equal(2);
    });
  });

  it("always picks the idle near fast edge over busy far ones", function () {
    const near = edge("near", { rttMs: 5, outstanding: 0, serviceTokensPerSecond: 150 });
    const far = [edge("far1", { rttMs: 90, outstanding: 6 }), edge("far2", { rttMs: 120, outstanding: 3 })];
    for (const candidates of [
      [near, ...far],
      [...far, near],
    ]) {
      const policy = createTidewayPolicy({ ...noExploration, random: seeded(1) });
      for (let i = 0; i < 500; i++) {
        const decision = policy.choose(candidates, request);
        expect(decision.edge).to.equal(near);
        expect(decision.reason).to.equal("best-of-d");
        expect(decision.terms).to.include({ rttMs: 5, queueMs: 0 });
      }
    }
  });

  it("with d at least the candidates, never picks a hot edge while a cold one exists, and takes the cold one estimated fastest", function () {
    const unreported = candidateLists().map((list) => list.map((c): EdgeCandidate => ({ ...c, reported: undefined })));
    fc.assert(
      fc.property(unreported, requests, fc.integer(), (candidates, req, seed) => {
        const policy = createTidewayPolicy({ ...noExploration, d: candidates.length, random: seeded(seed) });
        const decision = policy.choose(candidates, { ...req, maxPricePerOutputToken: undefined });
        const isCold = (c: EdgeCandidate) => c.outstanding < Math.max(1, c.concurrency);
        const cold = candidates.filter(isCold);
        if (cold.length === 0) {
          expect(decision.reason).to.equal("all-hot");
          return;
        }
        expect(isCold(decision.edge)).to.equal(true);
        expect(decision.reason).to.equal("best-of-d");
        const fastest = Math.min(...cold.map((c) => estimateFirstToken(c, req).estimateMs));
        expect(decision.terms?.estimateMs).to.equal(fastest);
      }),
    );
  });

  it("prefers a cold far edge to a hot near one, and among hot edges the lowest estimate", function () {
    const nearHot = edge("near", { rttMs: 5, outstanding: 4, concurrency: 4 });
    const farCold = edge("far", { rttMs: 150, outstanding: 3, concurrency: 4 });
    const policy = createTidewayPolicy({ ...noExploration, random: seeded(2) });
    expect(policy.choose([nearHot, farCold], request).edge).to.equal(farCold);
    const farHot = { ...farCold, outstanding: 4 };
    const decision = policy.choose([nearHot, farHot], request);
    expect(decision.edge).to.equal(nearHot);
    expect(decision.reason).to.equal("all-hot");
  });

  it("samples edges in proportion to their declared capacity", function () {
    // With d = 1 the sampled edge is the choice, so choice frequencies are the sampling weights.
    const capacities = [100, 200, 300, 400];
    const candidates = capacities.map((tps, i) => edge(`e${i}`, { declaredTokensPerSecond: tps }));
    const policy = createTidewayPolicy({ ...noExploration, d: 1, random: seeded(42) });
    const draws = 10_000;
    const counts = tally(Array.from({ length: draws }, () => policy.choose(candidates, request).edge.key));
    const total = capacities.reduce((a, b) => a + b, 0);
    let chiSquare = 0;
    capacities.forEach((tps, i) => {
      const expected = (draws * tps) / total;
      chiSquare += ((counts[`e${i}`] ?? 0) - expected) ** 2 / expected;
    });
    // 3 degrees of freedom: 16.27 is the 99.9% quantile.
    expect(chiSquare).to.be.lessThan(16.27);
  });

  it("draws distinct edges, zero-capacity ones only after every edge with capacity", function () {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 5 }), { minLength: 1, maxLength: 12 }),
        fc.integer({ min: 1, max: 14 }),
        fc.integer(),
        (weights, count, seed) => {
          const items = weights.map((w, i) => ({ i, w }));
          const drawn = sampleWeighted(items, (x) => x.w, count, seeded(seed));
          expect(drawn).to.have.length(Math.min(count, items.length));
          expect(new Set(drawn).size).to.equal(drawn.length);
          const firstZero = drawn.findIndex((x) => x.w === 0);
          if (firstZero >= 0) expect(drawn.slice(firstZero).every((x) => x.w === 0)).to.equal(true);
        },
      ),
    );
  });

  it("explores edges with few samples at about the exploration share", function () {
    // The unmeasured edges are far and slow: only exploration sends them anything.
    const measured = Array.from({ length: 6 }, (_, i) => edge(`m${i}`, { rttMs: 10 }));
    const unmeasured = [edge("u1", { rttMs: 400, samples: 0 }), edge("u2", { rttMs: 400, samples: 2 })];
    const policy = createTidewayPolicy({ explorationShare: 0.05, random: seeded(9) });
    const draws = 10_000;
    const decisions = Array.from({ length: draws }, () => policy.choose([...measured, ...unmeasured], request));
    const explored = decisions.filter((d) => d.reason === "explore");
    expectNear(explored.length / draws, 0.05, 0.01);
    expect(explored.every((d) => unmeasured.includes(d.edge))).to.equal(true);
    expect(decisions.filter((d) => unmeasured.includes(d.edge))).to.have.length(explored.length);
    expectNear(tally(explored.map((d) => d.edge.key)).u1 / explored.length, 0.5, 0.1);
  });

  it("does not explore when every edge is measured", function () {
    const policy = createTidewayPolicy({ explorationShare: 1, random: seeded(4) });
    const decision = policy.choose([edge("e1", { samples: 3 }), edge("e2", { samples: 50 })], request);
    expect(decision.reason).to.equal("best-of-d");
  });

  it("keeps to edges within the tenant's price cap, and falls back to all of them when none is", function () {
    const cheapSlow = edge("cheap", { rttMs: 200, price: { inputPerToken: 1n, outputPerToken: 1n } });
    const dearFast = edge("dear", { rttMs: 5, price: { inputPerToken: 1n, outputPerToken: 5n } });
    const policy = createTidewayPolicy({ ...noExploration, random: seeded(8) });
    const capped = policy.choose([cheapSlow, dearFast], { ...request, maxPricePerOutputToken: 2n });
    expect(capped.edge).to.equal(cheapSlow);
    expect(capped.reason).to.equal("best-of-d");
    expect(policy.choose([cheapSlow, dearFast], { ...request, maxPricePerOutputToken: 1n }).edge).to.equal(cheapSlow);
    const fallback = policy.choose([{ ...cheapSlow, price: { inputPerToken: 1n, outputPerToken: 3n } }, dearFast], {
      ...request,
      maxPricePerOutputToken: 2n,
    });
    expect(fallback.edge).to.equal(dearFast);
    expect(fallback.reason).to.equal("price-fallback");
    expect(policy.choose([cheapSlow, dearFast], request).edge).to.equal(dearFast);
  });

  it("refuses options out of range", function () {
    for (const options of [{ d: 0 }, { d: 1.5 }, { explorationShare: 1.2 }, { hotOccupancy: 0 }, { meanOutputTokens: 0 }]) {
      expect(() => createTidewayPolicy(options), JSON.stringify(options))
        .to.throw(RoutingPolicyError)
        .with.property("code", "invalid_policy_option");
    }
  });
});
