// Runs the routing simulation over every scenario and policy plus the oracle, prints a table and
// writes bench/results/router-sim.json: `node bench/routing/simulateMain.ts` (Node 22).
// BENCH_SIM_SCALE shrinks edges and rates together (default 1), BENCH_SIM_SEED picks the arrivals.
import { writeFileSync } from "node:fs";
import path from "node:path";

import { runSimulations } from "./simulate.ts";

const ROOT = path.resolve(import.meta.dirname, "../..");
const scale = Number(process.env.BENCH_SIM_SCALE ?? 1);
const seed = Number(process.env.BENCH_SIM_SEED ?? 1);
const startedAt = performance.now();
const results = runSimulations({ scale, seed, log: (line) => console.log(`[sim] ${line}`) });

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

const out = path.join(ROOT, "bench/results/router-sim.json");
writeFileSync(
  out,
  `${JSON.stringify({ scale, seed, wallSeconds: Math.round((performance.now() - startedAt) / 1000), scenarios: results }, null, 2)}\n`,
);
console.log(`[sim] wrote ${path.relative(ROOT, out)}`);
