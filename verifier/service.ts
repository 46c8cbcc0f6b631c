// One verifier process: connects to Redis (refusing one that could lose jobs) and the chain, runs
// the BullMQ workers and the periodic tick, and serves the peer API. Several processes of one
// verifier (same key, same Redis prefix) share the queues: any of them may die at any moment, and
// what it was doing is picked up by another or by itself on restart (BullMQ's stalled-job check),
// without a second transaction (deterministic job ids, write-once records, the exactly-once sender).
//
// Queues (all under the configured prefix):
//   control     the `tick` job scheduler: read the chain, plan the current epoch's challenges, start
//               the scoring of ended epochs, queue claims of final ones. One tick at a time.
//   challenges  one job per challenge, delayed to its planned time; retried when the edge stalls.
//   epochs      observe (score and sign), attest (one job per consensus round), fault, claims.
import { Queue, UnrecoverableError, Worker } from "bullmq";
import type { Job, JobsOptions } from "bullmq";
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import { createPublicClient, createWalletClient, http } from "viem";
import type { Account, Chain, LocalAccount, PublicClient, Transport, WalletClient } from "viem";

import { edgeDomain } from "../lib/protocol/edgeProofs.ts";
import { marketDomain, verifierDomain } from "../lib/protocol/eip712.ts";
import { readProtocolAddresses } from "../lib/protocol/addresses.ts";
import { edgeStakingAbi, epochSettlementAbi } from "../lib/protocol/abis.ts";
import { createTxSender } from "./chain/sender.ts";
import { createChainView } from "./chain/view.ts";
import type { ChainSnapshot, EdgeInfo } from "./chain/view.ts";
import { createChallengeRunner, runChallengeAttempt } from "./challengeRunner.ts";
import type { ChallengeJobData } from "./challengeRunner.ts";
import type { ChallengeResult, ChallengeTarget } from "./challenges/types.ts";
import { createReportPool } from "./consensus/pool.ts";
import type { VerifierConfig } from "./config.ts";
import type { VerifierAddresses, VerifierContext } from "./context.ts";
import { buildApi } from "./api.ts";
import { claimEpoch, leadRound, mostSevere, observeEpoch } from "./epochs.ts";
import { createPayerFunding } from "./funding.ts";
import { reportFaultOnce } from "./faults.ts";
import type { FaultJobData } from "./faults.ts";
import { createVerifierMetrics } from "./metrics.ts";
import { connectSafeRedis, redisOptions } from "./redis.ts";
import { createVerifierState } from "./state.ts";

export interface VerifierHandle {
  url: string;
  port: number;
  address: `0x${string}`;
  /** Stops taking jobs, lets running ones finish (or hands them back), closes everything. */
  close(): Promise<void>;
}

export interface StartVerifierOptions {
  config: VerifierConfig;
  key: { account: LocalAccount; privateKey: `0x${string}` };
  payer: { account: LocalAccount; privateKey: `0x${string}` };
  logger: Logger;
  /** Transport override (tests). */
  transport?: Transport;
}

const QUEUES = ["control", "challenges", "epochs"] as const;
const DAY_S = 24 * 3600;

export async function startVerifier(options: StartVerifierOptions): Promise<VerifierHandle> {
  const { config, logger } = options;
  const redis: Redis = await connectSafeRedis(config.redis.url);
  // ioredis reconnects by itself; a lost connection is worth a line in the log, not a crash.
  redis.on("error", (err: Error) => logger.warn({ err: err.message }, "Redis connection error (reconnecting)"));
  const connection = redisOptions(config.redis.url);
  const prefix = config.redis.prefix;

  const transport = options.transport ?? http(config.chain.rpcUrl, { retryCount: 3, timeout: 10_000 });
  const client = createPublicClient({ transport, cacheTime: 0 }) as PublicClient;
  const chainId = await client.getChainId();
  const addresses: VerifierAddresses = config.chain.addresses ?? readProtocolAddresses(chainId, { contracts: ["token", "registry", "staking", "verifierSet", "settlement", "market"] });
  const metrics = createVerifierMetrics();
  // Epochs after its end during which an epoch's rewards can be credited (fixed at deployment).
  const creditWindow = await client.readContract({ address: addresses.staking, abi: edgeStakingAbi, functionName: "rewardCreditWindow" });
  const state = createVerifierState(redis, prefix);
  const view = createChainView({ client, addresses, confirmations: config.chain.confirmations, fromBlock: BigInt(config.chain.fromBlock) });
  const walletFor = (account: LocalAccount) => createWalletClient({ account, transport }) as WalletClient<Transport, Chain | undefined, Account>;
  const sender = createTxSender({ redis, publicClient: client, walletClient: walletFor(options.key.account), logger: logger.child({ part: "sender" }), confirmations: config.chain.confirmations + 1, bumpAfterMs: config.tx.bumpAfterMs });
  const payerSender = createTxSender({ redis, publicClient: client, walletClient: walletFor(options.payer.account), logger: logger.child({ part: "payer-sender" }), confirmations: config.chain.confirmations + 1, bumpAfterMs: config.tx.bumpAfterMs });

  const ctx: VerifierContext = {
    config, logger, metrics, state, client, chainId, addresses, view,
    verifierDomain: verifierDomain(chainId, addresses.verifierSet),
    edgeDomain: edgeDomain(chainId, addresses.registry),
    marketDomain: marketDomain(chainId, addresses.market),
    key: { address: options.key.account.address, privateKey: options.key.privateKey },
    sender,
  };
  const funding = createPayerFunding({
    client, addresses, payer: options.payer.account.address, sender: payerSender, config: config.payer,
    fromBlock: BigInt(config.chain.fromBlock), logger: logger.child({ part: "payer" }),
    onTx: (action, result) => metrics.submissions.inc({ action: `payer-${action}`, result }),
  });
  const reportPool = createReportPool();
  const challenges = createChallengeRunner({
    redis, prefix, payerKey: options.payer.privateKey, marketDomain: ctx.marketDomain, edgeDomain: ctx.edgeDomain,
    sessionFor: (model: string) => funding.existingSession(model), timeoutMs: config.challenges.timeoutMs,
    resultsFor: (epoch: bigint, edgeId: bigint) => state.results(epoch, edgeId),
  });

  const queueOptions = { connection, prefix };
  const queues = Object.fromEntries(QUEUES.map((name) => [name, new Queue(name, queueOptions)])) as Record<(typeof QUEUES)[number], Queue>;
  const keep: Pick<JobsOptions, "removeOnComplete" | "removeOnFail"> = { removeOnComplete: { age: DAY_S, count: 100_000 }, removeOnFail: { age: 7 * DAY_S } };

  let lastTick: { at: number; epoch: bigint; block: bigint } | undefined;
  let lastTickError: string | undefined;
  let warnedInactive = -1n;

  const target = (edge: EdgeInfo): ChallengeTarget => ({
    edgeId: edge.edgeId, endpoint: edge.profile!.endpoint, signingKey: edge.signingKey, capacity: edge.profile!.capacity, models: edge.profile!.models,
  });

  // ------------------------------------------------------------------------------- tick
  async function tick(): Promise<void> {
    const snap = await view.snapshot();
    const head = await client.getBlock({ blockTag: "latest" });
    lastTick = { at: Date.now(), epoch: snap.epoch, block: snap.blockNumber };
    metrics.currentEpoch.set(Number(snap.epoch));
    const me = snap.verifiers.find((v) => v.signingKey.toLowerCase() === ctx.key.address.toLowerCase());
    if (me === undefined || me.status !== "Active") {
      if (warnedInactive !== snap.epoch) logger.warn({ key: ctx.key.address, status: me?.status ?? "unregistered" }, "this key is not an active verifier: serving peers only, no challenges or attestations");
      warnedInactive = snap.epoch;
      return;
    }
    await planChallenges(snap, head.timestamp);
    await startObservations(snap);
    await queueClaims();
    const settled = await state.getNumber("last-settled");
    if (settled !== undefined) metrics.epochLag.set(Number(snap.epoch - settled));
  }

  async function planChallenges(snap: ChainSnapshot, chainNow: bigint): Promise<void> {
    await funding.topUp();
    for (const edge of snap.edges) {
      if (edge.status !== "Active" || edge.profile === undefined) continue;
      if (await state.isQueued(snap.epoch, edge.edgeId)) continue;
      const t = target(edge);
      const model = challenges.modelFor(t);
      if (model === undefined) continue;
      const session = await funding.sessionFor(model);
      if (session === undefined) continue;
      const planned = challenges.plan({ epoch: snap.epoch, epochStart: snap.epochStart, epochEnd: snap.epochEnd, target: t, counts: config.challenges });
      const specs = await state.planOnce(snap.epoch, edge.edgeId, planned);
      await queues.challenges.addBulk(specs.map((spec) => ({
        name: spec.kind,
        data: { spec, target: { ...t, edgeId: t.edgeId.toString() } },
        opts: {
          jobId: `ch-${spec.epoch}-${spec.edgeId}-${spec.id.slice(2, 18)}`,
          delay: Math.max(0, (spec.at - Number(chainNow)) * 1000),
          attempts: config.challenges.attempts,
          backoff: { type: "exponential", delay: 1_000 },
          ...keep,
        },
      })));
      await state.markQueued(snap.epoch, edge.edgeId);
      logger.debug({ epoch: snap.epoch.toString(), edgeId: edge.edgeId.toString(), challenges: specs.length }, "challenges planned");
    }
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
      await queues.epochs.add("observe", { epoch: next.toString() }, { jobId: `observe-${next}`, attempts: 10, backoff: { type: "exponential", delay: 1_000 }, ...keep });
      next += 1n;
      await state.setNumber("next-observe", next);
    }
  }

  async function queueClaims(): Promise<void> {
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
      const final = await client.readContract({ address: addresses.settlement, abi: epochSettlementAbi, functionName: "isFinal", args: [epoch] });
      if (!final) continue;
      const report = await state.report(epoch);
      const leading = report?.leader.toLowerCase() === ctx.key.address.toLowerCase();
      await queues.epochs.add("claims", { epoch: text }, { jobId, delay: leading ? 0 : config.claims.fallbackDelayMs, attempts: 10, backoff: { type: "exponential", delay: 2_000 }, ...keep });
    }
  }

  // ------------------------------------------------------------------------------- challenges
  // Read at most once a second per process: every challenge asks, thousands a second at full load.
  let epochCache: { value: bigint; at: number } | undefined;
  async function currentEpoch(): Promise<bigint> {
    if (epochCache === undefined || Date.now() - epochCache.at > 1_000) {
      epochCache = { value: await client.readContract({ address: addresses.staking, abi: edgeStakingAbi, functionName: "currentEpoch" }), at: Date.now() };
    }
    return epochCache.value;
  }

  async function runChallengeJob(job: Job<ChallengeJobData>): Promise<ChallengeResult | "expired"> {
    const { spec } = job.data;
    if (spec.kind !== "audit" && (await currentEpoch()) > BigInt(spec.epoch)) {
      metrics.challenges.inc({ kind: spec.kind, outcome: "expired" });
      return "expired";
    }
    const result = await runChallengeAttempt({ run: challenges.run, state, metrics, logger }, job);
    if (result.fault !== undefined) {
      metrics.faults.inc({ kind: result.fault.kind });
      logger.warn({ edgeId: spec.edgeId, epoch: spec.epoch, kind: result.fault.kind, detail: result.detail }, "challenge found a fault");
      if (result.fault.kind === "WrongAnswer") await queueFault({ edgeId: spec.edgeId, epoch: spec.epoch, kind: "WrongAnswer", evidence: result.fault.evidence });
    }
    return result;
  }

  async function queueFault(data: FaultJobData): Promise<void> {
    await queues.epochs.add("fault", data, { jobId: `fault-${data.edgeId}-${data.epoch}`, attempts: 12, backoff: { type: "exponential", delay: 2_000 }, ...keep });
  }

  // ------------------------------------------------------------------------------- epochs
  async function runEpochJob(job: Job): Promise<unknown> {
    switch (job.name) {
      case "observe": {
        const epoch = BigInt(job.data.epoch);
        const snap = await view.snapshot();
        const record = await observeEpoch(ctx, epoch, snap);
        for (const [edgeId, kinds] of Object.entries(record.faults)) {
          const kind = mostSevere(kinds);
          if (kind === undefined || kind === "WrongAnswer") continue;
          await queueFault({ edgeId, epoch: epoch.toString(), kind, evidence: { epoch: epoch.toString(), edgeId, kind, observedBy: ctx.key.address, kinds } });
        }
        await queues.epochs.add("attest", { epoch: epoch.toString(), round: 0 }, { jobId: `attest-${epoch}-0`, attempts: 4, backoff: { type: "fixed", delay: 3_000 }, ...keep });
        return { edges: record.observation.results.length };
      }
      case "attest": {
        const epoch = BigInt(job.data.epoch);
        const round = Number(job.data.round);
        const onChain = await client.readContract({ address: addresses.settlement, abi: epochSettlementAbi, functionName: "epochRecord", args: [epoch] });
        if (Number(onChain.state) !== 0) return settledSeen(epoch);
        if (await state.marked(`empty-${epoch}`)) return "empty";
        // The next round is queued first: whatever happens to this one, someone takes over. Rounds
        // go on (leaders rotating) for as long as the epoch's rewards can still be credited, so
        // that an outage longer than a few rounds delays the epoch rather than losing it.
        if ((await currentEpoch()) <= epoch + creditWindow) {
          await queues.epochs.add("attest", { epoch: epoch.toString(), round: round + 1 }, { jobId: `attest-${epoch}-${round + 1}`, delay: config.consensus.roundTimeoutMs, attempts: 4, backoff: { type: "fixed", delay: 3_000 }, ...keep });
        }
        const outcome = await leadRound(ctx, epoch, round, (input) => reportPool.buildReport(input));
        if (outcome === "submitted" || outcome === "already-settled") return settledSeen(epoch);
        return outcome;
      }
      case "fault":
        return reportFaultOnce(ctx, job.data as FaultJobData);
      case "claims": {
        const epoch = BigInt(job.data.epoch);
        const claimed = await claimEpoch(ctx, epoch);
        await redis.zrem(state.key("unclaimed"), epoch.toString());
        return { claimed };
      }
      default:
        throw new UnrecoverableError(`unknown job ${job.name}`);
    }
  }

  async function settledSeen(epoch: bigint): Promise<string> {
    const last = await state.getNumber("last-settled");
    if (last === undefined || epoch > last) await state.setNumber("last-settled", epoch);
    return "settled";
  }

  // ------------------------------------------------------------------------------- workers
  const workerOptions = { connection, prefix, lockDuration: 30_000, stalledInterval: 15_000, maxStalledCount: 3 };
  const workers = [
    new Worker("control", async () => {
      try {
        await tick();
        metrics.ticks.inc({ result: "ok" });
        lastTickError = undefined;
      } catch (err) {
        metrics.ticks.inc({ result: "error" });
        lastTickError = (err as Error).message;
        // A failed tick is retried by the next one: log it without a stack for RPC outages.
        logger.warn({ err: (err as Error).message }, "tick failed (chain or Redis unavailable?); the next tick retries");
      }
    }, { ...workerOptions, concurrency: 1 }),
    new Worker("challenges", runChallengeJob, { ...workerOptions, concurrency: config.challenges.concurrency }),
    new Worker("epochs", runEpochJob, { ...workerOptions, concurrency: 4 }),
  ];
  for (const worker of workers) {
    worker.on("failed", (job, err) => {
      if (job === undefined) return;
      const final = job.attemptsMade >= (job.opts.attempts ?? 1);
      logger[final ? "error" : "info"]({ queue: worker.name, job: job.id, attempt: job.attemptsMade, err: err.message }, final ? "job failed for good" : "job failed; it will be retried");
    });
    worker.on("error", (err) => logger.warn({ queue: worker.name, err: err.message }, "worker error (Redis?)"));
  }
  await queues.control.upsertJobScheduler("tick", { every: config.chain.tickMs }, { name: "tick", data: {}, opts: { removeOnComplete: 100, removeOnFail: 100 } });

  const api = buildApi({
    ctx,
    buildReport: (input) => reportPool.buildReport(input),
    checkWrongAnswer: (evidence, key, edgeId, epoch) => challenges.checkWrongAnswer(evidence, key, edgeId, epoch),
    health: async () => {
      const age = lastTick === undefined ? undefined : Date.now() - lastTick.at;
      const ok = age !== undefined && age < 10 * config.chain.tickMs + 30_000;
      return { ok, detail: { epoch: lastTick?.epoch.toString(), block: lastTick?.block.toString(), lastTickAgeMs: age, lastTickError } };
    },
    refreshGauges: async () => {
      for (const [name, queue] of Object.entries(queues)) {
        const counts = await queue.getJobCounts("waiting", "active", "delayed", "failed");
        for (const [stateName, n] of Object.entries(counts)) metrics.queueDepth.set({ queue: name, state: stateName }, n);
      }
    },
  });
  const url = await api.listen({ host: config.listen.host, port: config.listen.port });
  const port = (api.server.address() as { port: number }).port;
  logger.info({ url, verifier: ctx.key.address, payer: options.payer.account.address, redis: prefix, chainId }, "verifier started");

  let closed = false;
  return {
    url, port, address: ctx.key.address,
    async close() {
      if (closed) return;
      closed = true;
      await api.close();
      await Promise.all(workers.map((w) => w.close()));
      await Promise.all(Object.values(queues).map((q) => q.close()));
      await challenges.close();
      await reportPool.close();
      await Promise.all([sender.close(), payerSender.close()]);
      redis.disconnect();
    },
  };
}
