// The challenge machinery (verifier/challenges/) wired for the service: one payer (cumulative
// vouchers in this verifier's Redis), one recompute pool, the planner with the configured counts.
import { UnrecoverableError } from "bullmq";
import type { Job } from "bullmq";
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import type { Address, Hex, TypedDataDomain } from "viem";

import type { ModelConfig } from "../../lib/reference-model/index.ts";

import { ChallengePayer } from "./payer.ts";
import { planEpochChallenges } from "./plan.ts";
import { createRecomputePool } from "./recompute.ts";
import { runChallenge, verifyWrongAnswerEvidence } from "./run.ts";
import { challengeFailedAfterRetries, ChallengeInconclusiveError, REFERENCE_MODEL, RetryableChallengeError } from "./types.ts";
import type { ChallengeResult, ChallengeSpec, ChallengeTarget } from "./types.ts";
import type { VerifierMetrics } from "../metrics.ts";
import type { VerifierState } from "../state.ts";

/** What a challenge job carries (bigints as decimal strings: it is JSON in Redis). */
export interface ChallengeJobData {
  spec: ChallengeSpec;
  target: Omit<ChallengeTarget, "edgeId"> & { edgeId: string };
}

/**
 * One attempt of a challenge job: runs it and records and counts the result. An edge that
 * stalled throws, so that BullMQ tries again, until the last attempt, which records a failure; a
 * challenge that cannot be judged on the verifier's side (no session, payment refused) is dropped
 * unscored (UnrecoverableError).
 */
export async function runChallengeAttempt(
  deps: {
    run(spec: ChallengeSpec, target: ChallengeTarget): Promise<ChallengeResult>;
    state: Pick<VerifierState, "recordResult">;
    metrics: VerifierMetrics;
    logger?: Logger;
  },
  job: Pick<Job<ChallengeJobData>, "data" | "attemptsMade" | "opts">,
): Promise<ChallengeResult> {
  const { spec } = job.data;
  const target: ChallengeTarget = { ...job.data.target, edgeId: BigInt(job.data.target.edgeId) };
  let result: ChallengeResult;
  try {
    result = await deps.run(spec, target);
  } catch (err) {
    if (err instanceof RetryableChallengeError && job.attemptsMade + 1 < (job.opts.attempts ?? 1)) {
      deps.metrics.challengeRetries.inc();
      throw err;
    }
    if (err instanceof ChallengeInconclusiveError) {
      deps.logger?.warn({ challenge: spec.id, edgeId: spec.edgeId, err: err.message }, "challenge inconclusive (not scored)");
      throw new UnrecoverableError(err.message);
    }
    if (!(err instanceof RetryableChallengeError)) throw err;
    result = challengeFailedAfterRetries(spec, err);
  }
  await deps.state.recordResult(result);
  deps.metrics.challenges.inc({ kind: result.kind, outcome: result.outcome });
  if (result.latencyMs !== undefined) deps.metrics.challengeLatency.observe({ kind: result.kind }, result.latencyMs / 1000);
  return result;
}

export interface ChallengeRunnerOptions {
  redis: Redis;
  /** This verifier's Redis prefix (the payer's cumulative amounts live under it). */
  prefix: string;
  payerKey: Hex;
  marketDomain: TypedDataDomain;
  edgeDomain: TypedDataDomain;
  /** The open session of the payer for `model`, if any. */
  sessionFor(model: string): Promise<bigint | undefined>;
  /** Unix seconds as the chain counts them (lib/protocol/chainClock.ts): vouchers expire by it. */
  chainNow?: () => bigint;
  timeoutMs: number;
  /** The results of this verifier's challenges of (epoch, edge) (audits look their receipts up). */
  resultsFor(epoch: bigint, edgeId: bigint): Promise<ChallengeResult[]>;
  /** Threads recomputing reference answers (default 1: the verifier shares its machine). */
  recomputeThreads?: number;
  /** The reference model's shape, when the edges run another than the default (benchmarks). */
  referenceConfig?: ModelConfig;
}

export type ChallengeRunner = ReturnType<typeof createChallengeRunner>;

export function createChallengeRunner(options: ChallengeRunnerOptions) {
  const recompute = createRecomputePool({ threads: options.recomputeThreads ?? 1 });
  const payer = new ChallengePayer({
    redis: options.redis,
    payerKey: options.payerKey,
    marketDomain: options.marketDomain,
    sessionFor: async (model) => {
      const session = await options.sessionFor(model);
      if (session === undefined) throw new ChallengeInconclusiveError(`no open challenge session for ${model} yet`);
      return session;
    },
    expirySeconds: 24 * 3600,
    ...(options.chainNow === undefined ? {} : { now: () => Number(options.chainNow!()) }),
    keyPrefix: `${options.prefix}:v:payer`,
  });
  const context = {
    payer,
    recompute,
    edgeDomain: options.edgeDomain,
    requestTimeoutMs: options.timeoutMs,
    referenceConfig: options.referenceConfig,
    receiptsFor: async (edgeId: string, epoch: string) =>
      (await options.resultsFor(BigInt(epoch), BigInt(edgeId))).flatMap((r) => (r.receipt === undefined ? [] : [r.receipt])),
  };
  return {
    /**
     * The model challenges of `target` use: the reference model when it serves it (answers can be
     * recomputed), else its first model (latency, capacity and audits still apply).
     */
    modelFor(target: ChallengeTarget): string | undefined {
      return target.models.includes(REFERENCE_MODEL) ? REFERENCE_MODEL : target.models[0];
    },
    plan(input: {
      epoch: bigint;
      epochStart: bigint;
      epochEnd: bigint;
      target: ChallengeTarget;
      counts: { inference: number; latency: number; capacity: number; audit: number };
    }): ChallengeSpec[] {
      const { inference, latency, capacity, audit } = input.counts;
      return planEpochChallenges({
        epoch: input.epoch,
        epochStart: Number(input.epochStart),
        epochLength: Number(input.epochEnd - input.epochStart),
        edge: input.target,
        config: { inference, latency, capacity, audit },
      });
    },
    run: (spec: ChallengeSpec, target: ChallengeTarget) => runChallenge(spec, target, context),
    checkWrongAnswer: (evidence: unknown, edgeSigningKey: Address, edgeId: bigint, epoch: bigint) =>
      verifyWrongAnswerEvidence(evidence, edgeSigningKey, options.edgeDomain, recompute, {
        referenceConfig: options.referenceConfig,
        edgeId,
        epoch,
      }),
    close: () => recompute.close(),
  };
}
