// What a verifier could observe of an epoch: planned challenge slots against those with a result.
import { expect } from "chai";

import { planEpochChallenges } from "../../../../verifier/challenges/plan.ts";
import { challengeFailedAfterRetries } from "../../../../verifier/challenges/types.ts";
import type { ChallengeResult } from "../../../../verifier/challenges/types.ts";
import { coverageRatio, edgeCoverage, plannedSlots } from "../../../../verifier/consensus/coverage.ts";

const COUNTS = { inference: 6, latency: 4, capacity: 1, audit: 1 };
const target = {
  edgeId: 3n,
  endpoint: "http://127.0.0.1:1",
  signingKey: "0x0000000000000000000000000000000000000001" as const,
  capacity: 100,
  models: [],
};

describe("verifier: what it could observe of an epoch", function () {
  const plan = planEpochChallenges({ epoch: 5n, epochStart: 6_000, epochLength: 60, edge: target, config: COUNTS });

  it("counts a challenge the edge failed after its retries as run: it is evidence", function () {
    const failed = plan.map((spec) => challengeFailedAfterRetries(spec, new Error("timed out")));
    expect(edgeCoverage(plan, failed, plannedSlots(5n, COUNTS))).to.deep.equal({ planned: 12, ran: 12 });
  });

  it("counts slots without a result (expired, never queued) as not run, and ignores results outside the plan or recorded twice", function () {
    const some: ChallengeResult[] = plan.slice(0, 3).map((spec) => ({ ...challengeFailedAfterRetries(spec, "x"), outcome: "pass" }));
    const stray = { ...some[0]!, id: `0x${"ab".repeat(32)}` as const };
    const coverage = edgeCoverage(plan, [...some, some[1]!, stray], plannedSlots(5n, COUNTS));
    expect(coverage).to.deep.equal({ planned: 12, ran: 3 });
    expect(coverageRatio(coverage)).to.equal(0.25);
  });

  it("counts an edge the tick never planned as every slot of a plan missed (no audit in epoch 0)", function () {
    expect(edgeCoverage(undefined, [], plannedSlots(5n, COUNTS))).to.deep.equal({ planned: 12, ran: 0 });
    expect(plannedSlots(0n, COUNTS)).to.equal(11);
    expect(coverageRatio({ planned: 0, ran: 0 }), "nothing to observe, nothing missed").to.equal(1);
  });
});
