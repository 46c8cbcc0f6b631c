// Scoring: the documented formula (verifier/consensus/scoring.ts, verifier/README.md) on hand-built
// results. Every expected value below is worked out from the formula in the comment beside it.
import { expect } from "chai";
import type { Hex } from "viem";

import type { ChallengeKind, ChallengeResult } from "../../../../verifier/challenges/types.ts";
import { DEFAULT_SCORING, scoreEdge, scoreEdges } from "../../../../verifier/consensus/scoring.ts";

let next = 0;
function result(kind: ChallengeKind, outcome: "pass" | "fail", extra: Partial<ChallengeResult> = {}): ChallengeResult {
  next += 1;
  return { id: `0x${next.toString(16).padStart(64, "0")}` as Hex, epoch: "7", edgeId: "1", kind, outcome, detail: "", ...extra };
}
const passes = (n: number, kind: ChallengeKind = "inference") => Array.from({ length: n }, () => result(kind, "pass"));

describe("scoring", function () {
  describe("scoreEdge", function () {
    it("gives quality 0 and no fault when there are no results", function () {
      const s = scoreEdge([]);
      expect(s.quality).to.equal(0n);
      expect(s.faults).to.deep.equal([]);
      expect(s.challenges).to.equal(0);
    });

    it("gives full quality when everything passed and no latency or capacity challenge ran (both neutral)", function () {
      const s = scoreEdge(passes(6));
      expect(s.quality).to.equal(1_000_000n);
      expect(s).to.include({ passRate: 1, latencyScore: 1, capacityScore: 1, challenges: 6, passed: 6 });
    });

    it("floors the pass rate in ppm: 2 of 3 → 666,666", function () {
      const s = scoreEdge([...passes(2), result("inference", "fail")]);
      expect(s.passRate).to.equal(0.666666);
      expect(s.quality).to.equal(666_666n);
    });

    it("scores latency from the lower median, linearly between the good and bad thresholds", function () {
      // Latencies 400, 5500, 5500, 9000 → lower median 5500; (10000 − 5500) / (10000 − 1000) = 0.5
      // → factor 0.5 + 0.5 × 0.5 = 0.75 → quality 750,000.
      const rs = [400, 5500, 9000, 5500].map((ms) => result("latency", "pass", { latencyMs: ms }));
      const s = scoreEdge(rs);
      expect(s.medianLatencyMs).to.equal(5500);
      expect(s.latencyScore).to.equal(0.5);
      expect(s.quality).to.equal(750_000n);
    });

    it("takes the LOWER median of an even count and clamps at the thresholds", function () {
      // 100, 200, 3000, 4000 → lower median 200 ≤ 1000 → latencyScore 1.
      expect(scoreEdge([100, 4000, 200, 3000].map((ms) => result("latency", "pass", { latencyMs: ms }))).latencyScore).to.equal(1);
      // At the bad threshold exactly → 0 → factor 0.5.
      const slow = scoreEdge([result("latency", "fail", { latencyMs: DEFAULT_SCORING.latencyBadMs })]);
      expect(slow.latencyScore).to.equal(0);
      expect(slow.quality).to.equal(0n); // its only challenge failed: pass rate 0
      // One ms above good: floor(8999 × 1e6 / 9000) = 999,888.
      expect(scoreEdge([result("latency", "pass", { latencyMs: 1001 })]).latencyScore).to.equal(0.999888);
    });

    it("counts a failed latency challenge's measured time, and gives 0 when none was answered", function () {
      // Pass 900 ms + fail 12,000 ms (too slow) → lower median 900 → latency 1; pass rate 1/2.
      const s = scoreEdge([result("latency", "pass", { latencyMs: 900 }), result("latency", "fail", { latencyMs: 12_000 })]);
      expect(s.latencyScore).to.equal(1);
      expect(s.quality).to.equal(500_000n);
      // Inference passes, latency challenges unanswered: 4/6 pass → 666,666 × 0.5 = 333,333.
      const t = scoreEdge([...passes(4), result("latency", "fail"), result("latency", "fail")]);
      expect(t.latencyScore).to.equal(0);
      expect(t.quality).to.equal(333_333n);
    });

    it("scores capacity as min(1, servedRatio / minServed) and flags a shortfall below 0.5", function () {
      // 3 passes + a capacity failure at 0.45: pass rate 750,000; capacity 0.45 / 0.9 = 0.5
      // → 750,000 × 1 × 0.5 = 375,000; 0.45 < 0.5 → CapacityShortfall.
      const s = scoreEdge([...passes(3), result("capacity", "fail", { servedRatio: 0.45 })]);
      expect(s.capacityScore).to.equal(0.5);
      expect(s.servedRatio).to.equal(0.45);
      expect(s.quality).to.equal(375_000n);
      expect(s.faults).to.deep.equal(["CapacityShortfall"]);
      // Above minServed: capped at 1, no fault.
      const t = scoreEdge([...passes(3), result("capacity", "pass", { servedRatio: 0.95 })]);
      expect(t.capacityScore).to.equal(1);
      expect(t.quality).to.equal(1_000_000n);
      expect(t.faults).to.deep.equal([]);
      // Exactly 0.5 is not a shortfall.
      expect(scoreEdge([result("capacity", "fail", { servedRatio: 0.5 })]).faults).to.deep.equal([]);
    });

    it("counts a capacity challenge without a ratio (unanswered) as 0 served, without a shortfall fault", function () {
      const s = scoreEdge([...passes(3), result("capacity", "fail")]);
      expect(s.capacityScore).to.equal(0);
      expect(s.quality).to.equal(0n);
      expect(s.faults).to.deep.equal([]);
    });

    it("combines the three factors: passRate × (0.5 + 0.5 × latency) × capacity", function () {
      // 5 pass of 6 → 833,333; latency median 5500 → 0.5 → factor 750,000 → 624,999 (floor of
      // 833,333 × 0.75 = 624,999.75); capacity 0.72 / 0.9 = 0.8 → floor(624,999 × 0.8) = 499,999.
      const rs = [
        ...passes(3),
        result("latency", "pass", { latencyMs: 5500 }),
        result("latency", "fail", { latencyMs: 5500 }),
        result("capacity", "pass", { servedRatio: 0.72 }),
      ];
      const s = scoreEdge(rs, { minServed: 0.9 });
      expect(s.passRate).to.equal(0.833333);
      expect(s.capacityScore).to.equal(0.8);
      expect(s.quality).to.equal(499_999n);
    });

    it("zeroes the quality on a WrongAnswer or an AuditFailure and lists faults in FaultKind order", function () {
      const wrong = result("inference", "fail", { fault: { kind: "WrongAnswer", evidence: {} } });
      const audit = result("audit", "fail", { fault: { kind: "AuditFailure", evidence: {} } });
      const s = scoreEdge([...passes(10), audit, wrong]);
      expect(s.quality).to.equal(0n);
      expect(s.faults).to.deep.equal(["WrongAnswer", "AuditFailure"]);
      expect(s.faultResults.map((r) => r.id).sort()).to.deep.equal([wrong.id, audit.id].sort());
      expect(scoreEdge([...passes(10), audit]).quality).to.equal(0n);
    });

    it("calls an edge Unresponsive when all of at least 3 non-audit challenges failed, audits aside", function () {
      const s = scoreEdge([result("inference", "fail"), result("latency", "fail"), result("capacity", "fail"), result("audit", "pass")]);
      expect(s.faults).to.deep.equal(["Unresponsive"]);
      expect(s.quality).to.equal(0n);
      // Two failures are not enough to call it.
      const t = scoreEdge([result("inference", "fail"), result("inference", "fail"), result("audit", "pass")]);
      expect(t.faults).to.deep.equal([]);
      expect(t.quality).to.equal(333_333n); // 1 of 3 passed
      // One pass among them: not unresponsive.
      expect(
        scoreEdge([result("inference", "fail"), result("inference", "fail"), result("inference", "fail"), result("inference", "pass")])
          .faults,
      ).to.deep.equal([]);
    });

    it("counts a result recorded twice once, preferring the failure, whatever the order", function () {
      const pass = result("inference", "pass");
      const failTwin: ChallengeResult = { ...pass, outcome: "fail", detail: "retried and failed" };
      const extra = passes(1);
      const a = scoreEdge([pass, failTwin, ...extra]);
      const b = scoreEdge([failTwin, ...extra, pass]);
      expect(a.challenges).to.equal(2);
      expect(a.passed).to.equal(1);
      expect(a.quality).to.equal(500_000n);
      expect(b).to.deep.equal(a);
    });

    it("is deterministic: the same results in any order give the same score", function () {
      const rs = [
        ...passes(4),
        result("latency", "pass", { latencyMs: 2345.6 }),
        result("latency", "fail", { latencyMs: 7000 }),
        result("capacity", "pass", { servedRatio: 0.93 }),
        result("audit", "pass"),
      ];
      const forward = scoreEdge(rs);
      const backward = scoreEdge([...rs].reverse());
      expect(backward).to.deep.equal(forward);
      expect(typeof forward.quality).to.equal("bigint");
      expect(forward.quality >= 0n && forward.quality <= 1_000_000n).to.equal(true);
    });

    it("matches the examples in verifier/README.md", function () {
      // Everything passed, median 500 ms, burst fully served → 1,000,000.
      expect(
        scoreEdge([
          ...passes(6),
          ...[500, 400, 600, 500].map((ms) => result("latency", "pass", { latencyMs: ms })),
          result("capacity", "pass", { servedRatio: 1 }),
        ]).quality,
      ).to.equal(1_000_000n);
      // All passed, median 5,500 ms → 750,000.
      expect(
        scoreEdge([...passes(6), ...[5500, 5500, 5500, 5500].map((ms) => result("latency", "pass", { latencyMs: ms }))]).quality,
      ).to.equal(750_000n);
      // 11 of 12 passed, latency 1,000 ms, 72% of the burst served → 916,666 × 1 × 0.8 = 733,332.
      const rs = [
        ...passes(6),
        ...passes(4).map((r) => ({ ...r, kind: "latency" as const, latencyMs: 1000 })),
        result("capacity", "fail", { servedRatio: 0.72 }),
        result("audit", "pass"),
      ];
      expect(scoreEdge(rs).quality).to.equal(733_332n);
    });

    it("refuses thresholds that make no sense", function () {
      expect(() => scoreEdge(passes(1), { latencyGoodMs: 5000, latencyBadMs: 5000 })).to.throw(RangeError, /latencyBadMs/);
      expect(() => scoreEdge(passes(1), { minServed: 0 })).to.throw(RangeError, /minServed/);
      expect(() => scoreEdge(passes(1), { minServed: 1.2 })).to.throw(RangeError, /minServed/);
    });
  });

  describe("scoreEdges", function () {
    it("scores each edge of an epoch separately, in edge id order", function () {
      const rs = [
        { ...result("inference", "pass"), edgeId: "10" },
        { ...result("inference", "fail"), edgeId: "2" },
        { ...result("inference", "pass"), edgeId: "2" },
      ];
      const scores = scoreEdges(rs);
      expect([...scores.keys()]).to.deep.equal(["2", "10"]);
      expect(scores.get("2")!.quality).to.equal(500_000n);
      expect(scores.get("10")!.quality).to.equal(1_000_000n);
    });
  });
});
