// The `tick` (every `chain.tickMs`, one at a time): read the chain, plan the current epoch's
// challenges of every active edge, start the scoring of ended epochs, queue claims of final ones.
// A failed tick is retried by the next one.
import type { Redis } from "ioredis";

import { epochSettlementAbi } from "../../lib/protocol/abis.ts";
import { activeVerifiers } from "../chain/view.ts";
import type { ChainSnapshot, EdgeInfo } from "../chain/view.ts";
import type { PayerFunding } from "../challenges/funding.ts";
import type { ChallengeRunner } from "../challenges/runner.ts";
import type { ChallengeTarget } from "../challenges/types.ts";
import { claimDelayMs } from "../consensus/claims.ts";
import type { VerifierContext } from "../context.ts";
import { KEEP_JOBS } from "./queues.ts";
import type { VerifierQueues } from "./queues.ts";

export interface TickDeps {
  ctx: VerifierContext;
  redis: Redis;
  queues: VerifierQueues;
  funding: Pick<PayerFunding, "topUp" | "sessionFor">;
  challenges: Pick<ChallengeRunner, "modelFor" | "plan">;
  /** Epochs after its end during which an epoch's rewards can be credited (fixed at deployment). */
  creditWindow: bigint;
}

export interface TickStatus {
  /** The last tick that read the chain. */
  last: { at: number; epoch: bigint; block: bigint } | undefined;
  /** Why the last tick failed, undefined after a good one. */
  lastError: string | undefined;
}

export interface Tick {
  /** The control queue's processor: one tick, its failure logged and counted, never thrown. */
  run(): Promise<void>;
  status(): TickStatus;
}

/** Edges whose challenges one tick plans at most, and challenge jobs per BullMQ addBulk. */
const PLAN_PER_TICK = 5_000;
const JOBS_PER_ADD = 5_000;

const target = (edge: EdgeInfo): ChallengeTarget => ({
  edgeId: edge.edgeId,
  endpoint: edge.profile!.endpoint,
  signingKey: edge.signingKey,
  capacity: edge.profile!.capacity,
  models: edge.profile!.models,
});

export function createTick(deps: TickDeps): Tick {
  const { ctx, redis, queues, funding, challenges, creditWindow } = deps;
  const { config, logger, metrics, state, view, client, addresses } = ctx;
  const status: TickStatus = { last: undefined, lastError: undefined };
  let warnedInactive = -1n;
  /** The edges of `epoch` this process knows are queued (marked in Redis). */
  let known: { epoch: bigint; queued: Set<bigint> } = { epoch: -1n, queued: new Set() };

  /** Runs one part of a tick, timed under its name. */
  async function phase<T>(name: string, work: () => Promise<T>): Promise<T> {
    const timer = metrics.tickPhase.startTimer({ phase: name });
    try {
      return await work();
    } finally {
      timer();
    }
  }

  async function tick(): Promise<void> {
    const snap = await phase("chain", () => view.snapshot());
    const head = await client.getBlock({ blockTag: "latest" });
    status.last = { at: Date.now(), epoch: snap.epoch, block: snap.blockNumber };
    metrics.currentEpoch.set(Number(snap.epoch));
    const me = snap.verifiers.find((v) => v.signingKey.toLowerCase() === ctx.key.address.toLowerCase());
    if (me === undefined || me.status !== "Active") {
      if (warnedInactive !== snap.epoch)
        logger.warn(
          { key: ctx.key.address, status: me?.status ?? "unregistered" },
          "this key is not an active verifier: serving peers only, no challenges or attestations",
        );
      warnedInactive = snap.epoch;
      return;
    }
    await phase("plan", () => planChallenges(snap, head.timestamp));
    await phase("observations", () => startObservations(snap));
    await phase("claims", () => queueClaims(snap));
    const settled = await state.getNumber("last-settled");
    if (settled !== undefined) metrics.epochLag.set(Number(snap.epoch - settled));
  }

  async function planChallenges(snap: ChainSnapshot, chainNow: bigint): Promise<void> {
    await funding.topUp();
    if (known.epoch !== snap.epoch) known = { epoch: snap.epoch, queued: new Set() };
    // Redis is asked only about edges this process has not seen queued in this epoch: once an
    // epoch's edges are planned, a tick costs no Redis round trip for them.
    const eligible = snap.edges.filter((edge) => edge.status === "Active" && edge.profile !== undefined && !known.queued.has(edge.edgeId));
    const queued = await state.queuedAmong(
      snap.epoch,
      eligible.map((edge) => edge.edgeId),
    );
    for (const edgeId of queued) known.queued.add(edgeId);
    // At most PLAN_PER_TICK edges per tick: an epoch start with many edges spreads over a few
    // ticks instead of one tick that runs for minutes.
    const todo = eligible.filter((edge) => !queued.has(edge.edgeId)).slice(0, PLAN_PER_TICK);
    // One paying session per model, looked up (or opened) once per tick, not once per edge.
    const sessions = new Map<string, bigint | undefined>();
    for (const edge of todo) {
      const model = challenges.modelFor(target(edge));
      if (model !== undefined && !sessions.has(model)) sessions.set(model, await funding.sessionFor(model));
    }
    const plans = todo.flatMap((edge) => {
      const t = target(edge);
      const model = challenges.modelFor(t);
      if (model === undefined || sessions.get(model) === undefined) return [];
      const specs = challenges.plan({
        epoch: snap.epoch,
        epochStart: snap.epochStart,
        epochEnd: snap.epochEnd,
        target: t,
        counts: config.challenges,
      });
      return [{ edgeId: edge.edgeId, target: t, specs }];
    });
    // The plans, their jobs and the queued marks each in a few round trips for the whole batch. A
    // crash between them is repaired by the next tick: the stored plans stand, and job ids are
    // deterministic, so jobs added again are not added twice.
    const inForce = await state.planMany(snap.epoch, plans);
    const jobs = plans.flatMap(({ edgeId, target: t }) =>
      (inForce.get(edgeId) ?? []).map((spec) => ({
        name: spec.kind,
        data: { spec, target: { ...t, edgeId: t.edgeId.toString() } },
        opts: {
          jobId: `ch-${spec.epoch}-${spec.edgeId}-${spec.id.slice(2, 18)}`,
          delay: Math.max(0, (spec.at - Number(chainNow)) * 1000),
          attempts: config.challenges.attempts,
          backoff: { type: "exponential" as const, delay: 1_000 },
          ...KEEP_JOBS,
        },
      })),
    );
    for (let i = 0; i < jobs.length; i += JOBS_PER_ADD) await queues.challenges.addBulk(jobs.slice(i, i + JOBS_PER_ADD));
    const planned = plans.map((p) => p.edgeId);
    await state.markQueuedMany(snap.epoch, planned);
    for (const edgeId of planned) known.queued.add(edgeId);
    if (planned.length > 0)
      logger.debug({ epoch: snap.epoch.toString(), edges: planned.length, challenges: jobs.length }, "challenges planned");
  }

  async function startObservations(snap: ChainSnapshot): Promise<void> {
    let next = await state.initNumber("next-observe", snap.epoch);
    // An observation that ran out of attempts (a long outage) is tried again while the epoch can
    // still be credited; its success starts the epoch's rounds.
    for (let e = next - 1n; e >= 0n && e + creditWindow >= snap.epoch; e--) {
      const job = await queues.epochs.getJob(`observe-${e}`);
      if (job !== undefined && (await job.isFailed())) await job.retry();
    }
    while (next < snap.epoch) {
      const { end } = await view.epochBounds(next);
      if (snap.timestamp * 1000n < end * 1000n + BigInt(config.consensus.graceMs)) break;
      await queues.epochs.add(
        "observe",
        { epoch: next.toString() },
        { jobId: `observe-${next}`, attempts: 10, backoff: { type: "exponential", delay: 1_000 }, ...KEEP_JOBS },
      );
      next += 1n;
      await state.setNumber("next-observe", next);
    }
  }

  async function queueClaims(snap: ChainSnapshot): Promise<void> {
    if (!config.claims.enabled) return;
    const epochs = await redis.zrange(state.key("unclaimed"), 0, 50);
    for (const text of epochs) {
      const epoch = BigInt(text);
      const jobId = `claims-${epoch}`;
      const queued = await queues.epochs.getJob(jobId);
      if (queued !== undefined) {
        // Out of attempts (a long outage): try again, the epoch is still unclaimed.
        if (await queued.isFailed()) await queued.retry();
        continue;
      }
      const final = await client.readContract({
        address: addresses.settlement,
        abi: epochSettlementAbi,
        functionName: "isFinal",
        args: [epoch],
      });
      if (!final) continue;
      const report = await state.report(epoch);
      const leader = report?.leader.toLowerCase();
      const others = activeVerifiers(snap).filter((v) => v.signingKey.toLowerCase() !== leader);
      const rank = others.findIndex((v) => v.signingKey.toLowerCase() === ctx.key.address.toLowerCase());
      await queues.epochs.add(
        "claims",
        { epoch: text },
        {
          jobId,
          delay: claimDelayMs(config.claims, leader === ctx.key.address.toLowerCase() ? "leader" : Math.max(rank, 0)),
          attempts: 10,
          backoff: { type: "exponential", delay: 2_000 },
          ...KEEP_JOBS,
        },
      );
    }
  }

  return {
    async run() {
      const timer = metrics.tickDuration.startTimer();
      try {
        await tick();
        timer({ result: "ok" });
        metrics.ticks.inc({ result: "ok" });
        status.lastError = undefined;
      } catch (err) {
        timer({ result: "error" });
        metrics.ticks.inc({ result: "error" });
        status.lastError = (err as Error).message;
        // A failed tick is retried by the next one: log it without a stack for RPC outages.
        logger.warn({ err: (err as Error).message }, "tick failed (chain or Redis unavailable?); the next tick retries");
      }
    },
    status: () => ({ ...status }),
  };
}
