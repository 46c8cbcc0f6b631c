// Planning an epoch's challenges for one edge: how many of each kind (config), each at a time
// drawn uniformly over [start + 5% of the epoch, end − 10%], so that the edge cannot predict
// them and they (and their retries) finish inside the epoch. Audits look at the previous epoch,
// whose usage log the edge has committed to by then.
import { cryptoRandom, randomHex32, randomInt, pick } from "./random.ts";
import type { RandomSource } from "./random.ts";
import { REFERENCE_MODEL } from "./types.ts";
import type { ChallengeSpec, ChallengeTarget } from "./types.ts";

export interface ChallengePlanConfig {
  /** Challenges per epoch and edge, by kind (defaults 6, 4, 1, 1). */
  inference?: number;
  latency?: number;
  capacity?: number;
  audit?: number;
  /** The recomputable model (inference and capacity challenges use it); default "tideway/reference-1". */
  referenceModel?: string;
  /** Latency: the whole answer within this (default 5,000 ms). */
  maxLatencyMs?: number;
  /** Capacity: at most this many concurrent requests (default 16). */
  maxBurst?: number;
  /** Capacity: the fraction that must be served (default 0.9). */
  minServed?: number;
  /** Capacity: each answer within this of the burst's start (default 15,000 ms). */
  capacityDeadlineMs?: number;
  /** Audit: random log entries opened (default 4). */
  auditRandomEntries?: number;
}

export const DEFAULT_PLAN = {
  inference: 6,
  latency: 4,
  capacity: 1,
  audit: 1,
  referenceModel: REFERENCE_MODEL,
  maxLatencyMs: 5_000,
  maxBurst: 16,
  minServed: 0.9,
  capacityDeadlineMs: 15_000,
  auditRandomEntries: 4,
} as const satisfies Required<ChallengePlanConfig>;

export interface PlanInput {
  epoch: bigint;
  /** Unix seconds at which `epoch` starts. */
  epochStart: number;
  /** Seconds. */
  epochLength: number;
  edge: ChallengeTarget;
  config?: ChallengePlanConfig;
  /** Default: the CSPRNG. */
  random?: RandomSource;
}

/** The window challenges of an epoch run in: [start + 5%, end − 10%] (unix seconds, integers). */
export function challengeWindow(epochStart: number, epochLength: number): { from: number; to: number } {
  const from = epochStart + Math.ceil(epochLength * 0.05);
  const to = epochStart + epochLength - Math.ceil(epochLength * 0.1);
  return { from, to: Math.max(from, to) };
}

/** The challenges of `edge` in `epoch`, sorted by time (see the file comment). */
export function planEpochChallenges(input: PlanInput): ChallengeSpec[] {
  const c = { ...DEFAULT_PLAN, ...input.config };
  const random = input.random ?? cryptoRandom;
  if (!Number.isInteger(input.epochStart) || !Number.isInteger(input.epochLength) || input.epochLength <= 0) {
    throw new RangeError(
      `epochStart and epochLength must be integers (seconds) and epochLength positive, got ${input.epochStart}, ${input.epochLength}`,
    );
  }
  for (const k of ["inference", "latency", "capacity", "audit"] as const) {
    if (!Number.isInteger(c[k]) || c[k] < 0) throw new RangeError(`${k} must be a non-negative integer, got ${c[k]}`);
  }
  const { from, to } = challengeWindow(input.epochStart, input.epochLength);
  const at = () => randomInt(random, from, to);
  const common = () => ({ id: randomHex32(random), epoch: input.epoch.toString(), edgeId: input.edge.edgeId.toString(), at: at() });
  const models = input.edge.models.length > 0 ? input.edge.models : [c.referenceModel];
  const specs: ChallengeSpec[] = [];
  for (let i = 0; i < c.inference; i++) specs.push({ ...common(), kind: "inference", model: c.referenceModel, params: {} });
  for (let i = 0; i < c.latency; i++)
    specs.push({ ...common(), kind: "latency", model: pick(random, models), params: { maxLatencyMs: c.maxLatencyMs } });
  for (let i = 0; i < c.capacity; i++) {
    specs.push({
      ...common(),
      kind: "capacity",
      model: c.referenceModel,
      params: { maxBurst: c.maxBurst, minServed: c.minServed, deadlineMs: c.capacityDeadlineMs },
    });
  }
  // Nothing to audit before the first epoch.
  if (input.epoch > 0n) {
    for (let i = 0; i < c.audit; i++) {
      specs.push({
        ...common(),
        kind: "audit",
        model: c.referenceModel,
        params: { auditEpoch: (input.epoch - 1n).toString(), nonces: [], randomEntries: c.auditRandomEntries },
      });
    }
  }
  return specs.sort((a, b) => a.at - b.at || (a.id < b.id ? -1 : 1));
}
