// Verifier benchmark: `bash scripts/with-node22.sh node bench/verifier.ts` (plain Node, one thread,
// no Hardhat, no chain). Measures what the quorum attestation costs a verifier and writes
// bench/results/verifier.json (merged into the keys already there):
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
//
// The measuring functions are exported (importing this file runs nothing) so that other parts of
// the benchmark can be added to the same script and JSON file.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { availableParallelism, cpus } from "node:os";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";

import { recoverTypedDataAddress } from "viem";
import type { Address, Hex, TypedDataDomain } from "viem";

import { verifierDomain } from "../lib/protocol/eip712.ts";
import { addressOfPrivateKey } from "../lib/protocol/fastTypedData.ts";
import { QUALITY_ONE, syntheticResult } from "../lib/protocol/merkle.ts";
import { EPOCH_OBSERVATION_TYPES } from "../lib/protocol/verifierMessages.ts";
import type { EdgeObservation, EpochObservation } from "../lib/protocol/verifierMessages.ts";
import { observationCodec, signObservation } from "../verifier/consensus/observation.ts";
import type { SignedObservation } from "../verifier/consensus/observation.ts";
import { buildReport, signAttestation } from "../verifier/consensus/report.ts";

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
    const message: EpochObservation = { epoch: BigInt(i), resultsHash: `0x${(BigInt(i) * 0x9e3779b97f4a7c15n + 1n).toString(16).padStart(64, "0")}`, count: BigInt(1 + i) };
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
    const recovered = await recoverTypedDataAddress({ domain: BENCH_DOMAIN, types: EPOCH_OBSERVATION_TYPES, primaryType: "EpochObservation", message: { ...s.message }, signature: s.signature });
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
export function syntheticObservations(epoch: bigint, n: number, verifiers = 3): { observations: SignedObservation[]; activeSigners: Address[] } {
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
export function timeAttestation(epoch: bigint, observations: readonly SignedObservation[], activeSigners: readonly Address[], quorum = 2): { ms: number; leaves: number } {
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
  writeFileSync(RESULTS_FILE, JSON.stringify(merged, null, 2) + "\n");
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
    attestation_ms_100k: { value: at100k.medianMs, goal: "≤ 3000", note: `median of [${at100k.runsMs.join(", ")}], ${at100k.leaves} leaves` },
  });
  return writeResults(results);
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  await runVerifierBench();
  console.log(`wrote ${fileURLToPath(RESULTS_FILE)}`);
}
