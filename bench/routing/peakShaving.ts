// The peak-shaving part of `npm run bench:router`: the discrete-event simulation at full scale
// (simulate.ts: every scenario × policy and the oracle bound), then the loopback run (loopback.ts:
// the real router and edges over simulated GPUs, every policy on the same arrivals, each run
// checked against its simulation), and the headline figures the goals are judged on.
//
// Where a figure exists in both runs, the headline takes the one the goal is about: the 10,000-user
// surge and the 48–64-edge scenarios exist only in the simulation; a 429's response time and a
// killed edge's streams are real only in the loopback run, so those take the worse of the two.
// Importing this file runs nothing.
import { runLoopback } from "./loopback.ts";
import { summaryRows } from "./metrics.ts";
import type { RunSummary } from "./metrics.ts";
import type { PolicyRun, ScenarioRuns } from "./simulate.ts";
import { runSimulations } from "./simulate.ts";

type Loopback = Awaited<ReturnType<typeof runLoopback>>;
type Simulation = Record<string, ScenarioRuns>;

/** The goals the peak-shaving figures are judged on: each a bound and its direction. */
export const PEAK_SHAVING_GOALS = {
  steady85_p99_ttft_ratio_to_oracle: { at_most: 1.15 },
  steady85_p99_ttft_vs_rr: { at_least: 2 },
  steady85_p99_ttft_vs_p2c: { at_least: 1.3 },
  surge_edges_over_capacity: { at_most: 0 },
  surge_lost: { at_most: 0 },
  surge_p99_ttft_ms: { at_most: 3000 },
  surge_shed_ratio_to_bound: { at_most: 1.1 },
  surge_429_p99_ms: { at_most: 50 },
  surge_recovery_s: { at_most: 30 },
  kill_completed_ratio: { at_least: 0.995 },
  kill_slowed_edge_share: { at_most: 0.02 },
  hotspot_max_load_ratio: { at_most: 1.25 },
  hotspot_cache_hit_vs_rr: { at_least: 3 },
  sim_vs_loopback_p99_error: { at_most: 0.2 },
} as const;
export type PeakShavingKey = keyof typeof PEAK_SHAVING_GOALS;

const round = (v: number, digits = 3) => Number(v.toFixed(digits));
const worst = (a: number | undefined, b: number | undefined, higherIsWorse = true) => {
  const values = [a, b].filter((v): v is number => v !== undefined && Number.isFinite(v));
  if (values.length === 0) return Number.NaN;
  return higherIsWorse ? Math.max(...values) : Math.min(...values);
};

/** The headline figures from a simulation and (when it ran) a loopback run. */
export function peakShavingKeys(simulation: Simulation, loopback: Loopback | undefined): Record<PeakShavingKey, number> {
  const sim = (scenario: string, policy: string): PolicyRun => {
    const run = simulation[scenario]?.policies[policy];
    if (run === undefined) throw new Error(`the simulation has no ${scenario} × ${policy} run`);
    return run;
  };
  const loop = (scenario: string, policy: string) =>
    (loopback as unknown as Record<string, Record<string, PolicyRun> | undefined> | undefined)?.[scenario]?.[policy];
  const tideway85 = sim("steady85", "tideway").ttftMs.p99;
  const surge = sim("surge", "tideway");
  const bound = simulation.surge!.fluidShedBound;
  const recovery = surge.recoveryMs;
  const hotspot = sim("hotspot", "tideway");
  return {
    steady85_p99_ttft_ratio_to_oracle: round(tideway85 / sim("steady85", "oracle").ttftMs.p99),
    steady85_p99_ttft_vs_rr: round(sim("steady85", "round-robin").ttftMs.p99 / tideway85),
    steady85_p99_ttft_vs_p2c: round(sim("steady85", "power-of-two").ttftMs.p99 / tideway85),
    surge_edges_over_capacity: worst(surge.overCapacity.edges, loop("surge", "tideway")?.overCapacity.edges),
    surge_lost: worst(surge.lost, loop("surge", "tideway")?.lost),
    surge_p99_ttft_ms: round(surge.interactiveTtftP99Ms, 1),
    surge_shed_ratio_to_bound: bound === 0 ? (surge.shed === 0 ? 1 : Number.POSITIVE_INFINITY) : round(surge.shed / bound),
    surge_429_p99_ms: round(worst(surge.shedResponseMs.p99, loop("surge", "tideway")?.shedResponseMs.p99), 1),
    surge_recovery_s: recovery === null || recovery === undefined ? Number.POSITIVE_INFINITY : round(recovery / 1000, 1),
    kill_completed_ratio: round(
      worst(sim("kill", "tideway").conversationsCompleted, loop("kill", "tideway")?.conversationsCompleted, false),
      4,
    ),
    kill_slowed_edge_share: round(worst(sim("kill", "tideway").slowedEdgeShare, loop("kill", "tideway")?.slowedEdgeShare), 4),
    hotspot_max_load_ratio: round(hotspot.maxOverMeanLoad ?? Number.NaN),
    hotspot_cache_hit_vs_rr: round((hotspot.cacheHitRate ?? 0) / Math.max(1e-9, sim("hotspot", "round-robin").cacheHitRate ?? 0)),
    sim_vs_loopback_p99_error: loopback?.sim_vs_loopback_p99_error ?? Number.NaN,
  };
}

/** Each goal's bound as a number, as router.json's `goals` holds them (the direction is in PEAK_SHAVING_GOALS). */
export function goalValues(): Record<PeakShavingKey, number> {
  return Object.fromEntries(
    Object.entries(PEAK_SHAVING_GOALS).map(([key, goal]: [string, { at_most?: number; at_least?: number }]) => [
      key,
      goal.at_most ?? goal.at_least!,
    ]),
  ) as Record<PeakShavingKey, number>;
}

/** Whether `value` meets the goal of `key`. */
export function meetsGoal(key: PeakShavingKey, value: number): boolean {
  const goal: { at_most?: number; at_least?: number } = PEAK_SHAVING_GOALS[key];
  if (!Number.isFinite(value)) return false;
  return goal.at_most !== undefined ? value <= goal.at_most : value >= goal.at_least!;
}

/** The figures and goals as a markdown table (the README's, and the run's printout). */
export function peakShavingTable(keys: Record<PeakShavingKey, number>): string {
  const lines = ["| figure | result | goal |", "| --- | ---: | ---: |"];
  for (const key of Object.keys(PEAK_SHAVING_GOALS) as PeakShavingKey[]) {
    const goal: { at_most?: number; at_least?: number } = PEAK_SHAVING_GOALS[key];
    const bound = goal.at_most !== undefined ? `≤ ${goal.at_most}` : `≥ ${goal.at_least}`;
    lines.push(`| \`${key}\` | ${keys[key]} | ${bound} ${meetsGoal(key, keys[key]) ? "✓" : "✗"} |`);
  }
  return lines.join("\n");
}

export interface PeakShavingOptions {
  /** The repository (the loopback run starts edges and routers from it). */
  root: string;
  seed?: number;
  /** Skip the loopback run (the simulation alone: a couple of minutes instead of twenty). */
  simulationOnly?: boolean;
  log?: (line: string) => void;
}

/** Runs the simulation and the loopback run, prints their tables and returns what router.json keeps. */
export async function runPeakShaving(options: PeakShavingOptions) {
  const log = options.log ?? ((line: string) => console.log(line));
  const seed = options.seed ?? 1;
  const simStarted = performance.now();
  const simulation = runSimulations({ seed, log: (line) => log(`[simulation] ${line}`) });
  const simulationSeconds = Math.round((performance.now() - simStarted) / 1000);
  const loopback =
    options.simulationOnly === true ? undefined : await runLoopback({ root: options.root, seed, log: (line) => log(`[loopback] ${line}`) });
  const keys = peakShavingKeys(simulation, loopback);
  console.table(summaryRows(simulation, "simulation"));
  if (loopback !== undefined) {
    const asRuns = Object.fromEntries(
      Object.entries(loopback)
        .filter(([, v]) => typeof v === "object" && v !== null && !("duration_s" in v))
        .map(([name, runs]) => [name, { policies: runs as Record<string, RunSummary> }]),
    );
    console.table(summaryRows(asRuns, "loopback"));
  }
  console.log(`\n${peakShavingTable(keys)}\n`);
  return {
    keys,
    goals: goalValues(),
    details: {
      goals: PEAK_SHAVING_GOALS,
      simulation: { seed, wall_s: simulationSeconds, scenarios: simulation },
      loopback: loopback ?? null,
    },
  };
}
