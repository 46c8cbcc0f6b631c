// The `challenges` queue's processor: one challenge against one edge. A challenge of an epoch that
// is over is dropped (it can no longer count), except audits, which check the previous epoch. A
// WrongAnswer found queues the fault's co-signing at once: its evidence is self-contained.
import type { Job } from "bullmq";

import type { EpochClock } from "../chain/epochClock.ts";
import { runChallengeAttempt } from "../challenges/runner.ts";
import type { ChallengeJobData, ChallengeRunner } from "../challenges/runner.ts";
import type { ChallengeResult } from "../challenges/types.ts";
import type { VerifierContext } from "../context.ts";
import { queueFault } from "./queues.ts";
import type { VerifierQueues } from "./queues.ts";

export interface ChallengeJobDeps {
  ctx: Pick<VerifierContext, "state" | "metrics" | "logger">;
  queues: Pick<VerifierQueues, "epochs">;
  challenges: Pick<ChallengeRunner, "run">;
  currentEpoch: EpochClock;
}

export function createChallengeJob(deps: ChallengeJobDeps): (job: Job<ChallengeJobData>) => Promise<ChallengeResult | "expired"> {
  const {
    ctx: { state, metrics, logger },
    queues,
    challenges,
    currentEpoch,
  } = deps;
  return async (job) => {
    const { spec } = job.data;
    if (spec.kind !== "audit" && (await currentEpoch()) > BigInt(spec.epoch)) {
      metrics.challenges.inc({ kind: spec.kind, outcome: "expired" });
      return "expired";
    }
    const result = await runChallengeAttempt({ run: challenges.run, state, metrics, logger }, job);
    if (result.fault !== undefined) {
      metrics.faults.inc({ kind: result.fault.kind });
      logger.warn({ edgeId: spec.edgeId, epoch: spec.epoch, kind: result.fault.kind, detail: result.detail }, "challenge found a fault");
      if (result.fault.kind === "WrongAnswer")
        await queueFault(queues, { edgeId: spec.edgeId, epoch: spec.epoch, kind: "WrongAnswer", evidence: result.fault.evidence });
    }
    return result;
  };
}
