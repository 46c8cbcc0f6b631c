// Scale benchmark: `npm run bench:scale` (= `node bench/scale.ts`; `-- --n 1000,10000,100000`
// for other sizes). For each N, a fresh local network as `npm start` deploys it with N registered,
// staked, Active edges, and one real verifier process measured from outside (bench/scale/run.ts):
//
// - resync_ms, resync_rpc_requests: from its start to its first good tick, and the JSON-RPC calls
//   it made meanwhile (each element of a batch counted);
// - tick_ms, tick_rpc_requests: steady state, after 1 % of the edges changed (more self-bond,
//   unbonding, pause/resume, key rotation, profile update): the mean of its tick duration
//   histogram, and the calls in a window divided by the ticks in it;
// - observe_ms: its end-of-epoch observation of N edges (the observe job's processing time);
// - verifier_rss_mb: its peak resident memory; its open file descriptors and log problems too.
//
// Prints a table and writes bench/results/scale.json: `n` and each figure as arrays in the same
// order (with `--merge`, the runs of other sizes already in the file are kept), the 100k figures
// measured or extrapolated (a least-squares line through the measured
// points, `extrapolated_100k: true`), the seeding rate, and notes. Uses port 8545 (the Ignition
// deployment's `localhost` network): run it where `npm start` is not running.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { availableParallelism, cpus } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

import { runScale, type ScaleRun } from "./scale/run.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const RESULTS_FILE = new URL("./results/scale.json", import.meta.url);
const HUNDRED_K = 100_000;

/** The least-squares line through (x, y) evaluated at `at`; proportional through the origin for one point. */
function fitAt(points: ReadonlyArray<[number, number]>, at: number): number {
  if (points.length === 0) return Number.NaN;
  if (points.length === 1) return (points[0]![1] / points[0]![0]) * at;
  const n = points.length;
  const mx = points.reduce((a, [x]) => a + x, 0) / n;
  const my = points.reduce((a, [, y]) => a + y, 0) / n;
  const sxx = points.reduce((a, [x]) => a + (x - mx) ** 2, 0);
  const sxy = points.reduce((a, [x, y]) => a + (x - mx) * (y - my), 0);
  const slope = sxx === 0 ? 0 : sxy / sxx;
  return my + slope * (at - mx);
}

const { values } = parseArgs({
  options: {
    n: { type: "string", default: "1000,10000" },
    "window-s": { type: "string", default: "30" },
    "resync-timeout-s": { type: "string", default: "300" },
    churn: { type: "string", default: "0.01" },
    // Keeps the runs of other sizes already in the results file (a long size measured apart).
    merge: { type: "boolean", default: false },
  },
});
const sizes = values.n.split(",").map((s) => Number(s.trim()));
const fresh: ScaleRun[] = [];
for (const n of sizes) {
  const say = (m: string) => console.log(`[n=${n}] ${m}`);
  fresh.push(
    await runScale({
      root: ROOT,
      n,
      workDir: path.join("cache", "scale"),
      resyncTimeoutMs: Number(values["resync-timeout-s"]) * 1000,
      windowMs: Number(values["window-s"]) * 1000,
      churnFraction: Number(values.churn),
      say,
    }),
  );
}

const previous: ScaleRun[] =
  values.merge && existsSync(RESULTS_FILE) ? ((JSON.parse(readFileSync(RESULTS_FILE, "utf8")) as { runs?: ScaleRun[] }).runs ?? []) : [];
const runs = [...previous.filter((r) => !sizes.includes(r.n)), ...fresh].sort((a, b) => a.n - b.n);
const column = <K extends keyof ScaleRun>(key: K) => runs.map((r) => r[key]);
const measured = (key: "resync_ms" | "tick_rpc_requests" | "verifier_rss_mb") =>
  runs.filter((r) => r.failed === null && typeof r[key] === "number").map((r): [number, number] => [r.n, r[key] as number]);
const at100k = runs.find((r) => r.n === HUNDRED_K && r.failed === null);
const extrapolated = at100k === undefined;
const hundredK = (key: "resync_ms" | "tick_rpc_requests" | "verifier_rss_mb") =>
  at100k !== undefined ? at100k[key] : Math.round(fitAt(measured(key), HUNDRED_K));
const seedRates = runs.map((r) => r.seed_edges_per_s);

const results = {
  n: column("n"),
  resync_ms: column("resync_ms"),
  resync_rpc_requests: column("resync_rpc_requests"),
  tick_ms: column("tick_ms"),
  tick_rpc_requests: column("tick_rpc_requests"),
  observe_ms: column("observe_ms"),
  verifier_rss_mb: column("verifier_rss_mb"),
  resync_ms_100k: hundredK("resync_ms"),
  tick_rpc_requests_100k: hundredK("tick_rpc_requests"),
  verifier_rss_mb_100k: hundredK("verifier_rss_mb"),
  extrapolated_100k: extrapolated,
  seed_edges_per_s: Math.round(seedRates.reduce((a, b) => a + b, 0) / seedRates.length),
  seed_ms: column("seed_ms"),
  resync_http_requests: column("resync_http_requests"),
  resync_chain_sync_ms: column("resync_chain_sync_ms"),
  tick_period_ms: column("tick_period_ms"),
  tick_http_requests: column("tick_http_requests"),
  ticks_in_window: column("ticks_in_window"),
  tick_errors_in_window: column("tick_errors_in_window"),
  verifier_rss_mb_now: column("verifier_rss_mb_now"),
  verifier_fds_max: column("verifier_fds_max"),
  verifier_restarts: column("verifier_restarts"),
  verifier_log_errors: runs.map((r) => r.log.errors),
  verifier_log_warnings: runs.map((r) => r.log.warnings),
  failed: column("failed"),
  goals_100k: {
    tick_rpc_requests: "≤ 50 + a constant per changed edge",
    tick_ms: "< 1000",
    resync_ms: "< 60000",
    verifier_rss_mb: "< 1024",
  },
  notes:
    `One verifier process (node verifier/main.ts, the devnet's configuration: tickMs 1000, confirmations 1) against a Hardhat node ` +
    `(interval mining 1 s) deployed by Ignition with ignition/parameters/local.json and the demo's governed set-up (3 approved verifiers, ` +
    `quorum 2; only the first runs). Challenges configured to 0 of every kind (N unreachable edges would flood the queue), so planning, ` +
    `observation and the chain view are what is measured. Edges: one allowlisted operator, minSelfBond each, profiles http://10.a.b.c:8080 ` +
    `in 3 regions, capacity 1–4, 1–2 models; the clock moved until their stake earns, as npm start does. JSON-RPC calls counted by a proxy ` +
    `in front of the node (each element of a batch is a call). Steady state: ${Number(values.churn) * 100} % of the edges changed ` +
    `(stake, unbond, pause and the previous round's resume, key rotation, profile update) then a ${values["window-s"]} s window; tick_ms is the mean ` +
    `of tideway_verifier_tick_duration_seconds over it (null where the verifier does not export it; tick_period_ms is the window over the ticks). ` +
    `observe_ms is the observe job's finishedOn − processedOn in Redis. verifier_rss_mb is VmHWM. A run whose verifier has no good tick ` +
    `within ${values["resync-timeout-s"]} s is recorded as failed (null figures). ` +
    (extrapolated
      ? `The 100k figures are a least-squares line through the measured points (extrapolated_100k).`
      : "The 100k figures are measured."),
  machine: { cores: availableParallelism(), cpu: cpus()[0]?.model ?? "unknown", node: process.version },
  // Every figure of every run, so that a later `--merge` can rebuild the arrays.
  runs: runs.map((r) => ({ ...r, log: { ...r.log, messages: r.log.messages.slice(0, 8) } })),
};

console.log("\nscale benchmark (bench/results/scale.json):");
console.table(
  Object.fromEntries(
    runs.map((r) => [
      r.n,
      {
        "seed edges/s": r.seed_edges_per_s,
        "resync ms": r.resync_ms ?? "FAILED",
        "resync calls": r.resync_rpc_requests,
        "tick ms": r.tick_ms ?? "-",
        "tick period ms": r.tick_period_ms ?? "-",
        "calls/tick": r.tick_rpc_requests ?? "-",
        "observe ms": r.observe_ms ?? "-",
        "RSS MiB (peak)": r.verifier_rss_mb,
        "fds max": r.verifier_fds_max,
        "log errors/warnings": `${r.log.errors}/${r.log.warnings}`,
      },
    ]),
  ),
);
console.log(
  `100k${extrapolated ? " (extrapolated)" : ""}: resync ${results.resync_ms_100k} ms, ${results.tick_rpc_requests_100k} calls/tick, ${results.verifier_rss_mb_100k} MiB`,
);
for (const r of runs.filter((x) => x.failed !== null)) console.log(`n=${r.n} failed: ${r.failed}`);
mkdirSync(new URL("./results/", import.meta.url), { recursive: true });
writeFileSync(RESULTS_FILE, `${JSON.stringify(results, null, 2)}\n`);
console.log(`wrote ${fileURLToPath(RESULTS_FILE)}`);
