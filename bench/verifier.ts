// Verifier benchmark: `npm run bench:verifier` (= `bash scripts/with-node22.sh hardhat run
// bench/verifier.ts`). Prints a table and writes bench/results/verifier.json (merged into the keys
// already there):
//
// - sig_verifications_per_s: EIP-712 EpochObservation signatures recovered (OpenZeppelin ECDSA
//   rules) and compared with the claimed signer per second, on one core, with the native codec
//   (lib/protocol/fastTypedData.ts). viem's recoverTypedDataAddress is measured too, on fewer
//   samples, for comparison (viem_sig_verifications_per_s).
// - attestation_ms_10k / attestation_ms_100k: for N synthetic edges and 3 verifiers (quorum 2),
//   each signing an observation of all N edges (slightly different qualities, one of them missing
//   a few edges), the wall time to verify the 3 observations (results hash + signature), compute
//   the per-edge medians, build the Merkle tree and sign the EpochAttestation: the leader's whole
//   report, as a peer also recomputes it before signing. Median of a few runs. Goal ≤ 3,000 ms
//   for 100k.
// - challenges_per_s (and challenges_per_s_default_inference, challenges_per_s_tiny_model): GPoW
//   challenges issued and verified per second by ONE verifier process (BullMQ queue and worker,
//   the service's challenge runner) against local edge processes, with a CPU breakdown by process.
//   See bench/challenges.ts for the set-up. Needs `hardhat run` (the in-process chain); under plain
//   Node (`node bench/verifier.ts`) only the first two parts run.
//
// The measuring functions are exported (importing this file runs nothing).
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { availableParallelism, cpus } from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";

import { recoverTypedDataAddress } from "viem";
import type { Address, Hex, TypedDataDomain } from "viem";

import { verifierDomain } from "../lib/protocol/eip712.ts";
import { addressOfPrivateKey } from "../lib/protocol/fastTypedData.ts";
import { QUALITY_ONE } from "../lib/protocol/merkle.ts";
import { syntheticResult } from "./fixtures.ts";
import { EPOCH_OBSERVATION_TYPES } from "../lib/protocol/verifierMessages.ts";
import type { EdgeObservation, EpochObservation } from "../lib/protocol/verifierMessages.ts";
import { observationCodec, signObservation } from "../verifier/consensus/observation.ts";
import type { SignedObservation } from "../verifier/consensus/observation.ts";
import { buildReport, signAttestation } from "../verifier/consensus/report.ts";
import { DEFAULT_MODEL_CONFIG } from "../lib/reference-model/index.ts";
import type { RowResult } from "./challenges.ts";

/** Where the results go. */
export const RESULTS_FILE = new URL("./results/verifier.json", import.meta.url);

/** A fixed VerifierSet domain (any chain id and address: the costs do not depend on them). */
export const BENCH_DOMAIN: TypedDataDomain = verifierDomain(31337n, "0x5FbDB2315678afecb367f032d93F642f64180aa3");

/** Deterministic distinct private keys (1 + i, shifted off the smallest scalars). */
export function benchKey(i: number): Hex {
  return `0x${(0x1000n + BigInt(i)).toString(16).padStart(64, "0")}`;
}

/** `count` distinct signed EpochObservation messages (different keys, epochs and hashes). */
function signedMessages(count: number): { message: EpochObservation; signer: Address; signature: Hex }[] {
  const codec = observationCodec(BENCH_DOMAIN);
  return Array.from({ length: count }, (_, i) => {
    const key = benchKey(i % 16);
    const message: EpochObservation = {
      epoch: BigInt(i),
      resultsHash: `0x${(BigInt(i) * 0x9e3779b97f4a7c15n + 1n).toString(16).padStart(64, "0")}`,
      count: BigInt(1 + i),
    };
    return { message, signer: addressOfPrivateKey(key), signature: codec.sign(key, message) };
  });
}

/**
 * EpochObservation signatures recovered and checked per second with the native codec, on this
 * thread, for about `seconds` seconds (after a short warm-up).
 */
export function measureSigVerifications(seconds = 2): { perSecond: number; checked: number } {
  const codec = observationCodec(BENCH_DOMAIN);
  const samples = signedMessages(256);
  const check = (k: number): void => {
    const s = samples[k % samples.length];
    if (codec.recover(s.message, s.signature) !== s.signer) throw new Error("a benchmark signature did not recover its signer");
  };
  for (let k = 0; k < 500; k++) check(k);
  let checked = 0;
  const start = performance.now();
  const until = start + seconds * 1000;
  while (performance.now() < until) {
    for (let k = 0; k < 256; k++) check(checked + k);
    checked += 256;
  }
  return { perSecond: Math.round(checked / ((performance.now() - start) / 1000)), checked };
}

/** The same with viem's recoverTypedDataAddress (pure JS), on `count` signatures. */
export async function measureViemSigVerifications(count = 300): Promise<{ perSecond: number; checked: number }> {
  const samples = signedMessages(Math.min(count, 256));
  const check = async (k: number): Promise<void> => {
    const s = samples[k % samples.length];
    const recovered = await recoverTypedDataAddress({
      domain: BENCH_DOMAIN,
      types: EPOCH_OBSERVATION_TYPES,
      primaryType: "EpochObservation",
      message: { ...s.message },
      signature: s.signature,
    });
    if (recovered !== s.signer) throw new Error("a benchmark signature did not recover its signer (viem)");
  };
  for (let k = 0; k < 20; k++) await check(k);
  const start = performance.now();
  for (let k = 0; k < count; k++) await check(k);
  return { perSecond: Math.round(count / ((performance.now() - start) / 1000)), checked: count };
}

/**
 * The observations of 3 verifiers over `n` synthetic edges (ids 1..n, stakes and qualities as
 * {syntheticResult}): verifier j reports quality + 7j (capped at QUALITY_ONE), and verifier 2
 * misses every 50th edge. Signed with {benchKey}(0..2).
 */
export function syntheticObservations(
  epoch: bigint,
  n: number,
  verifiers = 3,
): { observations: SignedObservation[]; activeSigners: Address[] } {
  const observations: SignedObservation[] = [];
  for (let j = 0; j < verifiers; j++) {
    const results: EdgeObservation[] = [];
    for (let i = 0; i < n; i++) {
      if (j === 2 && i % 50 === 0) continue;
      const r = syntheticResult(i);
      const q = r.quality + 7n * BigInt(j);
      results.push({ edgeId: r.edgeId, stake: r.stake, quality: q > QUALITY_ONE ? QUALITY_ONE : q });
    }
    observations.push(signObservation(benchKey(j), BENCH_DOMAIN, epoch, results));
  }
  return { observations, activeSigners: observations.map((o) => o.signer) };
}

/** One leader's report for `observations`: verify, medians, tree, then sign the attestation. Returns the elapsed ms. */
export function timeAttestation(
  epoch: bigint,
  observations: readonly SignedObservation[],
  activeSigners: readonly Address[],
  quorum = 2,
): { ms: number; leaves: number } {
  const start = performance.now();
  const report = buildReport({ epoch, observations, quorum, activeSigners, domain: BENCH_DOMAIN });
  if (report.attestation === null) throw new Error("the synthetic epoch has no weight");
  signAttestation(benchKey(0), BENCH_DOMAIN, report.attestation);
  return { ms: performance.now() - start, leaves: report.results.length };
}

/** Median wall time (ms) of `runs` reports over `n` synthetic edges (observations signed beforehand, not timed). */
export function measureAttestation(n: number, runs = 5): { medianMs: number; runsMs: number[]; leaves: number } {
  const epoch = 7n;
  const { observations, activeSigners } = syntheticObservations(epoch, n);
  timeAttestation(epoch, observations, activeSigners); // warm-up
  const runsMs: number[] = [];
  let leaves = 0;
  for (let r = 0; r < runs; r++) {
    const t = timeAttestation(epoch, observations, activeSigners);
    runsMs.push(Math.round(t.ms));
    leaves = t.leaves;
  }
  const sorted = [...runsMs].sort((a, b) => a - b);
  return { medianMs: sorted[(sorted.length - 1) >> 1], runsMs, leaves };
}

/** Merges `results` into bench/results/verifier.json (keeping the keys other parts wrote), with machine info. */
export function writeResults(results: Record<string, unknown>): Record<string, unknown> {
  const previous = existsSync(RESULTS_FILE) ? (JSON.parse(readFileSync(RESULTS_FILE, "utf8")) as Record<string, unknown>) : {};
  const merged = {
    ...previous,
    ...results,
    machine: { cores: availableParallelism(), cpu: cpus()[0]?.model ?? "unknown", node: process.version },
    node: process.version,
  };
  mkdirSync(new URL("./results/", import.meta.url), { recursive: true });
  writeFileSync(RESULTS_FILE, `${JSON.stringify(merged, null, 2)}\n`);
  return merged;
}

/** The signature and attestation parts: measures, prints a table, writes the JSON. */
export async function runVerifierBench(): Promise<Record<string, unknown>> {
  const sig = measureSigVerifications();
  const viem = await measureViemSigVerifications();
  const at10k = measureAttestation(10_000, 5);
  const at100k = measureAttestation(100_000, 3);
  const results = {
    sig_verifications_per_s: sig.perSecond,
    viem_sig_verifications_per_s: viem.perSecond,
    attestation_ms_10k: at10k.medianMs,
    attestation_ms_100k: at100k.medianMs,
    attestation_runs_ms_10k: at10k.runsMs,
    attestation_runs_ms_100k: at100k.runsMs,
    goal_sig_verifications_per_s: 10_000,
    goal_attestation_ms_100k: 3_000,
  };
  console.table({
    sig_verifications_per_s: { value: sig.perSecond, goal: "≥ 10000", note: `native secp256k1, one core, ${sig.checked} checked` },
    viem_sig_verifications_per_s: { value: viem.perSecond, goal: "", note: `viem recoverTypedDataAddress, ${viem.checked} checked` },
    attestation_ms_10k: { value: at10k.medianMs, goal: "", note: `median of [${at10k.runsMs.join(", ")}], ${at10k.leaves} leaves` },
    attestation_ms_100k: {
      value: at100k.medianMs,
      goal: "≤ 3000",
      note: `median of [${at100k.runsMs.join(", ")}], ${at100k.leaves} leaves`,
    },
  });
  return writeResults(results);
}

/** Whether Hardhat runs this script (`hardhat run bench/verifier.ts`): the challenge part needs its network. */
function underHardhat(): boolean {
  return process.argv[1] !== undefined && /(^|[\\/])hardhat(\.[cm]?js)?$/.test(process.argv[1]) && process.argv[2] === "run";
}

/** The challenge part: measures (bench/challenges.ts), prints a table, merges into the JSON. */
export async function runChallengeBench(): Promise<Record<string, unknown>> {
  const { measureChallenges } = await import("./challenges.ts");
  const bench = await measureChallenges();
  const shapeOf = (r: RowResult) => ({ ...(r.row.shape ?? DEFAULT_MODEL_CONFIG) });
  const sum = (values: Record<string, number>) =>
    Number(
      Object.values(values)
        .filter((v) => Number.isFinite(v))
        .reduce((a, b) => a + b, 0)
        .toFixed(3),
    );
  const rowJson = (r: RowResult) => ({
    challenges_per_s: r.challengesPerSecond,
    challenge_kind: r.row.kind,
    model_shape: shapeOf(r),
    runs_per_s: r.runs.map((x) => x.passPerSecond),
    // Of the median run's window:
    passed: r.medianRun.passed,
    passed_recomputed: r.medianRun.recomputed,
    failed_or_errors_all_runs: r.runs.reduce((n, x) => n + x.failed + x.errors, 0),
    latency_ms_p50: r.medianRun.latencyMs.p50,
    latency_ms_p99: r.medianRun.latencyMs.p99,
    cpu_ms_per_challenge: r.medianRun.cpuMsPerChallenge,
    cpu_ms_per_challenge_all: sum(r.medianRun.cpuMsPerChallenge),
    // What one verifier process would do with a core to itself (edges elsewhere): 1000 / its CPU ms per challenge.
    verifier_bound_per_s: Math.round(1000 / r.medianRun.cpuMsPerChallenge.verifier!),
    cores_used: r.medianRun.coresUsed,
    other_processes_cores: r.medianRun.otherCores,
    machine_busy: r.medianRun.machineBusy,
    limited_by:
      r.medianRun.machineBusy >= 0.9
        ? `CPU: the machine's ${bench.cores} cores were ${Math.round(100 * r.medianRun.machineBusy)}% busy (${r.medianRun.otherCores} of them with other processes); ` +
          `a passed challenge cost ${sum(r.medianRun.cpuMsPerChallenge)} ms of CPU in all (verifier ${r.medianRun.cpuMsPerChallenge.verifier} ms, all edges ` +
          `${Number(
            Object.entries(r.medianRun.cpuMsPerChallenge)
              .filter(([k]) => k.startsWith("edge"))
              .reduce((a, [, v]) => a + v, 0)
              .toFixed(3),
          )} ms, redis ${r.medianRun.cpuMsPerChallenge.redis} ms)`
        : `not the machine's CPU (${Math.round(100 * r.medianRun.machineBusy)}% busy): a serial stage (the verifier's one recompute thread, an edge's model thread) or the concurrency (${bench.concurrency})`,
  });
  const headline = bench.rows.find((r) => r.row.key === "challenges_per_s");
  const results: Record<string, unknown> = {
    ...Object.fromEntries(bench.rows.map((r) => [r.row.key, r.challengesPerSecond])),
    ...(headline === undefined ? {} : { challenge_kind: headline.row.kind, model_shape: shapeOf(headline) }),
    goal_challenges_per_s: 2_000,
    edges: bench.edges,
    concurrency: bench.concurrency,
    cores: bench.cores,
    challenge_runs: bench.runs,
    challenge_window_s: bench.windowSeconds,
    challenge_warmup_s: bench.warmupSeconds,
    challenge_setup:
      `one verifier process (BullMQ Queue + Worker, concurrency ${bench.concurrency}; the service's createChallengeRunner: ChallengePayer vouchers in Redis, ` +
      `1 recompute thread, receipt checks; results recorded with createVerifierState.recordResult) against ${bench.edges} edge processes (node edge/main.ts, ` +
      `reference backend on 1 worker thread each, payment required, receipts signed natively), one redis-server (AOF everysec), and the Hardhat chain ` +
      `in the benchmark's own process; all on ${bench.cores} cores shared with whatever else runs on the machine (other_processes_cores). ` +
      `Median of ${bench.runs} runs, each a fresh verifier process: ${bench.warmupSeconds} s of warm-up, then a ${bench.windowSeconds} s window counting jobs completed with a pass.`,
    challenge_rows: Object.fromEntries(bench.rows.map((r) => [r.row.name, rowJson(r)])),
  };
  console.log(`\nchallenges: ${results.challenge_setup as string}`);
  console.table(
    Object.fromEntries(
      bench.rows.map((r) => {
        const j = rowJson(r);
        return [
          r.row.key,
          {
            "passed/s": j.challenges_per_s,
            runs: j.runs_per_s.join(", "),
            kind: j.challenge_kind,
            model: `hidden ${j.model_shape.hidden}, layers ${j.model_shape.layers}`,
            "p50 ms": j.latency_ms_p50,
            "verifier CPU ms": j.cpu_ms_per_challenge.verifier,
            "edges CPU ms": Number(
              Object.entries(j.cpu_ms_per_challenge)
                .filter(([k]) => k.startsWith("edge"))
                .reduce((a, [, v]) => a + v, 0)
                .toFixed(3),
            ),
            "redis CPU ms": j.cpu_ms_per_challenge.redis,
            "verifier-bound/s": j.verifier_bound_per_s,
            "other load (cores)": j.other_processes_cores,
          },
        ];
      }),
    ),
  );
  return writeResults(results);
}

/** One table of every figure in the JSON, with its goal. */
export function printSummary(results: Record<string, unknown>): void {
  const rows: Record<string, { value: unknown; goal: string }> = {};
  const add = (key: string, goal = "") => {
    if (results[key] !== undefined) rows[key] = { value: results[key], goal };
  };
  add("sig_verifications_per_s", "≥ 10000");
  add("viem_sig_verifications_per_s");
  add("attestation_ms_10k");
  add("attestation_ms_100k", "≤ 3000");
  add(
    "challenges_per_s",
    `≥ 2000 (${String(results.challenge_kind)}, hidden ${(results.model_shape as { hidden?: number } | undefined)?.hidden}, layers ${(results.model_shape as { layers?: number } | undefined)?.layers})`,
  );
  add("challenges_per_s_default_inference");
  add("challenges_per_s_tiny_model");
  add("edges");
  add("concurrency");
  add("cores");
  console.log("\nverifier benchmark (bench/results/verifier.json):");
  console.table(rows);
}

if (process.argv.slice(1).some((a) => path.resolve(a) === fileURLToPath(import.meta.url))) {
  // BENCH_VERIFIER_PARTS=sig,challenges (default: both) runs only some parts.
  const parts = new Set((process.env.BENCH_VERIFIER_PARTS ?? "sig,challenges").split(",").map((p) => p.trim()));
  if (parts.has("sig")) await runVerifierBench();
  if (parts.has("challenges") && underHardhat()) await runChallengeBench();
  else if (parts.has("challenges"))
    console.log(
      "challenges_per_s not measured: it needs the in-process chain, run `npm run bench:verifier` (hardhat run bench/verifier.ts)",
    );
  printSummary(JSON.parse(readFileSync(RESULTS_FILE, "utf8")) as Record<string, unknown>);
  console.log(`wrote ${fileURLToPath(RESULTS_FILE)}`);
}
