// What one run of a scenario (a policy in the simulation, or the oracle) measured, and the
// summary the benchmark reports. Latencies from the client's side: time to first token (TTFT)
// from its request to the first token reaching it, inter-token latency (ITL) between tokens
// reaching it, end to end from its request to the last token. Percentiles with hdr-histogram.
//
// Definitions:
// - goodput: share of ALL requests (shed ones included) that completed with TTFT ≤ 2 s and a
//   mean time per output token after the first (TPOT) ≤ 100 ms, DistServe's SLO attainment;
// - lost: admitted (not answered 429) and never completed — an edge died and no other edge took
//   the stream on, or the client gave up waiting for its first token;
// - over capacity: requests that waited in an edge's own queue (the router sent more than the
//   edge serves at once), and how many edges that ever happened to;
// - recovery (surge): from the surge's end until the rolling p99 TTFT of interactive requests
//   (those that arrived in the last `ROLLING_MS`) is back within 1.2× its value before the surge;
// - load balance (hotspot): each edge's mean occupancy (requests running per slot, sampled at
//   every load report), the highest over the mean.
import { build } from "hdr-histogram-js";
import type { Histogram } from "hdr-histogram-js";

import type { Arrival, Scenario } from "./workload.ts";

export const GOODPUT_TTFT_MS = 2000;
export const GOODPUT_TPOT_MS = 100;
export const ROLLING_MS = 5000;
export const RECOVERY_FACTOR = 1.2;

export interface RequestRecord {
  arrival: Arrival;
  outcome: "completed" | "shed" | "lost";
  ttftMs?: number;
  e2eMs?: number;
  /** Mean ms per output token after the first. */
  tpotMs?: number;
  /** Time from the request to its 429, ms. */
  shedAfterMs?: number;
  /** The edge that served its first token. */
  edge?: string;
}

export interface Percentiles {
  p50: number;
  p99: number;
  p999: number;
}

export interface RunSummary {
  requests: number;
  completed: number;
  shed: number;
  shedByClass: { interactive: number; batch: number };
  lost: number;
  ttftMs: Percentiles;
  interactiveTtftP99Ms: number;
  itlP99Ms: number;
  e2eP99Ms: number;
  goodput: number;
  /** Time from request to 429: all, and interactive requests' p99. */
  shedResponseMs: { p50: number; p99: number; interactiveP99: number };
  overCapacity: { requests: number; edges: number };
  /** Surge only: ms, or null when it never recovered in the run. */
  recoveryMs?: number | null;
  /** Hotspot: highest edge occupancy over the mean, and the edges' prefix-cache hit rate. */
  maxOverMeanLoad?: number;
  cacheHitRate?: number;
  /** Kill: share of conversations whose every turn completed; share of dispatches to the slowed edge from 30 s after it slowed. */
  conversationsCompleted?: number;
  slowedEdgeShare?: number;
}

/** A latency histogram in microseconds (3 significant digits). */
export function latencyHistogram(): Histogram {
  return build({ numberOfSignificantValueDigits: 3 });
}

export const recordMs = (h: Histogram, ms: number, count = 1) => h.recordValueWithCount(Math.max(1, Math.round(ms * 1000)), count);
const at = (h: Histogram, percentile: number) => (h.totalCount === 0 ? 0 : h.getValueAtPercentile(percentile) / 1000);

function percentiles(values: Iterable<number>): Percentiles {
  const h = latencyHistogram();
  for (const v of values) recordMs(h, v);
  const out = { p50: at(h, 50), p99: at(h, 99), p999: at(h, 99.9) };
  h.destroy();
  return out;
}

function p99(values: number[]): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(0.99 * sorted.length) - 1)];
}

/** Surge recovery: ms after `endMs` until the rolling p99 TTFT is within RECOVERY_FACTOR of before the surge. */
export function recoveryMs(records: readonly RequestRecord[], startMs: number, endMs: number, untilMs: number): number | null {
  const interactive = records.filter((r) => r.outcome === "completed" && r.arrival.priority === "interactive");
  const before = p99(interactive.filter((r) => r.arrival.at >= startMs - 30_000 && r.arrival.at < startMs).map((r) => r.ttftMs as number));
  const after = interactive.filter((r) => r.arrival.at >= endMs - ROLLING_MS);
  for (let t = endMs; t <= untilMs; t += 1000) {
    const window = after.filter((r) => r.arrival.at >= t - ROLLING_MS && r.arrival.at < t).map((r) => r.ttftMs as number);
    if (window.length > 0 && p99(window) <= RECOVERY_FACTOR * before) return t - endMs;
  }
  return null;
}

export interface RunExtras {
  itl: Histogram;
  overCapacityRequests: number;
  overCapacityEdges: number;
  occupancy?: number[];
  cache?: { lookups: number; hits: number };
  slowedEdgeShare?: number;
}

export function summarize(scenario: Scenario, records: readonly RequestRecord[], extras: RunExtras): RunSummary {
  const completed = records.filter((r) => r.outcome === "completed");
  const shed = records.filter((r) => r.outcome === "shed");
  const good = completed.filter((r) => (r.ttftMs as number) <= GOODPUT_TTFT_MS && (r.tpotMs ?? 0) <= GOODPUT_TPOT_MS).length;
  const shedTimes = percentiles(shed.map((r) => r.shedAfterMs ?? 0));
  const summary: RunSummary = {
    requests: records.length,
    completed: completed.length,
    shed: shed.length,
    shedByClass: {
      interactive: shed.filter((r) => r.arrival.priority === "interactive").length,
      batch: shed.filter((r) => r.arrival.priority === "batch").length,
    },
    lost: records.length - completed.length - shed.length,
    ttftMs: percentiles(completed.map((r) => r.ttftMs as number)),
    interactiveTtftP99Ms: percentiles(completed.filter((r) => r.arrival.priority === "interactive").map((r) => r.ttftMs as number)).p99,
    itlP99Ms: at(extras.itl, 99),
    e2eP99Ms: percentiles(completed.map((r) => r.e2eMs as number)).p99,
    goodput: records.length === 0 ? 0 : good / records.length,
    shedResponseMs: {
      p50: shedTimes.p50,
      p99: shedTimes.p99,
      interactiveP99: percentiles(shed.filter((r) => r.arrival.priority === "interactive").map((r) => r.shedAfterMs ?? 0)).p99,
    },
    overCapacity: { requests: extras.overCapacityRequests, edges: extras.overCapacityEdges },
  };
  if (scenario.surge !== undefined)
    summary.recoveryMs = recoveryMs(records, scenario.surge.startMs, scenario.surge.endMs, scenario.durationMs);
  if (scenario.prefixes !== undefined && extras.occupancy !== undefined) {
    const mean = extras.occupancy.reduce((a, b) => a + b, 0) / extras.occupancy.length;
    summary.maxOverMeanLoad = mean === 0 ? 0 : Math.max(...extras.occupancy) / mean;
  }
  if (extras.cache !== undefined) summary.cacheHitRate = extras.cache.lookups === 0 ? 0 : extras.cache.hits / extras.cache.lookups;
  if (scenario.conversations !== undefined) {
    const failed = new Set<string>();
    const all = new Set<string>();
    for (const r of records) {
      all.add(r.arrival.conversation);
      if (r.outcome !== "completed") failed.add(r.arrival.conversation);
    }
    summary.conversationsCompleted = all.size === 0 ? 0 : (all.size - failed.size) / all.size;
  }
  if (extras.slowedEdgeShare !== undefined) summary.slowedEdgeShare = extras.slowedEdgeShare;
  return summary;
}

/** One printed row per scenario × policy: the figures of a run, rounded for a table. */
export function summaryRows(
  runs: Record<string, { policies: Record<string, RunSummary> }>,
  source?: string,
): Array<Record<string, string | number>> {
  const ms = (v: number | null | undefined) => (v === null || v === undefined ? "-" : String(Math.round(v)));
  const rows: Array<Record<string, string | number>> = [];
  for (const [scenario, run] of Object.entries(runs))
    for (const [policy, r] of Object.entries(run.policies))
      rows.push({
        ...(source === undefined ? {} : { source }),
        scenario,
        policy,
        "ttft p50": ms(r.ttftMs.p50),
        "ttft p99": ms(r.ttftMs.p99),
        "ttft p99.9": ms(r.ttftMs.p999),
        "itl p99": ms(r.itlP99Ms),
        "e2e p99": ms(r.e2eP99Ms),
        goodput: r.goodput.toFixed(3),
        shed: r.shed,
        lost: r.lost,
        "over cap": `${r.overCapacity.requests}/${r.overCapacity.edges}`,
        "429 p99": ms(r.shedResponseMs.p99),
        recovery: ms(r.recoveryMs),
        "max/mean": r.maxOverMeanLoad?.toFixed(2) ?? "-",
        "cache hit": r.cacheHitRate?.toFixed(3) ?? "-",
        "conv done": r.conversationsCompleted?.toFixed(4) ?? "-",
        "slowed share": r.slowedEdgeShare?.toFixed(4) ?? "-",
      });
  return rows;
}
