/*
 * Scoring: one edge's challenge results of one epoch → its quality in [0, 1e6] (QUALITY_ONE = 1e6
 * means 1.0) and its faults. Integer arithmetic in parts per million throughout (every division
 * floors), so the same results give the same score on every machine. Also in verifier/README.md.
 *
 *   passRate      = passed / challenges                         (all kinds, audits included)
 *   latencyScore  = from the lower median M of the latency challenges' answer times (ms; a failed
 *                   latency challenge counts with its measured time; one that got no answer has none):
 *                     1 if M ≤ good, 0 if M ≥ bad, (bad − M) / (bad − good) between;
 *                     1 when no latency challenge ran; 0 when they all went unanswered.
 *   capacityScore = min(1, S / minServed), S the lower median of the capacity challenges'
 *                   servedRatio (a capacity challenge with no ratio, e.g. unanswered, counts 0);
 *                   1 when no capacity challenge ran.
 *   quality       = passRate × (0.5 + 0.5 × latencyScore) × capacityScore
 *
 * Faults (FaultKindName, in FaultKind order) and overrides:
 *   - WrongAnswer / AuditFailure: a result carries that fault → quality 0.
 *   - Unresponsive: at least 3 non-audit challenges and every one of them failed → quality 0.
 *   - CapacityShortfall: a capacity challenge served under half its burst (servedRatio < 0.5);
 *     the quality keeps its (low) capacityScore.
 *   - no results at all → quality 0, no fault (nothing was observed).
 * Results with the same id (a job recorded twice) count once: the one with a fault, else a
 * failure, else the pass.
 */
import type { FaultKindName } from "../../lib/protocol/eip712.ts";
import { FAULT_KIND_NAMES } from "../../lib/protocol/eip712.ts";
import type { ChallengeResult } from "../challenges/types.ts";

/** 1.0 in parts per million (the contracts' QUALITY_ONE). */
export const PPM = 1_000_000;

export interface ScoringConfig {
  /** Latency at or below which latencyScore is 1 (ms). Default 1,000. */
  latencyGoodMs?: number;
  /** Latency at or above which latencyScore is 0 (ms). Default 10,000. */
  latencyBadMs?: number;
  /** Served ratio that earns the full capacityScore. Default 0.9. */
  minServed?: number;
  /** Served ratio under which a capacity challenge is a CapacityShortfall fault. Default 0.5. */
  shortfallBelow?: number;
  /** Non-audit challenges needed, all failed, for an Unresponsive fault. Default 3. */
  unresponsiveMin?: number;
}

export const DEFAULT_SCORING = {
  latencyGoodMs: 1_000,
  latencyBadMs: 10_000,
  minServed: 0.9,
  shortfallBelow: 0.5,
  unresponsiveMin: 3,
} as const satisfies Required<ScoringConfig>;

export interface EdgeScore {
  /** In [0, 1e6]: what the edge's epoch leaf carries. */
  quality: bigint;
  /** In [0, 1] (exactly the ppm value / 1e6). */
  passRate: number;
  latencyScore: number;
  capacityScore: number;
  /** Challenges counted (after removing duplicate ids) and passed. */
  challenges: number;
  passed: number;
  /** The median latency the latencyScore came from (ms), if any. */
  medianLatencyMs?: number;
  /** The median servedRatio the capacityScore came from, if any. */
  servedRatio?: number;
  faults: FaultKindName[];
  /** The results that carry a fault (their evidence), in id order. */
  faultResults: ChallengeResult[];
}

/** Lower median of a non-empty list of integers. */
function lowerMedian(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)]!;
}

function ppmOf(fraction: number, what: string): number {
  if (!Number.isFinite(fraction) || fraction < 0) throw new RangeError(`${what} must be a finite non-negative number, got ${fraction}`);
  return Math.round(fraction * PPM);
}

/** Keeps one result per id: a fault over a failure over a pass (order-independent). */
function dedupe(results: readonly ChallengeResult[]): ChallengeResult[] {
  const rank = (r: ChallengeResult) => (r.fault !== undefined ? 2 : r.outcome === "fail" ? 1 : 0);
  const byId = new Map<string, ChallengeResult>();
  for (const r of results) {
    const key = r.id.toLowerCase();
    const kept = byId.get(key);
    if (kept === undefined || rank(r) > rank(kept) || (rank(r) === rank(kept) && JSON.stringify(r) < JSON.stringify(kept)))
      byId.set(key, r);
  }
  return [...byId.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, r]) => r);
}

/**
 * Scores one edge's results of one epoch (see the comment at the top of this file). Pass only
 * that edge's results of that epoch.
 */
export function scoreEdge(results: readonly ChallengeResult[], config: ScoringConfig = {}): EdgeScore {
  const c = { ...DEFAULT_SCORING, ...config };
  if (!(c.latencyBadMs > c.latencyGoodMs) || c.latencyGoodMs < 0)
    throw new RangeError(`latencyBadMs (${c.latencyBadMs}) must exceed latencyGoodMs (${c.latencyGoodMs}) ≥ 0`);
  const minServedPpm = ppmOf(c.minServed, "minServed");
  if (minServedPpm === 0 || minServedPpm > PPM) throw new RangeError(`minServed must be in (0, 1], got ${c.minServed}`);
  const shortfallPpm = ppmOf(c.shortfallBelow, "shortfallBelow");

  const list = dedupe(results);
  const n = list.length;
  const passed = list.filter((r) => r.outcome === "pass").length;
  if (n === 0)
    return { quality: 0n, passRate: 0, latencyScore: 0, capacityScore: 0, challenges: 0, passed: 0, faults: [], faultResults: [] };
  const passPpm = Math.floor((passed * PPM) / n);

  // Latency.
  const latency = list.filter((r) => r.kind === "latency");
  let latencyPpm = PPM;
  let medianLatencyMs: number | undefined;
  if (latency.length > 0) {
    const samples = latency
      .filter((r) => typeof r.latencyMs === "number" && Number.isFinite(r.latencyMs))
      .map((r) => Math.max(0, Math.round(r.latencyMs!)));
    if (samples.length === 0) latencyPpm = 0;
    else {
      medianLatencyMs = lowerMedian(samples);
      const good = Math.round(c.latencyGoodMs);
      const bad = Math.round(c.latencyBadMs);
      latencyPpm = medianLatencyMs <= good ? PPM : medianLatencyMs >= bad ? 0 : Math.floor(((bad - medianLatencyMs) * PPM) / (bad - good));
    }
  }

  // Capacity.
  const capacity = list.filter((r) => r.kind === "capacity");
  let capacityPpm = PPM;
  let servedRatio: number | undefined;
  let shortfall = false;
  if (capacity.length > 0) {
    const ratios = capacity.map((r) => (typeof r.servedRatio === "number" ? Math.min(PPM, ppmOf(r.servedRatio, "servedRatio")) : 0));
    const median = lowerMedian(ratios);
    servedRatio = median / PPM;
    capacityPpm = Math.min(PPM, Math.floor((median * PPM) / minServedPpm));
    shortfall = capacity.some((r) => typeof r.servedRatio === "number" && ppmOf(r.servedRatio, "servedRatio") < shortfallPpm);
  }

  // Faults.
  const found = new Set<FaultKindName>();
  for (const r of list) if (r.fault !== undefined) found.add(r.fault.kind);
  const nonAudit = list.filter((r) => r.kind !== "audit");
  if (nonAudit.length >= c.unresponsiveMin && nonAudit.every((r) => r.outcome === "fail")) found.add("Unresponsive");
  if (shortfall) found.add("CapacityShortfall");
  const faults = FAULT_KIND_NAMES.filter((k) => found.has(k));

  const zeroed = found.has("WrongAnswer") || found.has("AuditFailure") || found.has("Unresponsive");
  const quality = zeroed
    ? 0n
    : (((BigInt(passPpm) * BigInt(PPM / 2 + Math.floor(latencyPpm / 2))) / BigInt(PPM)) * BigInt(capacityPpm)) / BigInt(PPM);

  return {
    quality,
    passRate: passPpm / PPM,
    latencyScore: latencyPpm / PPM,
    capacityScore: capacityPpm / PPM,
    challenges: n,
    passed,
    ...(medianLatencyMs === undefined ? {} : { medianLatencyMs }),
    ...(servedRatio === undefined ? {} : { servedRatio }),
    faults,
    faultResults: list.filter((r) => r.fault !== undefined),
  };
}

/** Scores every edge present in `results` (one epoch's results): edgeId (decimal) → score. */
export function scoreEdges(results: readonly ChallengeResult[], config: ScoringConfig = {}): Map<string, EdgeScore> {
  const byEdge = new Map<string, ChallengeResult[]>();
  for (const r of results) {
    const list = byEdge.get(r.edgeId);
    if (list === undefined) byEdge.set(r.edgeId, [r]);
    else list.push(r);
  }
  const out = new Map<string, EdgeScore>();
  for (const id of [...byEdge.keys()].sort((a, b) => (BigInt(a) < BigInt(b) ? -1 : BigInt(a) > BigInt(b) ? 1 : 0)))
    out.set(id, scoreEdge(byEdge.get(id)!, config));
  return out;
}
