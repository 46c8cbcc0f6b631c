// One verifier process: connects to Redis (refusing one that could lose jobs) and the chain, runs
// the BullMQ workers and the periodic tick, and serves the API. Several processes of one verifier
// (same key, same Redis prefix) share the queues: any of them may die at any moment, and what it
// was doing is picked up by another or by itself on restart (BullMQ's stalled-job check), without
// a second transaction (deterministic job ids, write-once records, the exactly-once sender).
//
// This file only wires: the queues and their processors are in jobs/ (queues.ts, tick.ts,
// challenge.ts, epochs.ts), the API in api/server.ts.
import { Worker } from "bullmq";
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import { createPublicClient, createWalletClient, http } from "viem";
import type { Account, Chain, LocalAccount, PublicClient, Transport, WalletClient } from "viem";

import { componentLogger, limitRepeats } from "../lib/logging.ts";
import { edgeDomain } from "../lib/protocol/edgeProofs.ts";
import { marketDomain, verifierDomain } from "../lib/protocol/eip712.ts";
import { readProtocolAddresses } from "../lib/protocol/addresses.ts";
import { edgeStakingAbi } from "../lib/protocol/abis.ts";
import { buildApi } from "./api/server.ts";
import { createEpochClock } from "./chain/epochClock.ts";
import { createTxSender } from "./chain/sender/index.ts";
import { createChainView } from "./chain/view.ts";
import { createPayerFunding } from "./challenges/funding.ts";
import { createChainClock } from "../lib/protocol/chainClock.ts";
import { createChallengeRunner } from "./challenges/runner.ts";
import { createReportPool } from "./consensus/pool.ts";
import type { VerifierConfig } from "./config.ts";
import type { VerifierAddresses, VerifierContext } from "./context.ts";
import { createChallengeJob } from "./jobs/challenge.ts";
import { createEpochJob } from "./jobs/epochs.ts";
import { createQueues, logConnectionErrors, logJobFailures } from "./jobs/queues.ts";
import { createTick } from "./jobs/tick.ts";
import { createHealthMonitor } from "./health.ts";
import { createVerifierMetrics } from "./metrics.ts";
import { connectSafeRedis, redisOptions } from "../lib/redis.ts";
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

export async function startVerifier(options: StartVerifierOptions): Promise<VerifierHandle> {
  const { config, logger } = options;
  // ioredis reconnects by itself; a lost connection is worth a line in the log (rate-limited), not a crash.
  const repeats = limitRepeats(logger);
  const redis: Redis = await connectSafeRedis(
    config.redis.url,
    {},
    {
      onRetry: (err, delayMs) => repeats.log("warn", "Redis unreachable at start: waiting for it", err, { retryInMs: delayMs }),
    },
  );
  redis.on("error", (err: Error) => repeats.log("warn", "Redis connection error (reconnecting)", err));
  const connection = redisOptions(config.redis.url);
  const prefix = config.redis.prefix;

  const transport = options.transport ?? http(config.chain.rpcUrl, { retryCount: 3, timeout: 10_000 });
  const client = createPublicClient({ transport, cacheTime: 0 }) as PublicClient;
  const chainId = await client.getChainId();
  const addresses: VerifierAddresses =
    config.chain.addresses ??
    readProtocolAddresses(chainId, { contracts: ["token", "registry", "staking", "verifierSet", "settlement", "market"] });
  const metrics = createVerifierMetrics();
  // Epochs after its end during which an epoch's rewards can be credited (fixed at deployment).
  const creditWindow = await client.readContract({ address: addresses.staking, abi: edgeStakingAbi, functionName: "rewardCreditWindow" });
  const state = createVerifierState(redis, prefix);
  const view = createChainView({ client, addresses, confirmations: config.chain.confirmations, fromBlock: BigInt(config.chain.fromBlock) });
  view.onAdvance((advance) => {
    metrics.chainSync.observe({ kind: advance.full ? "full" : "incremental" }, advance.ms / 1000);
    metrics.chainEdgesRead.inc(advance.read);
    if (advance.full)
      logger.info(
        {
          block: advance.blockNumber.toString(),
          edges: advance.read,
          ms: Math.round(advance.ms),
          stateMs: Math.round(advance.stateMs),
          logsMs: Math.round(advance.logsMs),
        },
        "chain view: read every edge",
      );
  });
  const walletFor = (account: LocalAccount) =>
    createWalletClient({ account, transport }) as WalletClient<Transport, Chain | undefined, Account>;
  const senderOptions = { redis, publicClient: client, confirmations: config.chain.confirmations + 1, bumpAfterMs: config.tx.bumpAfterMs };
  const sender = createTxSender({
    ...senderOptions,
    walletClient: walletFor(options.key.account),
    logger: componentLogger(logger, "tx-sender"),
  });
  const payerSender = createTxSender({
    ...senderOptions,
    walletClient: walletFor(options.payer.account),
    logger: componentLogger(logger, "payer-tx-sender"),
  });

  const ctx: VerifierContext = {
    config,
    logger,
    metrics,
    state,
    client,
    chainId,
    addresses,
    view,
    verifierDomain: verifierDomain(chainId, addresses.verifierSet),
    edgeDomain: edgeDomain(chainId, addresses.registry),
    marketDomain: marketDomain(chainId, addresses.market),
    key: { address: options.key.account.address, privateKey: options.key.privateKey },
    sender,
  };
  const funding = createPayerFunding({
    client,
    addresses,
    payer: options.payer.account.address,
    sender: payerSender,
    config: config.payer,
    fromBlock: BigInt(config.chain.fromBlock),
    logger: componentLogger(logger, "challenge-payer"),
    onTx: (action, result) => metrics.submissions.inc({ action: `payer-${action}`, result }),
  });
  const reportPool = createReportPool();
  const buildReport = reportPool.buildReport.bind(reportPool);
  const chainClock = createChainClock(client, {
    refreshMs: config.chain.tickMs,
    onError: (err) => logger.warn({ err }, "could not read the chain's time; vouchers expire by the last reading"),
  });
  const challenges = createChallengeRunner({
    chainNow: chainClock.nowSeconds,
    redis,
    prefix,
    payerKey: options.payer.privateKey,
    marketDomain: ctx.marketDomain,
    edgeDomain: ctx.edgeDomain,
    sessionFor: (model: string) => funding.existingSession(model),
    timeoutMs: config.challenges.timeoutMs,
    resultsFor: (epoch: bigint, edgeId: bigint) => state.results(epoch, edgeId),
  });

  const queues = createQueues(connection, prefix);
  const currentEpoch = createEpochClock(client, addresses.staking);
  const tick = createTick({ ctx, redis, queues, funding, challenges, creditWindow });

  const workerOptions = { connection, prefix, lockDuration: 30_000, stalledInterval: 15_000, maxStalledCount: 3 };
  const workers = [
    new Worker("control", () => tick.run(), { ...workerOptions, concurrency: 1 }),
    new Worker("challenges", createChallengeJob({ ctx, queues, challenges, currentEpoch }), {
      ...workerOptions,
      concurrency: config.challenges.concurrency,
    }),
    new Worker("epochs", createEpochJob({ ctx, redis, queues, buildReport, currentEpoch, creditWindow }), {
      ...workerOptions,
      concurrency: 4,
    }),
  ];
  for (const worker of workers) {
    logJobFailures(worker, logger);
  }
  logConnectionErrors(repeats, { workers, queues: Object.values(queues) });
  await queues.control.upsertJobScheduler(
    "tick",
    { every: config.chain.tickMs },
    { name: "tick", data: {}, opts: { removeOnComplete: 100, removeOnFail: 100 } },
  );

  const health = createHealthMonitor({
    redis,
    tickStatus: () => tick.status(),
    pingEveryMs: 1_000,
    redisStaleMs: 5_000,
    chainStaleMs: 10 * config.chain.tickMs + 30_000,
  });
  const api = buildApi({
    ctx,
    buildReport,
    checkWrongAnswer: (evidence, key, edgeId, epoch) => challenges.checkWrongAnswer(evidence, key, edgeId, epoch),
    health: () => health.report(),
    limits: config.limits,
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
    url,
    port,
    address: ctx.key.address,
    async close() {
      if (closed) return;
      closed = true;
      health.close();
      await api.close();
      await Promise.all(workers.map((w) => w.close()));
      await Promise.all(Object.values(queues).map((q) => q.close()));
      await challenges.close();
      chainClock.stop();
      await reportPool.close();
      await Promise.all([sender.close(), payerSender.close()]);
      redis.disconnect();
      repeats.close();
    },
  };
}
