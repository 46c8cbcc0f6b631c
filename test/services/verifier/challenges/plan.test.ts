// Planning: counts per kind, times uniform inside [start + 5%, end − 10%], unique random ids,
// JSON-serialisable specs, injectable randomness.
import { expect } from "chai";
import type { Address } from "viem";

import { challengeWindow, planEpochChallenges } from "../../../../verifier/challenges/plan.ts";
import { seededRandom } from "../../../../verifier/challenges/random.ts";
import type { ChallengeTarget } from "../../../../verifier/challenges/types.ts";

const edge: ChallengeTarget = {
  edgeId: 42n,
  endpoint: "https://edge.example.org",
  signingKey: "0x00000000000000000000000000000000000000aa" as Address,
  capacity: 500,
  models: ["tideway/reference-1", "llama3.1-8b"],
};
const START = 1_700_000_000;
const LENGTH = 3_600;

describe("challenge planning", function () {
  describe("challengeWindow", function () {
    it("is [start + 5%, end − 10%] of the epoch", function () {
      // 5% of 3600 = 180; 10% = 360 → [start + 180, start + 3240].
      expect(challengeWindow(START, LENGTH)).to.deep.equal({ from: START + 180, to: START + 3_240 });
      // 60 s epochs (the shortest): [start + 3, start + 54].
      expect(challengeWindow(START, 60)).to.deep.equal({ from: START + 3, to: START + 54 });
    });
  });

  describe("planEpochChallenges", function () {
    it("plans 6 inference, 4 latency, 1 capacity and 1 audit of the previous epoch by default", function () {
      const specs = planEpochChallenges({ epoch: 9n, epochStart: START, epochLength: LENGTH, edge, random: seededRandom(1) });
      const count = (k: string) => specs.filter((s) => s.kind === k).length;
      expect([count("inference"), count("latency"), count("capacity"), count("audit")]).to.deep.equal([6, 4, 1, 1]);
      for (const s of specs) {
        expect(s.epoch).to.equal("9");
        expect(s.edgeId).to.equal("42");
      }
      const audit = specs.find((s) => s.kind === "audit")!;
      expect(audit.params).to.deep.equal({ auditEpoch: "8", nonces: [], randomEntries: 4 });
      const capacity = specs.find((s) => s.kind === "capacity")!;
      expect(capacity.params).to.deep.equal({ maxBurst: 16, minServed: 0.9, deadlineMs: 15_000 });
      expect(capacity.model).to.equal("tideway/reference-1");
      for (const s of specs.filter((x) => x.kind === "inference")) expect(s.model).to.equal("tideway/reference-1");
      for (const s of specs.filter((x) => x.kind === "latency")) expect(edge.models).to.include(s.model);
    });

    it("follows the configured counts and parameters, and plans no audit in epoch 0", function () {
      const specs = planEpochChallenges({
        epoch: 0n,
        epochStart: START,
        epochLength: LENGTH,
        edge,
        random: seededRandom(2),
        config: {
          inference: 2,
          latency: 0,
          capacity: 3,
          audit: 5,
          maxBurst: 4,
          minServed: 0.75,
          capacityDeadlineMs: 9_000,
          maxLatencyMs: 777,
        },
      });
      expect(specs.map((s) => s.kind).sort()).to.deep.equal(["capacity", "capacity", "capacity", "inference", "inference"]);
      expect(specs.find((s) => s.kind === "capacity")!.params).to.deep.equal({ maxBurst: 4, minServed: 0.75, deadlineMs: 9_000 });
      const later = planEpochChallenges({
        epoch: 1n,
        epochStart: START,
        epochLength: LENGTH,
        edge,
        random: seededRandom(2),
        config: { inference: 0, latency: 1, capacity: 0, audit: 0, maxLatencyMs: 777 },
      });
      expect(later).to.have.length(1);
      expect(later[0]!.params).to.deep.equal({ maxLatencyMs: 777 });
    });

    it("places every challenge inside [start + 5%, end − 10%], spread over the window, sorted by time", function () {
      const { from, to } = challengeWindow(START, LENGTH);
      const all: number[] = [];
      for (let seed = 1; seed <= 100; seed++) {
        const specs = planEpochChallenges({ epoch: 3n, epochStart: START, epochLength: LENGTH, edge, random: seededRandom(seed) });
        const times = specs.map((s) => s.at);
        expect(times).to.deep.equal([...times].sort((a, b) => a - b));
        for (const t of times) {
          expect(Number.isInteger(t)).to.equal(true);
          expect(t).to.be.within(from, to);
        }
        all.push(...times);
      }
      // 1,200 uniform draws over 3,061 seconds: each tenth of the window gets about 120; none
      // gets under 60 unless the draws are not uniform (a binomial tail far below 1e-6).
      const tenths = Array.from({ length: 10 }, () => 0);
      for (const t of all) tenths[Math.min(9, Math.floor(((t - from) * 10) / (to - from + 1)))]! += 1;
      for (const n of tenths) expect(n).to.be.above(60);
      expect(Math.min(...all)).to.be.below(from + 30);
      expect(Math.max(...all)).to.be.above(to - 30);
    });

    it("gives each challenge a distinct 32-byte random id", function () {
      const specs = planEpochChallenges({ epoch: 3n, epochStart: START, epochLength: LENGTH, edge });
      const ids = new Set(specs.map((s) => s.id));
      expect(ids.size).to.equal(specs.length);
      for (const id of ids) expect(id).to.match(/^0x[0-9a-f]{64}$/);
    });

    it("is JSON-serialisable (BullMQ job data) without loss", function () {
      const specs = planEpochChallenges({
        epoch: 123456789012345678901234567890n,
        epochStart: START,
        epochLength: LENGTH,
        edge,
        random: seededRandom(5),
      });
      expect(JSON.parse(JSON.stringify(specs))).to.deep.equal(specs);
      expect(specs[0]!.epoch).to.equal("123456789012345678901234567890");
    });

    it("draws from the injected randomness: the same seed plans the same epoch, another seed another", function () {
      const plan = (seed: number) =>
        planEpochChallenges({ epoch: 4n, epochStart: START, epochLength: LENGTH, edge, random: seededRandom(seed) });
      expect(plan(11)).to.deep.equal(plan(11));
      expect(plan(12)).to.not.deep.equal(plan(11));
    });

    it("refuses a bad epoch length or a negative count", function () {
      expect(() => planEpochChallenges({ epoch: 1n, epochStart: START, epochLength: 0, edge })).to.throw(RangeError, /epochLength/);
      expect(() => planEpochChallenges({ epoch: 1n, epochStart: START, epochLength: LENGTH, edge, config: { latency: -1 } })).to.throw(
        RangeError,
        /latency/,
      );
    });
  });
});
