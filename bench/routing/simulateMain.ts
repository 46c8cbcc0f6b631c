// Runs the routing simulation over every scenario and policy plus the oracle, prints a table and
// writes bench/results/router-sim.json: `node bench/routing/simulateMain.ts` (Node 22).
// BENCH_SIM_SCALE shrinks edges and rates together (default 1), BENCH_SIM_SEED picks the arrivals,
// BENCH_SIM_SCENARIOS and BENCH_SIM_POLICIES (comma-separated) run only some (and write nothing).
import { writeFileSync } from "node:fs";
import path from "node:path";

import { summaryRows } from "./metrics.ts";
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

const rows = summaryRows(results);
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
