// `npm run bench:edge`: what payment checking costs an edge. Starts an edge (the operator's
// command, `node edge/main.ts`, as a child process) with the built-in reference backend on
// loopback, against the protocol deployed on the in-process Hardhat network, and drives it with
// autocannon (64 connections, a short completion), without payment and with it (a fresh cumulative
// voucher per request, as a dApp gateway sends them, signed before the measured window) in each
// voucher durability, alternating, three rounds each. Besides latency it records the CPU time per
// request of the edge's main thread, of its other threads and of the load generator (this
// process), and times the parts alone: signing, checking and storing one voucher. Prints a table
// and writes bench/results/edge.json.
// BENCH_EDGE_CONTENTION=1 runs everything a second time beside a busy machine (bench/contention.ts:
// 2 processes spinning on the CPU, 1 writing and fsyncing files) and reports both side by side.
// BENCH_EDGE_SECONDS, BENCH_EDGE_ROUNDS change the run; BENCH_EDGE_PROF=1 writes the edge's CPU
// profiles to /tmp/edgeprof.
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, cpus, loadavg, tmpdir } from "node:os";
import path from "node:path";

import autocannon from "autocannon";
import { network } from "hardhat";
import secp256k1 from "secp256k1";
import { hexToBytes, toHex } from "viem";
import type { Hex } from "viem";

import { parseEdgeConfig } from "../edge/config.ts";
import { createVoucherStore } from "../edge/payment/store.ts";
import { openEdgeDatabase } from "../edge/store/database.ts";
import { createVoucherVerifier } from "../lib/protocol/fastVoucher.ts";
import { decodeVoucherHeader } from "../lib/protocol/voucherHeader.ts";
import { encodeVoucherHeader } from "../lib/protocol/voucherHeader.ts";
import type { Voucher } from "../lib/protocol/eip712.ts";
import { countPromptTokens } from "../lib/reference-model/index.ts";
import {
  deployMarketTestbed,
  type DeployedMarketTestbed,
  EDGE_MODEL,
  edgeConfigFor,
  INPUT_PRICE,
  OUTPUT_PRICE,
  startRpcBridge,
} from "../devnet/testbed.ts";
import { startContention } from "./contention.ts";

const CONNECTIONS = 64;
const WARMUP_SECONDS = 3;
const DURATION_SECONDS = Number(process.env.BENCH_EDGE_SECONDS ?? 10);
const MAX_TOKENS = 16;
const MESSAGES = [{ role: "user" as const, content: "Say hello to the Tideway edge network." }];
const BODY = JSON.stringify({ model: EDGE_MODEL, messages: MESSAGES, max_tokens: MAX_TOKENS, temperature: 0 });
const ROOT = path.resolve(import.meta.dirname, "..");

function startEdgeProcess(configFile: string, key: Hex): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(
    process.execPath,
    [
      ...(process.env.BENCH_EDGE_PROF ? ["--cpu-prof", "--cpu-prof-dir=/tmp/edgeprof"] : []),
      path.join(ROOT, "edge/main.ts"),
      "--config",
      configFile,
    ],
    {
      env: { ...process.env, TIDEWAY_EDGE_KEY: key },
      stdio: ["ignore", "pipe", "inherit"],
    },
  );
  return new Promise((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (chunk: Buffer) => {
      out += chunk.toString();
      const line = out.split("\n").find((l) => l.includes('"edge serving"'));
      if (line !== undefined) resolve({ child, url: JSON.parse(line).url });
    });
    child.on("exit", (code) => reject(new Error(`edge exited with ${code}: ${out}`)));
  });
}

/** Rejects if the edge process dies while it is being measured. */
function diesWith(child: ChildProcess): Promise<never> {
  return new Promise((_, reject) =>
    child.on("exit", (code, signal) => reject(new Error(`the edge died during the run (${signal ?? `code ${code}`})`))),
  );
}

function stop(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    child.removeAllListeners("exit");
    child.on("exit", () => resolve());
    child.kill("SIGTERM");
  });
}

/** Vouchers a gateway would send, one per request: cumulative k × cost, signed with the native addon. */
function presignVouchers(bed: DeployedMarketTestbed, edgeId: bigint, count: number, cost: bigint): string[] {
  const verifier = createVoucherVerifier(bed.domain);
  const key = hexToBytes(bed.gatewayPrivateKey);
  const headers: string[] = new Array(count);
  for (let k = 1; k <= count; k++) {
    const voucher: Voucher = { payer: bed.payer, edgeId, sessionId: bed.sessionId, cumulativeAmount: BigInt(k) * cost, expiry: 2n ** 40n };
    const { signature, recid } = secp256k1.ecdsaSign(verifier.digest(voucher), key);
    const sig = new Uint8Array(65);
    sig.set(signature, 0);
    sig[64] = 27 + recid;
    headers[k - 1] = encodeVoucherHeader(voucher, toHex(sig));
  }
  return headers;
}

interface Run {
  rps: number;
  p50: number;
  p99: number;
  requests: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  /** CPU milliseconds per request (warm-up included): the edge's main thread, its other threads, this process. */
  cpu?: { edgeMain: number; edgeOther: number; loadGenerator: number };
}

async function drive(url: string, vouchers?: string[]): Promise<Run> {
  let next = 0;
  const request = {
    method: "POST" as const,
    path: "/v1/chat/completions",
    headers: { "content-type": "application/json" },
    body: BODY,
    setupRequest: (req: autocannon.Request) => {
      if (vouchers === undefined) return req;
      const header = vouchers[next++];
      if (header === undefined) throw new Error("ran out of pre-signed vouchers: raise the count");
      return { ...req, headers: { ...req.headers, "x-tideway-voucher": header } };
    },
  };
  const warmup = await autocannon({ url, connections: CONNECTIONS, duration: WARMUP_SECONDS, requests: [request] });
  const result = await autocannon({ url, connections: CONNECTIONS, duration: DURATION_SECONDS, requests: [request] });
  return {
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    requests: result.requests.total,
    non2xx: result.non2xx + warmup.non2xx,
    errors: result.errors + warmup.errors,
    timeouts: result.timeouts,
  };
}

/** CPU milliseconds each thread of process `pid` has used (Linux /proc), keyed by thread id; undefined elsewhere. */
function threadCpuMs(pid: number): Map<number, number> | undefined {
  const dir = `/proc/${pid}/task`;
  if (!existsSync(dir)) return undefined;
  const ticks = new Map<number, number>();
  for (const tid of readdirSync(dir)) {
    try {
      const stat = readFileSync(`${dir}/${tid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      // utime and stime, in clock ticks of 10 ms (USER_HZ = 100 on Linux).
      ticks.set(Number(tid), (Number(fields[11]) + Number(fields[12])) * 10);
    } catch {
      // the thread ended meanwhile
    }
  }
  return ticks;
}

/** Drives the edge and measures the CPU it and this process spend per request. */
async function driveMeasured(child: ChildProcess, url: string, vouchers?: string[]): Promise<Run> {
  const pid = child.pid!;
  const before = threadCpuMs(pid);
  const ownBefore = process.cpuUsage();
  const run = await drive(url, vouchers);
  const after = threadCpuMs(pid);
  const own = process.cpuUsage(ownBefore);
  if (before === undefined || after === undefined) return run;
  let main = 0;
  let other = 0;
  for (const [tid, ms] of after) {
    const used = ms - (before.get(tid) ?? 0);
    if (tid === pid) main += used;
    else other += used;
  }
  // Warm-up requests used CPU too: count them at the measured rate.
  const served = run.requests * ((WARMUP_SECONDS + DURATION_SECONDS) / DURATION_SECONDS);
  run.cpu = { edgeMain: main / served, edgeOther: other / served, loadGenerator: (own.user + own.system) / 1000 / served };
  return run;
}

const percentile = (values: number[], p: number) => {
  const v = [...values].sort((a, b) => a - b);
  return v[Math.min(v.length - 1, Math.floor(p * v.length))]!;
};
const median = (values: number[]) => {
  const v = [...values].sort((a, b) => a - b);
  return v.length % 2 === 1 ? v[(v.length - 1) / 2]! : (v[v.length / 2 - 1]! + v[v.length / 2]!) / 2;
};
const round2 = (x: number) => Number(x.toFixed(2));

/**
 * The parts of the paid path alone, in this process: signing a voucher (the load generator's
 * work, done before the measured window), recovering its signer (the edge's check) and storing
 * it (one voucher store write at a time on a fresh LMDB, until committed and until flushed).
 */
async function measureParts(bed: DeployedMarketTestbed, edgeId: bigint, cost: bigint) {
  const count = 2000;
  let started = performance.now();
  const headers = presignVouchers(bed, edgeId, count, cost);
  const signUs = ((performance.now() - started) * 1000) / count;
  const verifier = createVoucherVerifier(bed.domain);
  const decoded = headers.map((h) => decodeVoucherHeader(h));
  started = performance.now();
  for (const { voucher, signature } of decoded) verifier.recoverSigner(voucher, signature);
  const verifyUs = ((performance.now() - started) * 1000) / count;
  const dir = mkdtempSync(path.join(tmpdir(), "tideway-bench-store-"));
  const root = openEdgeDatabase(dir);
  const store = createVoucherStore(root);
  const commitMs: number[] = [];
  const flushMs: number[] = [];
  try {
    for (const { voucher, signature } of decoded.slice(0, 300)) {
      const t0 = performance.now();
      await store.putBest(voucher, signature, bed.gateway.address);
      const t1 = performance.now();
      await store.flushed();
      commitMs.push(t1 - t0);
      flushMs.push(performance.now() - t0);
    }
  } finally {
    await root.close();
    rmSync(dir, { recursive: true, force: true });
  }
  return {
    sign_us: round2(signUs),
    verify_us: round2(verifyUs),
    store_commit_ms_p50: round2(median(commitMs)),
    store_commit_ms_p99: round2(percentile(commitMs, 0.99)),
    store_flushed_ms_p50: round2(median(flushMs)),
    store_flushed_ms_p99: round2(percentile(flushMs, 0.99)),
  };
}

const conn = await network.create();
const bed = await deployMarketTestbed(conn);
const bridge = await startRpcBridge(conn.provider);
const edge = bed.edges[0]!;
const cost = BigInt(countPromptTokens(MESSAGES)) * INPUT_PRICE + BigInt(MAX_TOKENS) * OUTPUT_PRICE;
// The modes alternate, ROUNDS times each, and each figure is the median of its rounds: on a
// small shared machine one run against the next moves by several percent on its own, more than
// the effect measured here.
const ROUNDS = Number(process.env.BENCH_EDGE_ROUNDS ?? 3);
const EDGE_POLL_INTERVAL_MS = Number(process.env.BENCH_EDGE_POLL_MS ?? 2000);
const CONTENTION = process.env.BENCH_EDGE_CONTENTION === "1";
const MODES = ["unpaid", "paid_sync", "paid_interval"] as const;
type Mode = (typeof MODES)[number];
/** The durability an edge runs with when its operator sets none: "paid" in the results is that mode. */
const DEFAULT_DURABILITY = parseEdgeConfig(edgeConfigFor(bed.addresses, edge.edgeId, bridge.url, { payment: undefined }), {}).payment
  .voucherDurability;
const PAID: Mode = DEFAULT_DURABILITY === "sync" ? "paid_sync" : "paid_interval";

/** One side of the comparison: every mode, ROUNDS alternating rounds, on the machine as it is now. */
async function measure(label: string) {
  const rounds: Record<Mode, Run[]> = { unpaid: [], paid_sync: [], paid_interval: [] };
  const load: number[] = [loadavg()[0]!];
  const parts = await measureParts(bed, edge.edgeId, cost);
  console.log(`${label}: parts ${JSON.stringify(parts)}`);
  for (let round = 1; round <= ROUNDS; round++) {
    for (const mode of MODES) {
      const config = edgeConfigFor(bed.addresses, edge.edgeId, bridge.url, {
        // The edge's default poll interval: the testbed's 200 ms would poll the chain (which lives
        // in this process) ten times as often as an operator's edge does.
        chain: {
          rpcUrl: bridge.url,
          addresses: { registry: bed.addresses.registry, staking: bed.addresses.staking, market: bed.addresses.market },
          pollIntervalMs: EDGE_POLL_INTERVAL_MS,
        },
        payment: {
          required: mode !== "unpaid",
          minVoucherLifetimeSeconds: 60,
          redeemIntervalSeconds: 3600,
          voucherDurability: mode === "paid_interval" ? "interval" : "sync",
        },
        limits: { maxConcurrent: 64, maxQueue: 1024, queueTimeoutMs: 60_000, bodyLimitBytes: 65_536 },
        log: { level: "info" }, // the "edge serving" line says where it listens; requests are not logged
      });
      const file = path.join(config.dataDir, "edge.json");
      writeFileSync(file, JSON.stringify(config));
      const { child, url } = await startEdgeProcess(file, edge.privateKey);
      let run: Run;
      try {
        // Generous: the edge serves a few hundred short completions a second here.
        const vouchers =
          mode === "unpaid" ? undefined : presignVouchers(bed, edge.edgeId, 2_000 * (WARMUP_SECONDS + DURATION_SECONDS), cost);
        run = await Promise.race([driveMeasured(child, url, vouchers), diesWith(child)]);
      } finally {
        await stop(child);
      }
      if (run.non2xx > 0 || run.errors > 0) {
        throw new Error(
          `${mode}: ${run.non2xx} non-2xx answers, ${run.errors} errors (${run.timeouts} timeouts); the benchmark only counts served requests`,
        );
      }
      load.push(loadavg()[0]!);
      console.log(
        `${label} round ${round}/${ROUNDS} ${mode}: ${Math.round(run.rps)} req/s, p50 ${run.p50} ms, p99 ${run.p99} ms, load ${loadavg()[0]!.toFixed(1)}`,
      );
      rounds[mode].push(run);
    }
  }
  const summary = (mode: Mode) => {
    const runs = rounds[mode];
    const cpu = runs.every((r) => r.cpu !== undefined)
      ? {
          edge_main: round2(median(runs.map((r) => r.cpu!.edgeMain))),
          edge_other_threads: round2(median(runs.map((r) => r.cpu!.edgeOther))),
          load_generator: round2(median(runs.map((r) => r.cpu!.loadGenerator))),
        }
      : undefined;
    return {
      rps: median(runs.map((r) => r.rps)),
      p50: median(runs.map((r) => r.p50)),
      p99: median(runs.map((r) => r.p99)),
      requests: runs.reduce((sum, r) => sum + r.requests, 0),
      cpu,
    };
  };
  const by = { unpaid: summary("unpaid"), paid_sync: summary("paid_sync"), paid_interval: summary("paid_interval") };
  const overhead = (mode: Mode) => round2((100 * (by[mode].p50 - by.unpaid.p50)) / by.unpaid.p50);
  const perRound = (mode: Mode) => rounds[mode].map((r) => ({ rps: Math.round(r.rps), p50_ms: r.p50, p99_ms: r.p99 }));
  return {
    rps_paid: Math.round(by[PAID].rps),
    rps_unpaid: Math.round(by.unpaid.rps),
    p50_ms_paid: by[PAID].p50,
    p50_ms_unpaid: by.unpaid.p50,
    p99_ms_paid: by[PAID].p99,
    p99_ms_unpaid: by.unpaid.p99,
    payment_overhead_p50_percent: overhead(PAID),
    goal_payment_overhead_p50_percent: 5,
    voucher_durability: DEFAULT_DURABILITY,
    by_durability: Object.fromEntries(
      (["sync", "interval"] as const).map((d) => {
        const mode: Mode = `paid_${d}`;
        return [
          d,
          {
            rps: Math.round(by[mode].rps),
            p50_ms: by[mode].p50,
            p99_ms: by[mode].p99,
            payment_overhead_p50_percent: overhead(mode),
          },
        ];
      }),
    ),
    cpu_ms_per_request: { unpaid: by.unpaid.cpu, paid_sync: by.paid_sync.cpu, paid_interval: by.paid_interval.cpu },
    parts,
    load_average: { min: round2(Math.min(...load)), median: round2(median(load)), max: round2(Math.max(...load)) },
    rounds: ROUNDS,
    per_round: {
      paid: perRound(PAID),
      unpaid: perRound("unpaid"),
      paid_sync: perRound("paid_sync"),
      paid_interval: perRound("paid_interval"),
    },
    requests: { unpaid: by.unpaid.requests, paid_sync: by.paid_sync.requests, paid_interval: by.paid_interval.requests },
  };
}

type Measured = Awaited<ReturnType<typeof measure>>;
let quiet: Measured;
let contention: Measured | undefined;
try {
  quiet = await measure("as is");
  if (CONTENTION) {
    const busy = await startContention({ cpu: 2, disk: 1 });
    try {
      contention = await measure("contention");
    } finally {
      await busy.stop();
    }
  }
} finally {
  await bridge.close();
}

const result = {
  ...quiet,
  workload: {
    connections: CONNECTIONS,
    duration_s: DURATION_SECONDS,
    warmup_s: WARMUP_SECONDS,
    max_tokens: MAX_TOKENS,
    prompt_tokens: countPromptTokens(MESSAGES),
    backend: "reference (default size, 1 worker thread per spare core)",
  },
  ...(contention === undefined
    ? {}
    : {
        contention: {
          ...contention,
          load: "2 processes spinning on the CPU, 1 writing and fsyncing 1 MiB files in a loop (bench/contention.ts)",
        },
      }),
  machine: { cores: availableParallelism(), cpu: cpus()[0]?.model ?? "unknown", node: process.version },
};

console.log(
  "\nedge: 64 connections, short completion (%d prompt + %d completion tokens), median of %d alternating rounds; paid = voucherDurability %s (the default)\n",
  result.workload.prompt_tokens,
  MAX_TOKENS,
  ROUNDS,
  DEFAULT_DURABILITY,
);
const sides: [string, Measured][] = [
  ["as is", quiet],
  ...(contention === undefined ? [] : [["contention", contention] as [string, Measured]]),
];
console.log("| machine | load avg | run | req/s | p50 ms | p99 ms | p50 overhead | CPU ms/req edge main + other, load generator |");
console.log("| --- | ---: | --- | ---: | ---: | ---: | ---: | --- |");
for (const [label, m] of sides) {
  const rows: [string, { rps: number; p50_ms: number; p99_ms: number; payment_overhead_p50_percent?: number }, Mode][] = [
    ["unpaid", { rps: m.rps_unpaid, p50_ms: m.p50_ms_unpaid, p99_ms: m.p99_ms_unpaid }, "unpaid"],
    ["paid, sync", m.by_durability.sync!, "paid_sync"],
    ["paid, interval", m.by_durability.interval!, "paid_interval"],
  ];
  for (const [name, r, mode] of rows) {
    const cpu = m.cpu_ms_per_request[mode];
    const cpuText = cpu === undefined ? "" : `${cpu.edge_main} + ${cpu.edge_other_threads}, ${cpu.load_generator}`;
    const overhead = r.payment_overhead_p50_percent === undefined ? "" : `${r.payment_overhead_p50_percent.toFixed(1)} %`;
    console.log(`| ${label} | ${m.load_average.median} | ${name} | ${r.rps} | ${r.p50_ms} | ${r.p99_ms} | ${overhead} | ${cpuText} |`);
  }
}
for (const [label, m] of sides) {
  const p = m.parts;
  console.log(
    `\n${label}: sign ${p.sign_us} µs, verify ${p.verify_us} µs, store commit p50 ${p.store_commit_ms_p50} ms (p99 ${p.store_commit_ms_p99}), flushed p50 ${p.store_flushed_ms_p50} ms (p99 ${p.store_flushed_ms_p99}); payment checking ${m.payment_overhead_p50_percent.toFixed(2)}% of p50 (goal ≤ 5%) ${m.payment_overhead_p50_percent <= 5 ? "✓" : "✗"}`,
  );
}
const out = path.join(ROOT, "bench/results/edge.json");
mkdirSync(path.dirname(out), { recursive: true });
writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
console.log(`wrote ${path.relative(ROOT, out)}`);
