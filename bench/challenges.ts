// The challenge part of `npm run bench:verifier`: GPoW challenges issued AND verified per second by
// ONE verifier process against local edges. Imported by bench/verifier.ts (under `hardhat run`);
// importing it runs nothing.
//
// What runs where (the machine's cores are shared by all of it; the JSON records how many):
// - this process (the `hardhat run` process): the in-process Hardhat chain with the protocol
//   deployed (devnet/testbed.ts), served over HTTP JSON-RPC (startRpcBridge), and the
//   orchestration. Nothing of it is on a challenge's path: edges poll the chain every 2 s.
// - `edges` edge processes: `node edge/main.ts --config …`, the operator's command, each with the
//   built-in reference backend on 1 worker thread, payment required (vouchers checked and stored
//   in LMDB, usage log, receipts signed natively with the key from `loadKey`).
// - one redis-server (devnet/redis.ts: AOF on, everysec), the verifier's Redis.
// - ONE verifier process per run: `node bench/challenges.ts --verifier-process <json>` (this file,
//   plain Node). It runs a BullMQ Queue and a Worker (concurrency `concurrency`) whose processor is
//   the service's challenge job (verifier/jobs/challenge.ts): `createChallengeRunner`
//   (verifier/challenges/runner.ts: ChallengePayer with cumulative vouchers in Redis, the recompute
//   pool of 1 thread, receipt verification), then `createVerifierState(redis, prefix).recordResult`
//   and the metrics. Specs are planned with the runner's `plan` (the service's planner). The one
//   step of the service's job left out is its `currentEpoch` read (one eth_call a second per
//   process, cached).
//
// A run: the verifier enqueues challenges with addBulk and keeps a backlog of a few thousand
// (topping it up as jobs finish, so that the queue never runs dry), lets the worker run
// `warmupSeconds`, then counts the jobs that complete with a "pass" result over `windowSeconds`.
// It also samples the CPU time of every process over the window (its own, each edge's, Redis's,
// this process's), so the result says where the cores went. A row is the median of `runs` runs,
// each in a fresh verifier process.
//
// Rows: the lightest challenge the service issues (latency: 2–6 tokens of the reference model,
// paid with a voucher, the receipt checked and the answer recomputed and compared), full
// inference challenges (8–64 tokens) with the default reference model, and the latency challenge
// against a tiny reference model shape on both sides (what the challenge plumbing costs without
// the model; the runner's `referenceConfig` gives it the edges' shape).
//
// Environment: BENCH_CHALLENGE_ROWS (comma list of row names), BENCH_CHALLENGE_EDGES,
// BENCH_CHALLENGE_CONCURRENCY, BENCH_CHALLENGE_RUNS, BENCH_CHALLENGE_WARMUP_S,
// BENCH_CHALLENGE_WINDOW_S; BENCH_CHALLENGE_PROF=1 writes CPU profiles of the verifier and the
// edges to /tmp/challengeprof.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";

import { Queue, Worker } from "bullmq";
import type { Job } from "bullmq";
import type { Hex, TypedDataDomain } from "viem";

import type { ModelConfig } from "../lib/reference-model/index.ts";
import { createChallengeRunner, runChallengeAttempt } from "../verifier/challenges/runner.ts";
import type { ChallengeJobData } from "../verifier/challenges/runner.ts";
import type { ChallengeResult, ChallengeTarget } from "../verifier/challenges/types.ts";
import { createVerifierMetrics } from "../verifier/metrics.ts";
import { connectSafeRedis, redisOptions } from "../lib/redis.ts";
import { createVerifierState } from "../verifier/state.ts";

const ROOT = path.resolve(import.meta.dirname, "..");
const THIS_FILE = fileURLToPath(import.meta.url);
const PROFILE_DIR = "/tmp/challengeprof";

/** One measured configuration. */
export interface ChallengeRow {
  name: string;
  /** Its figure's key in bench/results/verifier.json. */
  key: string;
  /** The challenge kind planned (latency: short answers; inference: 8–64 tokens). */
  kind: "latency" | "inference";
  /** The reference model's shape on the edges and in the verifier's recomputation; undefined: the default. */
  shape?: ModelConfig;
}

export const CHALLENGE_ROWS: readonly ChallengeRow[] = [
  { name: "latency", key: "challenges_per_s", kind: "latency" },
  { name: "inference", key: "challenges_per_s_default_inference", kind: "inference" },
  { name: "latency_tiny_model", key: "challenges_per_s_tiny_model", kind: "latency", shape: { hidden: 8, layers: 1 } },
];

export interface ChallengeBenchOptions {
  rows?: readonly ChallengeRow[];
  edges?: number;
  concurrency?: number;
  runs?: number;
  warmupSeconds?: number;
  windowSeconds?: number;
  profile?: boolean;
}

// ------------------------------------------------------------------------- the verifier process

/** What the verifier process gets (JSON on its command line: bigints as decimal strings). */
interface VerifierProcessParams {
  redisUrl: string;
  prefix: string;
  kind: ChallengeRow["kind"];
  shape?: ModelConfig;
  concurrency: number;
  warmupSeconds: number;
  windowSeconds: number;
  payerKey: Hex;
  sessionId: string;
  epoch: string;
  epochStart: string;
  epochEnd: string;
  marketDomain: TypedDataDomain;
  edgeDomain: TypedDataDomain;
  targets: Array<Omit<ChallengeTarget, "edgeId"> & { edgeId: string }>;
  /** Processes whose CPU time is sampled over the window, by name. */
  pids: Record<string, number>;
  clockTicksPerSecond: number;
}

/** What one run measured (sent to the parent over IPC). */
export interface RunResult {
  passPerSecond: number;
  passed: number;
  /** Passed challenges whose answer was recomputed and compared (and whose receipt was valid). */
  recomputed: number;
  failed: number;
  errors: number;
  windowSeconds: number;
  /** Every challenge that completed during the whole run, by outcome. */
  totals: { passed: number; failed: number; errors: number; enqueued: number };
  latencyMs: { p50: number; p99: number };
  /** CPU milliseconds per passed challenge over the window, by process. */
  cpuMsPerChallenge: Record<string, number>;
  /** Share of one core each process used over the window (1 = a whole core). */
  coresUsed: Record<string, number>;
  /** All cores' busy share over the window (/proc/stat), 0..1. */
  machineBusy: number;
  /** Cores busy with processes other than the benchmark's (other work on the machine) over the window. */
  otherCores: number;
  failures: string[];
}

/** utime + stime of `pid` in milliseconds, or NaN if it is gone. */
function cpuMsOf(pid: number, ticksPerSecond: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) is in parentheses and may contain spaces: split after it.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / ticksPerSecond;
  } catch {
    return Number.NaN;
  }
}

/** Busy and total jiffies of all cores (/proc/stat's first line). */
function machineJiffies(): { busy: number; total: number } {
  const line = readFileSync("/proc/stat", "utf8").split("\n")[0]!;
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const total = v.reduce((a, b) => a + b, 0);
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  return { busy: total - idle, total };
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** The service's own challenge runner, with the model shape the bench's edges run. */
function benchRunner(
  p: VerifierProcessParams,
  redis: Awaited<ReturnType<typeof connectSafeRedis>>,
  state: ReturnType<typeof createVerifierState>,
) {
  return createChallengeRunner({
    redis,
    prefix: p.prefix,
    payerKey: p.payerKey,
    marketDomain: p.marketDomain,
    edgeDomain: p.edgeDomain,
    sessionFor: async () => BigInt(p.sessionId),
    timeoutMs: 30_000,
    resultsFor: (epoch, edgeId) => state.results(epoch, edgeId),
    referenceConfig: p.shape,
  });
}

type ChallengeJob = Job<ChallengeJobData, ChallengeResult>;

/** One run of the verifier process (see the file comment). */
async function verifierProcess(p: VerifierProcessParams): Promise<RunResult> {
  const redis = await connectSafeRedis(p.redisUrl);
  const connection = redisOptions(p.redisUrl);
  const state = createVerifierState(redis, p.prefix);
  const metrics = createVerifierMetrics();
  const runner = benchRunner(p, redis, state);
  const targets: ChallengeTarget[] = p.targets.map((t) => ({ ...t, edgeId: BigInt(t.edgeId) }));
  const attempts = 3;
  const DAY_S = 24 * 3600;

  // The service's challenge job (verifier/jobs/challenge.ts) without its epoch check.
  const processor = (job: ChallengeJob): Promise<ChallengeResult> => runChallengeAttempt({ run: runner.run, state, metrics }, job);

  const queue = new Queue("challenges", { connection, prefix: p.prefix });
  const worker = new Worker("challenges", processor, {
    connection,
    prefix: p.prefix,
    concurrency: p.concurrency,
    lockDuration: 30_000,
    stalledInterval: 15_000,
    maxStalledCount: 3,
    autorun: false,
  });

  // Counting.
  let measuring = false;
  const window = { passed: 0, failed: 0, errors: 0, recomputed: 0, latencies: [] as number[] };
  const totals = { passed: 0, failed: 0, errors: 0, enqueued: 0 };
  const failures: string[] = [];
  worker.on("completed", (_job, result) => {
    if (result.outcome === "pass") {
      totals.passed++;
      if (measuring) {
        window.passed++;
        // What the runner says of an answer it recomputed and found equal, under a valid receipt.
        if (result.detail.startsWith("answer equals the recomputation; receipt valid")) window.recomputed++;
        if (result.latencyMs !== undefined) window.latencies.push(result.latencyMs);
      }
    } else {
      totals.failed++;
      if (measuring) window.failed++;
      if (failures.length < 5) failures.push(result.detail.slice(0, 300));
    }
  });
  // Every failed attempt (a retried one too): with healthy local edges there should be none.
  worker.on("failed", (_job, err) => {
    totals.errors++;
    if (measuring) window.errors++;
    if (failures.length < 5) failures.push(`job failed: ${err.message.slice(0, 300)}`);
  });
  worker.on("error", (err) => {
    if (failures.length < 5) failures.push(`worker error: ${err.message.slice(0, 300)}`);
  });

  // Enqueuing: each batch is planned per edge (as the service's tick plans each edge's epoch) and
  // interleaved, so that every edge gets its share of the challenges at every moment.
  const epoch = BigInt(p.epoch);
  const epochStart = BigInt(p.epochStart);
  const epochEnd = BigInt(p.epochEnd);
  const counts = { inference: 0, latency: 0, capacity: 0, audit: 0 };
  const BATCH = 100 * targets.length;
  const BACKLOG = Math.max(2_000, 8 * p.concurrency);
  const enqueue = async (n: number): Promise<void> => {
    const perEdge = targets.map((target) => ({
      wire: { ...target, edgeId: target.edgeId.toString() },
      specs: runner.plan({ epoch, epochStart, epochEnd, target, counts: { ...counts, [p.kind]: Math.ceil(n / targets.length) } }),
    }));
    const jobs = [];
    for (let i = 0; i < perEdge[0]!.specs.length; i++) {
      for (const { wire, specs } of perEdge) {
        const spec = specs[i]!;
        jobs.push({
          name: spec.kind,
          data: { spec, target: wire },
          opts: {
            jobId: `ch-${spec.epoch}-${spec.edgeId}-${spec.id.slice(2, 18)}`,
            attempts,
            backoff: { type: "exponential", delay: 1_000 },
            removeOnComplete: { age: DAY_S, count: 100_000 },
            removeOnFail: { age: 7 * DAY_S },
          },
        });
      }
    }
    await queue.addBulk(jobs);
    totals.enqueued += jobs.length;
  };
  const done = () => totals.passed + totals.failed + totals.errors;
  for (let k = 0; k < BACKLOG; k += BATCH) await enqueue(BATCH);
  let toppingUp = false;
  const topUp = setInterval(() => {
    if (toppingUp || totals.enqueued - done() >= BACKLOG) return;
    toppingUp = true;
    enqueue(BATCH)
      .catch((err: unknown) => {
        if (failures.length < 5) failures.push(`enqueue failed: ${(err as Error).message}`);
      })
      .finally(() => {
        toppingUp = false;
      });
  }, 20);

  const running = worker.run();
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  await sleep(p.warmupSeconds * 1000);

  const sampleAll = () => {
    const own = process.cpuUsage(); // every thread of this process: the recompute pool's too
    const cpu: Record<string, number> = { verifier: (own.user + own.system) / 1000 };
    for (const [name, pid] of Object.entries(p.pids)) cpu[name] = cpuMsOf(pid, p.clockTicksPerSecond);
    return { cpu, machine: machineJiffies(), at: performance.now() };
  };
  const before = sampleAll();
  measuring = true;
  await sleep(p.windowSeconds * 1000);
  measuring = false;
  const after = sampleAll();

  clearInterval(topUp);
  while (toppingUp) await sleep(10);
  await worker.close();
  await running;
  await queue.obliterate({ force: true });
  await queue.close();
  await runner.close();
  redis.disconnect();

  const seconds = (after.at - before.at) / 1000;
  const cpuMsPerChallenge: Record<string, number> = {};
  const coresUsed: Record<string, number> = {};
  for (const name of Object.keys(before.cpu)) {
    const ms = after.cpu[name]! - before.cpu[name]!;
    cpuMsPerChallenge[name] = Number((ms / Math.max(1, window.passed)).toFixed(3));
    coresUsed[name] = Number((ms / 1000 / seconds).toFixed(3));
  }
  const latencies = window.latencies.sort((a, b) => a - b);
  const machineBusy = Number(
    ((after.machine.busy - before.machine.busy) / Math.max(1, after.machine.total - before.machine.total)).toFixed(3),
  );
  return {
    passPerSecond: Math.round(window.passed / seconds),
    passed: window.passed,
    recomputed: window.recomputed,
    failed: window.failed,
    errors: window.errors,
    windowSeconds: Number(seconds.toFixed(2)),
    totals,
    latencyMs: { p50: percentile(latencies, 50), p99: percentile(latencies, 99) },
    cpuMsPerChallenge,
    coresUsed,
    machineBusy,
    otherCores: Number(
      Math.max(
        0,
        machineBusy * availableParallelism() -
          Object.values(coresUsed)
            .filter((v) => Number.isFinite(v))
            .reduce((a, b) => a + b, 0),
      ).toFixed(3),
    ),
    failures,
  };
}

// ------------------------------------------------------------------------- the orchestrator

/** Starts `node edge/main.ts --config <file>`; resolves with its URL once it serves. */
function startEdgeProcess(configFile: string, key: Hex, profile: boolean): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(
    process.execPath,
    [...(profile ? ["--cpu-prof", `--cpu-prof-dir=${PROFILE_DIR}`] : []), path.join(ROOT, "edge/main.ts"), "--config", configFile],
    {
      env: { ...process.env, TIDEWAY_EDGE_KEY: key },
      stdio: ["ignore", "pipe", "inherit"],
    },
  );
  return new Promise((resolve, reject) => {
    let out = "";
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      const line = out.split("\n").find((l) => l.includes('"edge serving"'));
      if (line !== undefined) {
        child.stdout!.off("data", onData);
        child.stdout!.resume(); // keep draining its (info-level) log
        resolve({ child, url: JSON.parse(line).url });
      }
    };
    child.stdout!.on("data", onData);
    child.once("exit", (code) => reject(new Error(`edge exited with ${code}: ${out}`)));
  });
}

function stopProcess(child: ChildProcess, signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.removeAllListeners("exit");
    child.once("exit", () => resolve());
    child.kill(signal);
  });
}

/** The pid of the redis-server listening on `port` (its command line is rewritten to `redis-server 127.0.0.1:<port>`). */
function redisPid(port: number): number | undefined {
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmd = readFileSync(`/proc/${entry}/cmdline`, "utf8");
      if (cmd.startsWith("redis-server") && cmd.includes(`:${port}`)) return Number(entry);
    } catch {
      // gone
    }
  }
  return undefined;
}

/** Runs the verifier process once; resolves with its RunResult. */
function runVerifierProcess(params: VerifierProcessParams, profile: boolean): Promise<RunResult> {
  const child = spawn(
    process.execPath,
    [...(profile ? ["--cpu-prof", `--cpu-prof-dir=${PROFILE_DIR}`] : []), THIS_FILE, "--verifier-process", JSON.stringify(params)],
    {
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    },
  );
  return new Promise((resolve, reject) => {
    let result: RunResult | undefined;
    child.on("message", (m) => {
      result = m as RunResult;
    });
    child.once("exit", (code, signal) => {
      if (result !== undefined && code === 0) resolve(result);
      else reject(new Error(`the verifier process exited with ${signal ?? `code ${code}`} without a result`));
    });
  });
}

const median = (values: readonly number[]) => {
  const v = [...values].sort((a, b) => a - b);
  return v.length % 2 === 1 ? v[(v.length - 1) / 2]! : (v[v.length / 2 - 1]! + v[v.length / 2]!) / 2;
};

/** The result of one row: the median run (by challenges/s) and every run's figure. */
export interface RowResult {
  row: ChallengeRow;
  challengesPerSecond: number;
  runs: RunResult[];
  /** The run whose figure is the median (its CPU breakdown is reported). */
  medianRun: RunResult;
}

export interface ChallengeBenchResult {
  rows: RowResult[];
  edges: number;
  concurrency: number;
  cores: number;
  runs: number;
  warmupSeconds: number;
  windowSeconds: number;
}

const envNumber = (name: string, fallback: number) =>
  process.env[name] === undefined || process.env[name] === "" ? fallback : Number(process.env[name]);

/**
 * Deploys the testbed on the in-process Hardhat network, starts Redis and the edges, and measures
 * every row (see the file comment). Must run under `hardhat run` (it imports `hardhat`).
 */
export async function measureChallenges(options: ChallengeBenchOptions = {}): Promise<ChallengeBenchResult> {
  const rowNames = process.env.BENCH_CHALLENGE_ROWS?.split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
  const rows =
    options.rows ??
    (rowNames === undefined
      ? CHALLENGE_ROWS
      : rowNames.map((n) => {
          const row = CHALLENGE_ROWS.find((r) => r.name === n);
          if (row === undefined)
            throw new Error(`BENCH_CHALLENGE_ROWS: unknown row ${n} (rows: ${CHALLENGE_ROWS.map((r) => r.name).join(", ")})`);
          return row;
        }));
  const edgeCount = options.edges ?? envNumber("BENCH_CHALLENGE_EDGES", 2);
  const concurrency = options.concurrency ?? envNumber("BENCH_CHALLENGE_CONCURRENCY", 64);
  const runs = options.runs ?? envNumber("BENCH_CHALLENGE_RUNS", 3);
  const warmupSeconds = options.warmupSeconds ?? envNumber("BENCH_CHALLENGE_WARMUP_S", 3);
  const windowSeconds = options.windowSeconds ?? envNumber("BENCH_CHALLENGE_WINDOW_S", 8);
  const profile = options.profile ?? process.env.BENCH_CHALLENGE_PROF === "1";

  const { network } = await import("hardhat");
  const { deployMarketTestbed, edgeConfigFor, EDGE_MODEL, INPUT_PRICE, OUTPUT_PRICE, startRpcBridge } = await import(
    "../devnet/testbed.ts"
  );
  const { startScratchRedis } = await import("../devnet/redis.ts");
  const { edgeDomain } = await import("../lib/protocol/edgeProofs.ts");
  const { chainTime } = await import("../devnet/chain.ts");
  const { deposit, fund, openSession } = await import("../devnet/protocol.ts");
  const { edgeStakingAbi } = await import("../lib/protocol/abis.ts");
  const { generatePrivateKey, privateKeyToAccount } = await import("viem/accounts");
  const TOKEN = 10n ** 18n;

  const conn = await network.create();
  const bed = await deployMarketTestbed(conn, { edges: edgeCount });
  const { clients, addresses } = bed;

  // The verifier's challenge payer: a fresh account with its own escrow and session, as the
  // service's funding opens them (verifier/challenges/funding.ts), so that vouchers are signed by their payer.
  const payerKey = generatePrivateKey();
  const payer = privateKeyToAccount(payerKey);
  await fund(clients, addresses, bed.admin, payer.address, { eth: 10n * TOKEN, tokens: 1_000n * TOKEN });
  await deposit(clients, addresses, payer, 1_000n * TOKEN);
  const now = await chainTime(clients);
  const sessionId = await openSession(clients, addresses, payer, EDGE_MODEL, 500n * TOKEN, now + 30n * 86_400n);
  const epoch = await clients.public.readContract({ address: addresses.staking, abi: edgeStakingAbi, functionName: "currentEpoch" });
  const registry = addresses.registry;

  const bridge = await startRpcBridge(conn.provider);
  const redis = await startScratchRedis();
  const prefix = `bench-${randomBytes(4).toString("hex")}`;
  const ticks = Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim()) || 100;
  const results: RowResult[] = [];
  try {
    for (const row of rows) {
      // Fresh edges per row (the model shape is part of their configuration).
      const edges: { child: ChildProcess; url: string; edge: (typeof bed.edges)[number] }[] = [];
      try {
        for (const edge of bed.edges) {
          const config = edgeConfigFor(addresses, edge.edgeId, bridge.url, {
            chain: {
              rpcUrl: bridge.url,
              addresses: { registry: addresses.registry, staking: addresses.staking, market: addresses.market },
              pollIntervalMs: 2_000,
            },
            models: [
              {
                name: EDGE_MODEL,
                backend: { type: "reference", threads: 1, ...(row.shape ?? {}) },
                price: { inputPerToken: INPUT_PRICE.toString(), outputPerToken: OUTPUT_PRICE.toString() },
                maxTokens: 512,
                defaultMaxTokens: 16,
              },
            ],
            limits: { maxConcurrent: 256, maxQueue: 4_096, queueTimeoutMs: 60_000, bodyLimitBytes: 65_536 },
            payment: {
              required: true,
              minVoucherLifetimeSeconds: 60,
              redeemIntervalSeconds: 3_600,
              redeemBatchSize: 50,
              thawMarginSeconds: 120,
            },
            log: { level: "info" }, // for the "edge serving" line; requests are not logged at info
          });
          const file = path.join(config.dataDir, "edge.json");
          writeFileSync(file, JSON.stringify(config));
          const started = await startEdgeProcess(file, edge.privateKey, profile);
          edges.push({ ...started, edge });
        }
        const pids: Record<string, number> = { chain_and_bench: process.pid };
        edges.forEach((e, i) => {
          pids[`edge${i + 1}`] = e.child.pid!;
        });
        const rp = redisPid(redis.port);
        if (rp !== undefined) pids.redis = rp;
        const runResults: RunResult[] = [];
        for (let run = 1; run <= runs; run++) {
          const params: VerifierProcessParams = {
            redisUrl: redis.url,
            // One verifier prefix for every run: the payer's cumulative vouchers (kept under it)
            // must keep growing, as a verifier's do, or an edge still holding a higher voucher of
            // the session would refuse the new ones once they no longer cover what it served.
            prefix,
            kind: row.kind,
            shape: row.shape,
            concurrency,
            warmupSeconds,
            windowSeconds,
            payerKey,
            sessionId: sessionId.toString(),
            epoch: epoch.toString(),
            epochStart: now.toString(),
            epochEnd: (now + 3_600n).toString(),
            marketDomain: jsonDomain(bed.domain),
            edgeDomain: jsonDomain(edgeDomain(bed.chainId, registry)),
            targets: edges.map((e) => ({
              edgeId: e.edge.edgeId.toString(),
              endpoint: e.url,
              signingKey: e.edge.key.address,
              capacity: 1_000,
              models: [EDGE_MODEL],
            })),
            pids,
            clockTicksPerSecond: ticks,
          };
          const r = await runVerifierProcess(params, profile);
          console.log(
            `challenges ${row.name} run ${run}/${runs}: ${r.passPerSecond} passed/s (${r.passed} passed, ${r.failed} failed, ${r.errors} errors in ${r.windowSeconds} s; p50 ${r.latencyMs.p50} ms; cores used ${JSON.stringify(r.coresUsed)}, by other processes ${r.otherCores})`,
          );
          if (r.failures.length > 0) console.log(`  failures: ${r.failures.join(" | ")}`);
          runResults.push(r);
        }
        const perSecond = Math.round(median(runResults.map((r) => r.passPerSecond)));
        const medianRun = [...runResults].sort((a, b) => Math.abs(a.passPerSecond - perSecond) - Math.abs(b.passPerSecond - perSecond))[0]!;
        results.push({ row, challengesPerSecond: perSecond, runs: runResults, medianRun });
      } finally {
        await Promise.all(edges.map((e) => stopProcess(e.child)));
      }
    }
  } finally {
    await redis.destroy();
    await bridge.close();
  }
  return { rows: results, edges: edgeCount, concurrency, cores: availableParallelism(), runs, warmupSeconds, windowSeconds };
}

/** A domain as JSON can carry it (chainId as a number). */
function jsonDomain(domain: TypedDataDomain): TypedDataDomain {
  return { ...domain, chainId: Number(domain.chainId) };
}

if (process.argv[2] === "--verifier-process" && process.argv[1] !== undefined && path.resolve(process.argv[1]) === THIS_FILE) {
  const params = JSON.parse(process.argv[3]!) as VerifierProcessParams;
  const result = await verifierProcess(params);
  process.send!(result, () => process.exit(0));
}
