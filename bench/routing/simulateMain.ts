// Runs the routing simulation over every scenario and policy plus the oracle, prints a table and
// writes bench/results/router-sim.json: `node bench/routing/simulateMain.ts` (Node 22).
// BENCH_SIM_SCALE shrinks edges and rates together (default 1), BENCH_SIM_SEED picks the arrivals,
// BENCH_SIM_SCENARIOS and BENCH_SIM_POLICIES (comma-separated) run only some (and write nothing).
import { writeFileSync } from "node:fs";
import path from "node:path";

import { runSimulations } from "./simulate.ts";
import { SCENARIO_NAMES, type ScenarioName } from "./workload.ts";

const ROOT = path.resolve(import.meta.dirname, "../..");
const scale = Number(process.env.BENCH_SIM_SCALE ?? 1);
const seed = Number(process.env.BENCH_SIM_SEED ?? 1);
const startedAt = performance.now();
const list = (name: string) => process.env[name]?.split(",").map((s) => s.trim());
const scenarios = list("BENCH_SIM_SCENARIOS");
const unknown = scenarios?.filter((s) => !(SCENARIO_NAMES as readonly string[]).includes(s)) ?? [];
if (unknown.length > 0) throw new Error(`unknown scenario ${unknown.join(", ")} in BENCH_SIM_SCENARIOS: use ${SCENARIO_NAMES.join(", ")}`);
const policies = list("BENCH_SIM_POLICIES");
const results = runSimulations({
  scale,
  seed,
  ...(scenarios === undefined ? {} : { scenarios: scenarios as ScenarioName[] }),
  ...(policies === undefined ? {} : { policies }),
  log: (line) => console.log(`[sim] ${line}`),
});

const ms = (v: number | null | undefined) => (v === null || v === undefined ? "-" : String(Math.round(v)));
const rows: Record<string, string | number>[] = [];
for (const [name, run] of Object.entries(results))
  for (const [policy, r] of Object.entries(run.policies))
    rows.push({
      scenario: name,
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
console.table(rows);

// Only a whole run stands for the benchmark's results.
if (scenarios !== undefined || policies !== undefined) {
  console.log("[sim] a partial run: bench/results/router-sim.json left as it was");
  process.exit(0);
}
const out = path.join(ROOT, "bench/results/router-sim.json");
writeFileSync(
  out,
  `${JSON.stringify({ scale, seed, wallSeconds: Math.round((performance.now() - startedAt) / 1000), scenarios: results }, null, 2)}\n`,
);
console.log(`[sim] wrote ${path.relative(ROOT, out)}`);
