// `npm run bench:edge`: what payment checking costs an edge. Starts an edge (the operator's
// command, `node edge/main.ts`, as a child process) with the built-in reference backend on
// loopback, against the protocol deployed on the in-process Hardhat network, and drives it with
// autocannon (64 connections, a short completion), with payment (a fresh cumulative voucher per
// request, as a dApp gateway sends them) and without, alternating, three rounds each. Prints a
// table and writes bench/results/edge.json. BENCH_EDGE_SECONDS, BENCH_EDGE_ROUNDS change the
// run; BENCH_EDGE_PROF=1 writes the edge's CPU profiles to /tmp/edgeprof.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { availableParallelism, cpus } from "node:os";
import path from "node:path";

import autocannon from "autocannon";
import { network } from "hardhat";
import secp256k1 from "secp256k1";
import { hexToBytes, toHex } from "viem";
import type { Hex } from "viem";

import { createVoucherVerifier } from "../lib/protocol/fastVoucher.ts";
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
  await autocannon({ url, connections: CONNECTIONS, duration: WARMUP_SECONDS, requests: [request] });
  const result = await autocannon({ url, connections: CONNECTIONS, duration: DURATION_SECONDS, requests: [request] });
  return {
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    requests: result.requests.total,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
  };
}

const conn = await network.create();
const bed = await deployMarketTestbed(conn);
const bridge = await startRpcBridge(conn.provider);
const edge = bed.edges[0]!;
const cost = BigInt(countPromptTokens(MESSAGES)) * INPUT_PRICE + BigInt(MAX_TOKENS) * OUTPUT_PRICE;
// The two modes alternate, ROUNDS times each, and each figure is the median of its rounds: on a
// small shared machine one run against the next moves by several percent on its own, more than
// the effect measured here.
const ROUNDS = Number(process.env.BENCH_EDGE_ROUNDS ?? 3);
const rounds: Record<"paid" | "unpaid", Run[]> = { paid: [], unpaid: [] };
try {
  for (let round = 1; round <= ROUNDS; round++) {
    for (const mode of ["unpaid", "paid"] as const) {
      const config = edgeConfigFor(bed.addresses, edge.edgeId, bridge.url, {
        payment: { required: mode === "paid", minVoucherLifetimeSeconds: 60, redeemIntervalSeconds: 3600 },
        limits: { maxConcurrent: 64, maxQueue: 1024, queueTimeoutMs: 60_000, bodyLimitBytes: 65_536 },
        log: { level: "info" }, // the "edge serving" line says where it listens; requests are not logged
      });
      const file = path.join(config.dataDir, "edge.json");
      writeFileSync(file, JSON.stringify(config));
      const { child, url } = await startEdgeProcess(file, edge.privateKey);
      let run: Run;
      try {
        // Generous: the edge cannot serve more than a few thousand short completions a second here.
        const vouchers = mode === "paid" ? presignVouchers(bed, edge.edgeId, 5_000 * (WARMUP_SECONDS + DURATION_SECONDS), cost) : undefined;
        run = await Promise.race([drive(url, vouchers), diesWith(child)]);
      } finally {
        await stop(child);
      }
      if (run.non2xx > 0 || run.errors > 0) {
        throw new Error(
          `${mode}: ${run.non2xx} non-2xx answers, ${run.errors} errors (${run.timeouts} timeouts); the benchmark only counts served requests`,
        );
      }
      console.log(`round ${round}/${ROUNDS} ${mode}: ${Math.round(run.rps)} req/s, p50 ${run.p50} ms, p99 ${run.p99} ms`);
      rounds[mode].push(run);
    }
  }
} finally {
  await bridge.close();
}

const median = (values: number[]) => {
  const v = [...values].sort((a, b) => a - b);
  return v.length % 2 === 1 ? v[(v.length - 1) / 2]! : (v[v.length / 2 - 1]! + v[v.length / 2]!) / 2;
};
const summary = (mode: "paid" | "unpaid") => ({
  rps: median(rounds[mode].map((r) => r.rps)),
  p50: median(rounds[mode].map((r) => r.p50)),
  p99: median(rounds[mode].map((r) => r.p99)),
  requests: rounds[mode].reduce((sum, r) => sum + r.requests, 0),
});
const runs = { paid: summary("paid"), unpaid: summary("unpaid") };
const overhead = (100 * (runs.paid.p50 - runs.unpaid.p50)) / runs.unpaid.p50;
const result = {
  rps_paid: Math.round(runs.paid.rps),
  rps_unpaid: Math.round(runs.unpaid.rps),
  p50_ms_paid: runs.paid.p50,
  p50_ms_unpaid: runs.unpaid.p50,
  p99_ms_paid: runs.paid.p99,
  p99_ms_unpaid: runs.unpaid.p99,
  payment_overhead_p50_percent: Number(overhead.toFixed(2)),
  goal_payment_overhead_p50_percent: 5,
  rounds: ROUNDS,
  per_round: {
    paid: rounds.paid.map((r) => ({ rps: Math.round(r.rps), p50_ms: r.p50, p99_ms: r.p99 })),
    unpaid: rounds.unpaid.map((r) => ({ rps: Math.round(r.rps), p50_ms: r.p50, p99_ms: r.p99 })),
  },
  workload: {
    connections: CONNECTIONS,
    duration_s: DURATION_SECONDS,
    warmup_s: WARMUP_SECONDS,
    max_tokens: MAX_TOKENS,
    prompt_tokens: countPromptTokens(MESSAGES),
    backend: "reference (default size, 1 worker thread per spare core)",
  },
  machine: { cores: availableParallelism(), cpu: cpus()[0]?.model ?? "unknown", node: process.version },
};

console.log(
  "\nedge: 64 connections, short completion (%d prompt + %d completion tokens), median of %d alternating rounds\n",
  result.workload.prompt_tokens,
  MAX_TOKENS,
  ROUNDS,
);
console.log("| run | req/s | p50 ms | p99 ms | requests (all rounds) |");
console.log("| --- | ---: | ---: | ---: | ---: |");
for (const mode of ["unpaid", "paid"] as const) {
  console.log(`| ${mode} | ${Math.round(runs[mode].rps)} | ${runs[mode].p50} | ${runs[mode].p99} | ${runs[mode].requests} |`);
}
console.log(`\npayment checking: ${overhead.toFixed(2)}% of p50 (goal ≤ 5%) ${overhead <= 5 ? "✓" : "✗"}`);
const out = path.join(ROOT, "bench/results/edge.json");
mkdirSync(path.dirname(out), { recursive: true });
writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
console.log(`wrote ${path.relative(ROOT, out)}`);
