// One measurement of the scale benchmark: a local network as `npm start` builds it (the Hardhat
// node, the Ignition deployment, the governed demo set-up with its three approved verifiers), N
// seeded edges, then ONE real verifier process (`node verifier/main.ts`, configured as the devnet
// configures it) reaching the node through a counting JSON-RPC proxy, measured from outside: its
// /metrics, its Redis (the observe job's times), /proc and its log. Importing this file runs
// nothing.
import { mkdirSync } from "node:fs";
import path from "node:path";
import { performance } from "node:perf_hooks";

import { Queue } from "bullmq";
import { Redis } from "ioredis";
import { http } from "viem";

import { edgeStakingAbi } from "../../lib/protocol/abis.ts";
import { readProtocolAddresses } from "../../lib/protocol/addresses.ts";
import { ONE_TOKEN } from "../../lib/protocol/units.ts";
import type { VerifierConfigInput } from "../../verifier/config.ts";
import {
  advanceTo,
  chainTime,
  deployWithIgnition,
  devnetClients,
  hardhatBin,
  runCommand,
  setIntervalMining,
  startHardhatNode,
} from "../../devnet/chain.ts";
import { demoAccounts, HOST, RPC_PORT, RPC_URL, setUpGovernedDemo } from "../../devnet/demo.ts";
import { fund } from "../../devnet/protocol.ts";
import { freePort, portIsFree, rpcChainId, waitUntil } from "../../devnet/readiness.ts";
import { countsBetween, startRpcProxy, type RpcCounts } from "../../devnet/rpcProxy.ts";
import { serviceEnv, startRedis, startVerifier } from "../../devnet/services.ts";
import { createSupervisor } from "../../devnet/supervisor.ts";
import { createChurn, type ChurnRound } from "./churn.ts";
import { type LogProblems, logProblems, type Metrics, scrape, watchProcess } from "./probes.ts";
import { seedEdges } from "./seed.ts";

/** The challenges the measured verifier runs: none, so that N unreachable edges do not flood its queue. */
export const NO_CHALLENGES: VerifierConfigInput["challenges"] = {
  inference: 0,
  latency: 0,
  capacity: 0,
  audit: 0,
  concurrency: 32,
  attempts: 3,
  timeoutMs: 30_000,
};

export interface ScaleRunOptions {
  root: string;
  n: number;
  /** Where logs and configurations go (below `root`). */
  workDir: string;
  /** How long the verifier may take to its first good tick before the run counts as failed. */
  resyncTimeoutMs: number;
  /** The steady-state window after the changes of an epoch (ms). */
  windowMs: number;
  /** Fraction of the edges changed for the window. */
  churnFraction: number;
  say: (message: string) => void;
}

export interface ScaleRun {
  n: number;
  seed_ms: number;
  seed_edges_per_s: number;
  seed_transactions: number;
  seed_blocks: number;
  /** From the verifier's start to its first good tick; null when it never came within the timeout. */
  resync_ms: number | null;
  resync_rpc_requests: number;
  resync_http_requests: number;
  resync_rpc_by_method: Record<string, number>;
  /** The full chain sync's own time, where the verifier reports it (tideway_verifier_chain_sync_seconds). */
  resync_chain_sync_ms: number | null;
  /** Mean tick duration over the window (tideway_verifier_tick_duration_seconds), null where the verifier does not report it. */
  tick_ms: number | null;
  /** The window divided by the ticks completed in it: the tick period actually achieved. */
  tick_period_ms: number | null;
  ticks_in_window: number;
  tick_errors_in_window: number;
  tick_rpc_requests: number | null;
  tick_http_requests: number | null;
  window_rpc_by_method: Record<string, number>;
  churn: ChurnRound | null;
  /** The observe job of the verifier's first epoch: finishedOn − processedOn. */
  observe_ms: number | null;
  observe_result: string;
  verifier_rss_mb: number;
  verifier_rss_mb_now: number;
  verifier_fds_max: number;
  verifier_restarts: number;
  log: LogProblems;
  failed: string | null;
}

const round = (x: number) => Math.round(x);

/** Sets up the network, seeds `n` edges, runs and measures the verifier; stops everything it started. */
export async function runScale(o: ScaleRunOptions): Promise<ScaleRun> {
  const { root, n, say } = o;
  const work = path.join(root, o.workDir);
  mkdirSync(work, { recursive: true });
  const file = (name: string) => path.join(work, name);
  if (!(await portIsFree(RPC_PORT, HOST)))
    throw new Error(
      `port ${RPC_PORT} is in use on ${HOST} (an \`npm start\`?): the deployment needs it; stop it or run in a network namespace`,
    );
  const supervisor = createSupervisor();
  const stoppers: Array<() => Promise<void>> = [];
  try {
    say(`compiling, starting a Hardhat node on ${RPC_URL} (log ${o.workDir}/hardhat-node.log), deploying with Ignition`);
    await runCommand(hardhatBin(root), ["build", "--build-profile", "production", "--no-tests"], { cwd: root, env: serviceEnv(root) });
    await startHardhatNode(supervisor, { root, host: HOST, port: RPC_PORT, logFile: file("hardhat-node.log") });
    const chainId = Number(await rpcChainId(RPC_URL));
    const clients = devnetClients(http(RPC_URL, { batch: { batchSize: 1_000 }, timeout: 120_000 }), chainId);
    await deployWithIgnition({
      root,
      module: "ignition/modules/Protocol.ts",
      parameters: "ignition/parameters/local.json",
      network: "localhost",
      env: serviceEnv(root),
    });
    const addresses = readProtocolAddresses(chainId);
    const participants = demoAccounts(await clients.accounts());
    say("the demo's governed set-up: funded accounts, three verifiers approved, the operator allowlisted (a governance proposal)");
    const governed = await setUpGovernedDemo(clients, addresses, participants, () => undefined);
    const staking = { address: addresses.staking, abi: edgeStakingAbi } as const;
    const { minSelfBond } = await clients.public.readContract({ ...staking, functionName: "parameters" });
    await fund(clients, addresses, participants.admin, participants.operator, { tokens: (minSelfBond + ONE_TOKEN) * BigInt(n) });

    say(`seeding ${n} edges (operator ${participants.operator})`);
    let reported = 0;
    const seeded = await seedEdges(clients, addresses, {
      operator: participants.operator,
      count: n,
      onProgress: (done) => {
        if (done - reported >= Math.max(1_000, n / 10) || done === n) {
          reported = done;
          say(`  ${done} / ${n}`);
        }
      },
    });
    say(
      `  seeded in ${(seeded.ms / 1000).toFixed(1)} s: ${seeded.edgesPerSecond.toFixed(0)} edges/s (${seeded.transactions} transactions, ${seeded.blocks} blocks)`,
    );

    // As `npm start` does before its verifiers start: the clock moves on until the stake earns
    // (then it can also be unbonded), and blocks follow the wall clock.
    const creditWindow = await clients.public.readContract({ ...staking, functionName: "rewardCreditWindow" });
    const current = await clients.public.readContract({ ...staking, functionName: "currentEpoch" });
    await advanceTo(
      clients,
      await clients.public.readContract({ ...staking, functionName: "epochStartTime", args: [current + creditWindow + 1n] }),
    );
    await setIntervalMining(clients, 1_000);

    const redisPort = await freePort();
    await startRedis(supervisor, { name: "Redis", host: HOST, port: redisPort, dir: file("redis"), logFile: file("redis.log") });
    const redisUrl = `redis://${HOST}:${redisPort}`;
    const proxy = await startRpcProxy(RPC_URL);
    stoppers.push(() => proxy.close());
    const port = await freePort();
    const metricsUrl = `http://${HOST}:${port}/metrics`;
    const prefix = "scale";

    say(
      `starting the verifier (node verifier/main.ts --config ${o.workDir}/verifier.json, log ${o.workDir}/verifier.log) through the counting proxy`,
    );
    const before = proxy.counts();
    const startedAt = performance.now();
    const verifier = await startVerifier(supervisor, {
      name: "verifier",
      root,
      host: HOST,
      port,
      redisUrl,
      redisPrefix: prefix,
      rpcUrl: proxy.url,
      addresses,
      key: governed.verifierSecrets[0]!,
      challengePayerKey: governed.challengePayers[0]!,
      configFile: file("verifier.json"),
      logFile: file("verifier.log"),
      overrides: { challenges: NO_CHALLENGES },
    });
    const proc = watchProcess(() => verifier.pid);
    stoppers.push(async () => proc.stop());

    const result: ScaleRun = {
      n,
      seed_ms: round(seeded.ms),
      seed_edges_per_s: round(seeded.edgesPerSecond),
      seed_transactions: seeded.transactions,
      seed_blocks: seeded.blocks,
      resync_ms: null,
      resync_rpc_requests: 0,
      resync_http_requests: 0,
      resync_rpc_by_method: {},
      resync_chain_sync_ms: null,
      tick_ms: null,
      tick_period_ms: null,
      ticks_in_window: 0,
      tick_errors_in_window: 0,
      tick_rpc_requests: null,
      tick_http_requests: null,
      window_rpc_by_method: {},
      churn: null,
      observe_ms: null,
      observe_result: "not reached",
      verifier_rss_mb: 0,
      verifier_rss_mb_now: 0,
      verifier_fds_max: 0,
      verifier_restarts: 0,
      log: { errors: 0, warnings: 0, messages: [] },
      failed: null,
    };
    const finish = () => {
      proc.stop();
      result.verifier_rss_mb = round(proc.max().peakRssMb);
      result.verifier_rss_mb_now = round(proc.last()?.rssMb ?? 0);
      result.verifier_fds_max = proc.max().fds;
      result.verifier_restarts = verifier.restarts;
      result.log = logProblems(file("verifier.log"));
      return result;
    };

    // Resync: until the first good tick.
    let metrics: Metrics | undefined;
    const goodTicks = (m: Metrics | undefined) => m?.value("tideway_verifier_ticks_total", { result: "ok" }) ?? 0;
    const resynced = await waitUntil(
      async () => {
        metrics = await scrape(metricsUrl);
        return goodTicks(metrics) > 0;
      },
      o.resyncTimeoutMs,
      100,
    );
    const resync = countsBetween(before, proxy.counts());
    result.resync_rpc_requests = resync.calls;
    result.resync_http_requests = resync.httpRequests;
    result.resync_rpc_by_method = resync.byMethod;
    if (!resynced) {
      result.failed = `no good tick within ${o.resyncTimeoutMs / 1000} s of the verifier's start (${metrics?.value("tideway_verifier_ticks_total", { result: "error" }) ?? 0} failed ticks)`;
      say(`  FAILED: ${result.failed}`);
      return finish();
    }
    result.resync_ms = round(performance.now() - startedAt);
    const fullSyncs = metrics?.value("tideway_verifier_chain_sync_seconds_count", { kind: "full" });
    if (fullSyncs !== undefined && fullSyncs > 0)
      result.resync_chain_sync_ms = round(
        (1000 * metrics!.value("tideway_verifier_chain_sync_seconds_sum", { kind: "full" })!) / fullSyncs,
      );
    const firstEpoch = BigInt(metrics?.value("tideway_verifier_current_epoch") ?? 0);
    say(
      `  first good tick ${result.resync_ms} ms after the start, ${resync.calls} JSON-RPC calls in ${resync.httpRequests} HTTP requests (epoch ${firstEpoch})`,
    );

    // Steady state: the changes of an epoch, then a window of ticks.
    const churn = await createChurn(clients, addresses, participants.operator, seeded.edges, o.churnFraction);
    const m0 = await scrape(metricsUrl);
    const c0: RpcCounts = proxy.counts();
    const w0 = performance.now();
    result.churn = await churn.round();
    say(
      `  changed ${Object.entries(result.churn.changed)
        .map(([k, v]) => `${v} ${k}`)
        .join(", ")} (${result.churn.transactions} transactions); a ${o.windowMs / 1000} s window of ticks`,
    );
    await new Promise((r) => setTimeout(r, Math.max(0, o.windowMs - (performance.now() - w0))));
    const m1 = await scrape(metricsUrl);
    const window = countsBetween(c0, proxy.counts());
    const windowMs = performance.now() - w0;
    const delta = (name: string, labels?: Record<string, string>) => (m1?.value(name, labels) ?? 0) - (m0?.value(name, labels) ?? 0);
    const ticks = delta("tideway_verifier_ticks_total");
    result.ticks_in_window = ticks;
    result.tick_errors_in_window = delta("tideway_verifier_ticks_total", { result: "error" });
    result.window_rpc_by_method = window.byMethod;
    if (ticks > 0) {
      result.tick_period_ms = round(windowMs / ticks);
      result.tick_rpc_requests = round(window.calls / ticks);
      result.tick_http_requests = round(window.httpRequests / ticks);
    }
    const observed = delta("tideway_verifier_tick_duration_seconds_count");
    if (m1?.value("tideway_verifier_tick_duration_seconds_count") !== undefined && observed > 0)
      result.tick_ms = round((1000 * delta("tideway_verifier_tick_duration_seconds_sum")) / observed);
    say(
      `  ${ticks} ticks (${result.tick_errors_in_window} failed): ${result.tick_rpc_requests ?? "-"} JSON-RPC calls a tick, tick ${result.tick_ms ?? "(not reported)"} ms, one every ${result.tick_period_ms ?? "-"} ms`,
    );

    // The end-of-epoch observation of the first epoch (its job's own times in Redis).
    const connection = new Redis(redisUrl, { maxRetriesPerRequest: null });
    const epochs = new Queue("epochs", { connection, prefix });
    stoppers.push(async () => {
      await epochs.close();
      connection.disconnect();
    });
    const epochEnd = await clients.public.readContract({ ...staking, functionName: "epochStartTime", args: [firstEpoch + 1n] });
    const until = Math.max(0, Number(epochEnd - (await chainTime(clients)))) * 1000 + o.resyncTimeoutMs;
    say(`  waiting for the observation of epoch ${firstEpoch} (job observe-${firstEpoch}, at most ${Math.round(until / 1000)} s)`);
    let observeResult = "not reached";
    await waitUntil(
      async () => {
        const job = await epochs.getJob(`observe-${firstEpoch}`);
        if (job?.finishedOn === undefined || job.processedOn === undefined) return false;
        result.observe_ms = job.finishedOn - job.processedOn;
        observeResult =
          job.failedReason !== undefined && job.failedReason !== "" ? `failed: ${job.failedReason}` : JSON.stringify(job.returnvalue);
        return true;
      },
      until,
      500,
    );
    result.observe_result = observeResult;
    say(`  observe: ${result.observe_ms ?? "-"} ms (${observeResult})`);
    return finish();
  } finally {
    for (const stop of stoppers.reverse()) await stop().catch(() => undefined);
    await supervisor.stopAll();
  }
}
