// One attempt of a challenge job (what the service's and the benchmark's BullMQ workers run): a
// stalled edge is retried until the last attempt, which records a failure; a challenge the
// verifier could not pay for is dropped unscored; a result is recorded and counted once.
import { UnrecoverableError } from "bullmq";
import { expect } from "chai";

import { runChallengeAttempt } from "../../../../verifier/challenges/runner.ts";
import type { ChallengeJobData } from "../../../../verifier/challenges/runner.ts";
import { ChallengeInconclusiveError, RetryableChallengeError } from "../../../../verifier/challenges/types.ts";
import type { ChallengeResult } from "../../../../verifier/challenges/types.ts";
import { createVerifierMetrics } from "../../../../verifier/metrics.ts";

const data: ChallengeJobData = {
  spec: {
    id: `0x${"ab".repeat(32)}`,
    epoch: "7",
    edgeId: "3",
    at: 0,
    model: "tideway/reference-1",
    kind: "latency",
    params: { maxLatencyMs: 5_000 },
  },
  target: {
    edgeId: "3",
    endpoint: "http://127.0.0.1:1",
    signingKey: "0x0000000000000000000000000000000000000001",
    capacity: 10,
    models: ["tideway/reference-1"],
  },
};
const job = (attemptsMade: number) => ({ data, attemptsMade, opts: { attempts: 3 } });

async function counter(metrics: ReturnType<typeof createVerifierMetrics>, name: string): Promise<Record<string, number>> {
  const m = (await metrics.registry.getMetricsAsJSON()).find((x) => x.name === name)!;
  return Object.fromEntries(m.values.map((v) => [JSON.stringify(v.labels), v.value]));
}

describe("a challenge job's attempt", function () {
  function setup(run: () => Promise<ChallengeResult>) {
    const recorded: ChallengeResult[] = [];
    const metrics = createVerifierMetrics({ defaultMetrics: false });
    const deps = { run, state: { recordResult: async (r: ChallengeResult) => void recorded.push(r) }, metrics };
    return { recorded, metrics, deps };
  }

  it("records and counts a result, with its latency", async function () {
    const result: ChallengeResult = {
      id: data.spec.id,
      epoch: "7",
      edgeId: "3",
      kind: "latency",
      outcome: "pass",
      latencyMs: 120,
      detail: "ok",
    };
    const { recorded, metrics, deps } = setup(async () => result);
    expect(await runChallengeAttempt(deps, job(0))).to.equal(result);
    expect(recorded).to.deep.equal([result]);
    expect(await counter(metrics, "tideway_verifier_challenges_total")).to.deep.equal({
      [JSON.stringify({ kind: "latency", outcome: "pass" })]: 1,
    });
    const text = await metrics.registry.metrics();
    expect(text).to.match(/^tideway_verifier_challenge_latency_seconds_sum\{kind="latency"\} 0\.12$/m);
  });

  it("throws a stalled edge's error back to BullMQ while attempts remain, recording nothing", async function () {
    const { recorded, metrics, deps } = setup(async () => {
      throw new RetryableChallengeError("timed out");
    });
    for (const attempt of [0, 1]) {
      let err: unknown;
      try {
        await runChallengeAttempt(deps, job(attempt));
      } catch (e) {
        err = e;
      }
      expect(err).to.be.instanceOf(RetryableChallengeError);
    }
    expect(recorded).to.have.length(0);
    expect(Object.values(await counter(metrics, "tideway_verifier_challenge_retries_total"))).to.deep.equal([2]);
  });

  it("records a failure, without a fault, on the last attempt", async function () {
    const { recorded, deps } = setup(async () => {
      throw new RetryableChallengeError("connection refused");
    });
    const result = await runChallengeAttempt(deps, job(2));
    expect(result).to.include({ outcome: "fail", kind: "latency", edgeId: "3", epoch: "7" });
    expect(result.fault).to.equal(undefined);
    expect(result.detail).to.include("connection refused");
    expect(recorded).to.deep.equal([result]);
  });

  it("drops a challenge the verifier could not pay for, unscored and not retried", async function () {
    const { recorded, deps } = setup(async () => {
      throw new ChallengeInconclusiveError("no open challenge session");
    });
    let err: unknown;
    try {
      await runChallengeAttempt(deps, job(0));
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(UnrecoverableError);
    expect(recorded).to.have.length(0);
  });

  it("lets any other error through (a bug, not the edge's failure)", async function () {
    const { recorded, deps } = setup(async () => {
      throw new TypeError("boom");
    });
    let err: unknown;
    try {
      await runChallengeAttempt(deps, job(2));
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(TypeError);
    expect(recorded).to.have.length(0);
  });
});
