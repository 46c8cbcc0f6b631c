// The routing benchmark's loopback run: the REAL router (a process) in front of real edges
// (processes, paid with vouchers, on the in-process chain of devnet/routerbed.ts) whose `openai`
// backend proxies to simulated inference servers (bench/simulatedInference.ts: the engine model of
// bench/routing/engine.ts on real timers), so service time comes from timers and not from this
// machine's 2 cores. Every policy runs on the SAME seeded arrivals of each scenario, sent by an
// open-loop generator (openLoop.ts) that measures from each request's intended send time.
//
// Scenarios are workload.ts's, at loopback size (`loopbackScenario`): 9 edges (three regions × 1×,
// 2×, 4×) whose engines have the simulation's shape with fewer slots and slower steps
// (LOOPBACK_BASE_ENGINE), shorter token lengths and durations, rates scaled to those edges'
// capacity, and the surge's peak capped at what the machine sustains. Each edge declares capacity
// 10 × its engine's slots, so the router's slot prior (capacity / 10) is the engine's slot count,
// and its own limit is far above it, so an edge never queues before its engine does; it registers
// a delay proxy (delayProxy.ts) as its endpoint, so the router — "in eu" — sees RTTs of 5, 40 and
// 90 ms to eu, us and ap, in its probes too. The scenario's tenants are tenants of the router.
//
// A router is started per policy: round-robin, random, least-outstanding, power-of-two and
// peak-ewma with `routing.scheduling: "direct"` (the policy's choice at once, as usual routers do)
// and tideway with "queue" (admission queue, late binding, deadline shedding). Requests carry
// `x-tideway-priority` and `x-tideway-deadline-ms`. The kill scenario's edges are killed with
// SIGKILL (their supervisor restarts them) and its slowed edge's engine slows 5×; edges reached over
// HTTP send no load reports, so it cannot report itself busy either.
//
// Each run is checked against its simulation (compareWithSimulation): the same scenario, arrivals,
// policy and mode in simulate.ts, with edges that declare the same capacities and send no load
// reports (as these HTTP-only edges do) and the overhead a request meets beyond the network and the engine, measured once at the
// start on the idle network (measureOverheadMs).
//
// Importing this file runs nothing.
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

import { network } from "hardhat";

import { EDGE_MODEL, INPUT_PRICE, OUTPUT_PRICE, startRouterbed } from "../../devnet/routerbed.ts";
import type { Routerbed, RouterbedEdge } from "../../devnet/routerbed.ts";
import { freePort } from "../../devnet/readiness.ts";
import { countPromptTokens } from "../../lib/reference-model/index.ts";
import type { ReferenceMessage } from "../../lib/reference-model/index.ts";
import type { RouterConfigInput } from "../../router/config.ts";
import type { PolicyName } from "../../router/policy/index.ts";
import { SESSION_HEADER } from "../../router/api/server.ts";
import { simulatedAnswer, startSimulatedInference } from "../simulatedInference.ts";
import type { SimulatedServer, SimulatedStats } from "../simulatedInference.ts";
import { createEngine } from "./engine.ts";
import type { EngineSpec } from "./engine.ts";
import { BASE_ENGINE, capacityRps, edgeSet, generateArrivals, meanShape, scenario, SCENARIO_NAMES } from "./workload.ts";
import type { Arrival, Scenario, ScenarioName } from "./workload.ts";
import { startDelayProxy } from "./delayProxy.ts";
import type { DelayProxy } from "./delayProxy.ts";
import { latencyHistogram, recordMs, summarize } from "./metrics.ts";
import type { RequestRecord, RunSummary } from "./metrics.ts";
import { runOpenLoop } from "./openLoop.ts";
import { simulateScenario } from "./simulate.ts";
import { createVirtualClock } from "./virtualClock.ts";
import type { OpenLoopRequest, OpenLoopRun } from "./openLoop.ts";

// ------------------------------------------------------------------------------------ the network

/**
 * A 1× loopback edge: the simulation's engine with fewer slots and slower steps, so that the
 * tokens flowing through the router, the edges and the generator stay within 2 cores.
 */
export const LOOPBACK_BASE_ENGINE: EngineSpec = { ...BASE_ENGINE, maxSequences: 2, decodeMs: 30 };
/** Edges in every loopback scenario: three regions × sizes 1×, 2×, 4×. */
export const LOOPBACK_EDGE_COUNT = 9;
/** Token lengths × this (the simulation's default is 0.25). */
const LOOPBACK_TOKEN_SCALE = 0.15;
/** Scenario durations × this, per scenario (kill keeps 30 s after its slow-down to measure the share). */
const LOOPBACK_TIME_SCALE: Record<ScenarioName, number> = {
  steady50: 0.1,
  steady70: 0.1,
  steady85: 0.1,
  surge: 0.15,
  kill: 0.25,
  hotspot: 0.1,
};
/** The surge's peak, × capacity: the largest the loopback machine sustains (see the README). */
export const LOOPBACK_SURGE_FACTOR = 3;

/** Declared capacity (output tokens/s) per slot: the router's prior is capacity / 10 slots. */
const TOKENS_PER_SECOND_PER_SLOT = 10;

// ------------------------------------------------------------------------------------ policies

export interface LoopbackPolicy {
  name: string;
  policy: PolicyName;
  scheduling: "queue" | "direct";
}

export const LOOPBACK_POLICIES: readonly LoopbackPolicy[] = [
  { name: "round-robin", policy: "round-robin", scheduling: "direct" },
  { name: "random", policy: "random", scheduling: "direct" },
  { name: "least-outstanding", policy: "least-outstanding", scheduling: "direct" },
  { name: "power-of-two", policy: "power-of-two", scheduling: "direct" },
  { name: "peak-ewma", policy: "peak-ewma", scheduling: "direct" },
  { name: "tideway", policy: "tideway", scheduling: "queue" },
];

// ------------------------------------------------------------------------------------ workloads

/**
 * A scenario of workload.ts at loopback size: its arrivals' shape (lengths, burstiness,
 * conversations, prefixes, classes, events) on LOOPBACK_EDGE_COUNT loopback edges, its rates scaled
 * to those edges' capacity, and the surge's peak at LOOPBACK_SURGE_FACTOR × capacity. The
 * simulation runs this same definition to compare with the loopback run.
 */
export function loopbackScenario(
  name: ScenarioName,
  seed = 1,
  timeScale = LOOPBACK_TIME_SCALE[name],
  engine: EngineSpec = LOOPBACK_BASE_ENGINE,
): Scenario {
  const def = scenario(name, {
    scale: LOOPBACK_EDGE_COUNT / 48,
    seed,
    tokenScale: LOOPBACK_TOKEN_SCALE,
    timeScale,
  });
  const edges = edgeSet(LOOPBACK_EDGE_COUNT, engine);
  const { prompt, output, turns } = meanShape(def);
  const capacity = capacityRps(edges, prompt, output);
  const ratio = capacity / capacityRps(def.edges, prompt, output);
  let phases = def.phases.map((p) => ({ ...p, rate: [p.rate[0] * ratio, p.rate[1] * ratio] as [number, number] }));
  if (def.surge !== undefined) {
    // The surge's peak at LOOPBACK_SURGE_FACTOR × capacity (starts per second: conversations of
    // `turns` requests each), whatever the full-scale ratio: the largest surge this machine sustains.
    const peak = (LOOPBACK_SURGE_FACTOR * capacity) / turns;
    const top = Math.max(...phases.flatMap((p) => p.rate));
    phases = phases.map((p) => ({ ...p, rate: p.rate.map((r) => (r === top ? peak : r)) as [number, number] }));
  }
  return { ...def, edges, phases };
}

/** Requests per second the scenario's edges serve, for its requests' mean lengths. */
export function scenarioCapacity(def: Scenario): number {
  const { prompt, output } = meanShape(def);
  return capacityRps(def.edges, prompt, output);
}

// ------------------------------------------------------------------------------------ requests

/** Text of exactly `tokens` tokens as the reference tokenizer counts them (words and single spaces alternate). */
function textOfTokens(tokens: number, word: string): string {
  let text = "";
  for (let i = 0; i < tokens; i++) text += i % 2 === 0 ? word : " ";
  return text;
}

/**
 * The chat request of an arrival: a prompt of exactly `promptTokens` tokens as the edge counts them
 * (a group's shared prefix as the system message; the rest words of its own, so that no two
 * requests share a start the simulated server could cache), its prefix passed to the simulated server as
 * `prefix_key`/`prefix_tokens`, its affinity key as the session, its class and deadline as headers.
 */
export function requestOf(arrival: Arrival, def: Scenario, apiKeys: readonly string[]): OpenLoopRequest {
  const messages: ReferenceMessage[] = [];
  if (arrival.prefix !== undefined && arrival.prefix.key !== arrival.conversation && arrival.prefix.tokens > 2)
    messages.push({ role: "system", content: textOfTokens(arrival.prefix.tokens - 2, arrival.prefix.key.replace(/\W/g, "")) });
  const used = countPromptTokens([...messages, { role: "user", content: "" }]);
  messages.push({ role: "user", content: textOfTokens(Math.max(1, arrival.promptTokens - used), `u${arrival.id}`) });
  const tenant = Number(arrival.tenant.replace(/\D/g, "")) % apiKeys.length;
  return {
    at: arrival.at,
    body: {
      model: EDGE_MODEL,
      messages,
      max_tokens: arrival.outputTokens,
      temperature: 0,
      ...(arrival.prefix === undefined ? {} : { prefix_key: arrival.prefix.key, prefix_tokens: arrival.prefix.tokens }),
    },
    headers: {
      authorization: `Bearer ${apiKeys[tenant]}`,
      ...(arrival.affinityKey === undefined ? {} : { [SESSION_HEADER]: arrival.affinityKey }),
      "x-tideway-priority": arrival.priority,
      "x-tideway-deadline-ms": String(def.deadlineMs[arrival.priority]),
    },
    expectedText: simulatedAnswer(arrival.outputTokens),
    labels: { id: arrival.id },
  };
}

// ------------------------------------------------------------------------------------ processes

/** CPU time (user + system, ms) a process has used so far (Linux /proc; clock ticks of 10 ms). */
function cpuMsOf(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return 0;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface RouterEdgeView {
  edge_id: string;
  transport: string | null;
  models: string[];
  breaker: string;
}

/** Waits until router 0 can send every edge a request. */
export async function untilRouterSees(bed: Routerbed, edges: readonly RouterbedEdge[] = bed.edges, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const view = await fetch(`${bed.routers[0]!.url}/tideway/v1/edges`)
      .then(async (r) => ((await r.json()) as { edges: RouterEdgeView[] }).edges)
      .catch(() => [] as RouterEdgeView[]);
    const ready = edges.every((edge) => {
      const e = view.find((v) => v.edge_id === edge.edgeId.toString());
      return e !== undefined && e.models.length > 0 && e.breaker === "closed" && e.transport === "http";
    });
    if (ready) return;
    if (Date.now() > deadline) throw new Error(`the router does not see the edges: ${JSON.stringify(view)}`);
    await sleep(200);
  }
}

// ------------------------------------------------------------------------------------ one run

interface Network {
  bed: Routerbed;
  sims: SimulatedServer[];
  proxies: DelayProxy[];
  /** One per tenant of the scenarios (their `tenant` t<i> uses key i). */
  apiKeys: string[];
}

function statsDelta(before: SimulatedStats, after: SimulatedStats) {
  return {
    queueWaits: after.queueWaits - before.queueWaits,
    requests: after.requests - before.requests,
    lookups: after.cache.lookups - before.cache.lookups,
    hits: after.cache.hits - before.cache.hits,
  };
}

const round = (x: number, digits = 3) => Number(x.toFixed(digits));

/** The generator's records as the simulation's (metrics.ts): one definition of every figure for both. */
function requestRecords(run: OpenLoopRun, arrivals: readonly Arrival[]): RequestRecord[] {
  return run.records.map((r) => {
    const arrival = arrivals[Number(r.labels.id)]!;
    if (r.status === 429) return { arrival, outcome: "shed", shedAfterMs: r.responseMs, edge: r.edge };
    // A stream that ended with a lost or repeated token is no more a completion than one that broke.
    if (!r.completed || r.textMatches === false) return { arrival, outcome: "lost", ttftMs: r.ttftMs, edge: r.edge };
    const tpotMs = r.tokens > 1 ? (r.e2eMs! - r.ttftMs!) / (r.tokens - 1) : 0;
    return { arrival, outcome: "completed", ttftMs: r.ttftMs, e2eMs: r.e2eMs, tpotMs, edge: r.edge };
  });
}

async function runOne(net: Network, def: Scenario, policy: LoopbackPolicy, log: (line: string) => void) {
  const { bed, sims } = net;
  for (const sim of sims) sim.slow(1);
  const router = bed.routers[0]!;
  await router.service?.stop();
  // The baselines as usual routers run them: no session affinity around the policy.
  const routing: NonNullable<RouterConfigInput["routing"]> = {
    policy: policy.policy,
    scheduling: policy.scheduling,
    affinity: policy.name === "tideway",
  };
  router.launch.overrides = { ...router.launch.overrides, routing };
  await bed.startRouter(0);
  await untilRouterSees(bed);

  const arrivals = generateArrivals(def);
  const requests = arrivals.map((arrival) => requestOf(arrival, def, net.apiKeys));
  const before = sims.map((s) => s.stats());
  const pids = () => ({ router: router.service?.pid, edges: bed.edges.map((e) => e.service.pid) });
  const startPids = pids();
  const cpuBefore = { router: cpuMsOf(startPids.router), edges: startPids.edges.map(cpuMsOf), here: process.cpuUsage() };
  const wallStart = performance.now();
  const killed: RouterbedEdge[] = [];
  const timers = def.events.map((event) =>
    setTimeout(() => {
      if (event.kind === "slow") {
        sims[event.edge]!.slow(event.factor ?? 1);
        log(`  edge ${bed.edges[event.edge]!.edgeId} slowed ${event.factor}×`);
        return;
      }
      const edge = bed.edges[event.edge]!;
      if (edge.service.pid === undefined) return;
      killed.push(edge);
      process.kill(edge.service.pid, "SIGKILL");
      log(`  kill -9 edge ${edge.edgeId}`);
    }, event.at),
  );
  // Occupancy (running per slot) of every engine, sampled each second, as the simulation samples it at load reports.
  const occupancy = sims.map(() => ({ sum: 0, samples: 0 }));
  const sampler = setInterval(() => {
    sims.forEach((sim, i) => {
      occupancy[i]!.sum += sim.stats().running / sim.spec.maxSequences;
      occupancy[i]!.samples += 1;
    });
  }, 1_000);
  const run = await runOpenLoop({ url: `${router.url}/v1/chat/completions`, requests, timeoutMs: def.clientTimeoutMs });
  clearInterval(sampler);
  for (const timer of timers) clearTimeout(timer);
  const wallS = (performance.now() - wallStart) / 1000;
  // CPU while the run lasted, in cores (a killed edge's restarted process counts from its start).
  const endPids = pids();
  const here = process.cpuUsage(cpuBefore.here);
  const edgesCpu = endPids.edges.reduce<number>(
    (sum, pid, i) => sum + cpuMsOf(pid) - (pid === startPids.edges[i] ? cpuBefore.edges[i]! : 0),
    0,
  );
  const cpu = {
    router_cores: round((cpuMsOf(endPids.router) - cpuBefore.router) / 1000 / wallS, 2),
    edges_cores: round(edgesCpu / 1000 / wallS, 2),
    harness_cores: round((here.user + here.system) / 1e6 / wallS, 2),
  };

  const deltas = sims.map((s, i) => statsDelta(before[i]!, s.stats()));
  const itl = latencyHistogram();
  for (const r of run.records) for (const gap of r.itlMs) recordMs(itl, gap);
  const slowed = def.events.find((e) => e.kind === "slow");
  const slowedKey = slowed === undefined ? undefined : bed.edges[slowed.edge]!.edgeId.toString();
  /** Share of the requests sent from `afterMs` after the slow-down whose first token came from the slowed edge. */
  const slowedShare = (afterMs: number) => {
    const late = run.records.filter((r) => slowed !== undefined && r.at >= slowed.at + afterMs && r.edge !== undefined);
    return late.length === 0 ? undefined : late.filter((r) => r.edge === slowedKey).length / late.length;
  };
  const summary = summarize(def, requestRecords(run, arrivals), {
    itl,
    overCapacityRequests: deltas.reduce((sum, d) => sum + d.queueWaits, 0),
    overCapacityEdges: deltas.filter((d) => d.queueWaits > 0).length,
    occupancy: occupancy.map((o) => (o.samples === 0 ? 0 : o.sum / o.samples)),
    cache: { lookups: deltas.reduce((sum, d) => sum + d.lookups, 0), hits: deltas.reduce((sum, d) => sum + d.hits, 0) },
    ...(slowed === undefined ? {} : { slowedEdgeShare: slowedShare(30_000) ?? 0 }),
  });
  itl.destroy();
  const served: Record<string, number> = {};
  for (const r of run.records) if (r.edge !== undefined && r.status === 200) served[r.edge] = (served[r.edge] ?? 0) + 1;
  const retryAfter = run.records.flatMap((r) => (r.status === 429 && r.retryAfterS !== undefined ? [r.retryAfterS] : []));
  const result = {
    ...summary,
    // What only the loopback run sees.
    loopback: {
      served_per_edge: served,
      retry_after_s: retryAfter.length === 0 ? null : { min: Math.min(...retryAfter), max: Math.max(...retryAfter) },
      error_samples: [...new Set(run.records.filter((r) => r.status !== 429 && !r.completed).map((r) => r.error ?? "?"))].slice(0, 5),
      text_mismatches: run.records.filter((r) => r.completed && r.textMatches === false).length,
      killed_edges: killed.map((e) => e.edgeId.toString()),
      ...(slowed === undefined ? {} : { slowed_edge: slowedKey, slowed_edge_share_after_10s: slowedShare(10_000) ?? null }),
      generator_lateness: run.lateness,
      cpu,
    },
  };
  // A killed edge came back under its supervisor, whose backoff grows with crashes in a row: start it
  // afresh, as the next run kills it again, and wait until the router uses it.
  for (const edge of killed) {
    await edge.service.stop();
    edge.service = await bed.supervisor.start({ ...edge.service.spec, appendLog: true });
  }
  if (killed.length > 0) await untilRouterSees(bed, bed.edges, 120_000);
  return result;
}

// ------------------------------------------------------------------------------------ the whole run

export interface LoopbackOptions {
  /** The repository (edge/main.ts and router/main.ts run from there). */
  root: string;
  /** Where the testbed's files go (default: a fresh temporary directory). */
  workDir?: string;
  seed?: number;
  scenarios?: readonly ScenarioName[];
  /** Scenario durations × this instead of the loopback's own scale (a shorter run, as a test wants). */
  timeScale?: number;
  /** A 1× edge's engine instead of LOOPBACK_BASE_ENGINE; the rates follow its capacity. */
  engine?: EngineSpec;
  /** Policy names of LOOPBACK_POLICIES (default all). */
  policies?: readonly string[];
  /** Steady levels below 85 % run only these policies (default tideway), to keep the run short. */
  lowLoadPolicies?: readonly string[];
  log?: (line: string) => void;
}

/** Starts the loopback network: `edges` behind delay proxies, each in front of its simulated server, and a tenant per key. */
async function startNetwork(options: LoopbackOptions, edges: Scenario["edges"], tenants: number): Promise<Network> {
  const sims: SimulatedServer[] = [];
  const proxies: DelayProxy[] = [];
  try {
    const specs = [];
    for (const edge of edges) {
      const sim = await startSimulatedInference(edge.engine);
      sims.push(sim);
      const port = await freePort();
      const proxy = await startDelayProxy({ target: { host: "127.0.0.1", port }, oneWayMs: edge.rttMs / 2 });
      proxies.push(proxy);
      const capacity = TOKENS_PER_SECOND_PER_SLOT * edge.engine.maxSequences;
      specs.push({
        region: edge.region,
        capacity,
        port,
        endpoint: proxy.url,
        overrides: {
          models: [
            {
              name: EDGE_MODEL,
              backend: { type: "openai" as const, baseUrl: sim.url, tokensPerSecond: capacity },
              price: { inputPerToken: INPUT_PRICE.toString(), outputPerToken: OUTPUT_PRICE.toString() },
              maxTokens: 4096,
              defaultMaxTokens: 64,
            },
          ],
          // Far above the engine's slots: only the engine queues.
          limits: { maxConcurrent: 1024, maxQueue: 1024, queueTimeoutMs: 120_000, bodyLimitBytes: 1_048_576, drainTimeoutMs: 1_000 },
          log: { level: "warn" as const },
        },
      });
    }
    const bed = await startRouterbed({
      conn: await network.create(),
      root: options.root,
      workDir: options.workDir ?? mkdtempSync(path.join(tmpdir(), "tideway-loopback-")),
      edges: specs,
      routerOverrides: { log: { level: "warn" } },
    });
    const apiKeys = [bed.tenant.apiKey];
    for (let i = 1; i < tenants; i++) apiKeys.push((await bed.addTenant(bed.tenant.payer, { name: `tenant-${i}` })).apiKey);
    await untilRouterSees(bed);
    // Each tenant's first request opens its session on-chain: not part of any run.
    for (const key of apiKeys) {
      const response = await fetch(`${bed.routers[0]!.url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
        body: JSON.stringify({ model: EDGE_MODEL, messages: [{ role: "user", content: "hello" }], max_tokens: 2, stream: true }),
      });
      if (response.status !== 200) throw new Error(`the router does not serve: ${response.status} ${await response.text()}`);
      await response.text();
    }
    return { bed, sims, proxies, apiKeys };
  } catch (err) {
    await Promise.all([...sims, ...proxies].map((s) => s.close()));
    throw err;
  }
}

async function stopNetwork(net: Network): Promise<void> {
  await net.bed.stop();
  await Promise.all([...net.sims, ...net.proxies].map((s) => s.close()));
}

/** Requests of the overhead calibration, and the gap between them (the network idle for each). */
const CALIBRATION_REQUESTS = 24;
const CALIBRATION_GAP_MS = 150;
const CALIBRATION_PROMPT_TOKENS = 8;

/** Time to first token of one request alone on an idle engine, ms, as the engine model times it. */
function idleTtftMs(spec: EngineSpec, promptTokens: number): number {
  const clock = createVirtualClock();
  let first = Number.NaN;
  createEngine(spec, clock).submit(
    { promptTokens, outputTokens: 2 },
    {
      token(index, atMs) {
        if (index === 0) first = atMs;
      },
      done() {},
      error() {},
    },
  );
  clock.run();
  return first;
}

/**
 * What the real router and edges add to a request's way to the engine beyond the network and the
 * engine, ms (payment, parsing, one more process hop, the delay proxy): the lower quartile, over
 * requests sent one at a time to the idle network (after a first round that warms it), of the
 * measured time to first token minus the RTT to the edge that served it and the engine's own time
 * for it. The lower quartile, because whatever else runs on the machine only ever adds to a
 * sample. The simulation of a loopback run adds it (simulate.ts `overheadMs`); without it, a p50
 * of tens of ms is off by most of itself.
 */
async function measureOverheadMs(net: Network, def: Scenario): Promise<number> {
  // Short requests, so that each finds the network idle whatever the engines' speed.
  const promptTokens = CALIBRATION_PROMPT_TOKENS;
  // Each prompt its own words (`requestOf` words them by id), so that no engine finds it cached.
  const calibrationRound = (first: number) =>
    Array.from({ length: CALIBRATION_REQUESTS }, (_, i) =>
      requestOf(
        {
          id: first + i,
          at: i * CALIBRATION_GAP_MS,
          tenant: "t0",
          priority: "interactive",
          conversation: `calibration-${first + i}`,
          turn: 0,
          promptTokens,
          outputTokens: 2,
        },
        def,
        net.apiKeys,
      ),
    );
  const url = `${net.bed.routers[0]!.url}/v1/chat/completions`;
  // A first round opens the router's connections to the edges and warms both: not measured.
  await runOpenLoop({ url, requests: calibrationRound(0) });
  const run = await runOpenLoop({ url, requests: calibrationRound(CALIBRATION_REQUESTS) });
  const byEdgeId = new Map(net.bed.edges.map((edge, i) => [edge.edgeId.toString(), def.edges[i]!]));
  const gaps = run.records.flatMap((r) => {
    const edge = r.edge === undefined ? undefined : byEdgeId.get(r.edge);
    if (edge === undefined || r.ttftMs === undefined) return [];
    return [r.ttftMs - edge.rttMs - idleTtftMs(edge.engine, promptTokens)];
  });
  if (gaps.length < CALIBRATION_REQUESTS / 2)
    throw new Error(`the overhead calibration was served ${gaps.length} times of ${CALIBRATION_REQUESTS}`);
  gaps.sort((a, b) => a - b);
  return Math.max(0, round(gaps[Math.floor(gaps.length / 4)]!, 1));
}

export interface SimulatedComparison {
  /** The simulation's TTFT for the same scenario, arrivals and policy. */
  ttftMs: { p50: number; p99: number };
  /** |simulated − loopback| / loopback. */
  p50Error: number;
  p99Error: number;
}

/**
 * The discrete-event simulation (simulate.ts) of the run the loopback network just served — same
 * scenario, arrivals, edges, policy and scheduling mode, edges without load reports as the
 * loopback's HTTP-only edges are, and the measured overhead — and how far its TTFT is from what the
 * loopback run measured: the check that the simulation at full scale can be trusted.
 */
export function compareWithSimulation(
  def: Scenario,
  policy: LoopbackPolicy,
  loopback: RunSummary,
  overheadMs: number,
): SimulatedComparison {
  const simulated = simulateScenario(def, policy.policy, {
    mode: policy.scheduling,
    loadReports: false,
    overheadMs,
    declaredCapacity: (edge) => TOKENS_PER_SECOND_PER_SLOT * edge.engine.maxSequences,
  });
  const error = (sim: number, measured: number) => (measured === 0 ? 0 : round(Math.abs(sim - measured) / measured, 4));
  return {
    ttftMs: { p50: round(simulated.ttftMs.p50), p99: round(simulated.ttftMs.p99) },
    p50Error: error(simulated.ttftMs.p50, loopback.ttftMs.p50),
    p99Error: error(simulated.ttftMs.p99, loopback.ttftMs.p99),
  };
}

/**
 * Runs every scenario × policy on the loopback network and returns the results keyed by scenario,
 * then policy, with the setup under `loopback`.
 */
export async function runLoopback(options: LoopbackOptions) {
  const log = options.log ?? ((line: string) => console.log(line));
  const seed = options.seed ?? 1;
  const names = options.scenarios ?? SCENARIO_NAMES;
  const policies = LOOPBACK_POLICIES.filter((p) => options.policies === undefined || options.policies.includes(p.name));
  const lowLoad = options.lowLoadPolicies ?? ["tideway"];
  const defs = names.map((name) => loopbackScenario(name, seed, options.timeScale, options.engine));
  const results: Partial<Record<ScenarioName, Record<string, Awaited<ReturnType<typeof runOne>> & { simulated: SimulatedComparison }>>> =
    {};
  const errors: SimulatedComparison[] = [];
  const started = Date.now();
  // Every loopback scenario has the same edges: one network serves them all.
  const net = await startNetwork(options, defs[0]!.edges, Math.max(...defs.map((d) => d.tenants)));
  let overheadMs = 0;
  try {
    overheadMs = await measureOverheadMs(net, defs[0]!);
    log(`overhead beyond the network and the engine: ${overheadMs} ms a request (the simulation of each run adds it)`);
    for (const def of defs) {
      const runs: NonNullable<(typeof results)[ScenarioName]> = {};
      results[def.name] = runs;
      const low = def.name === "steady50" || def.name === "steady70";
      const arrivals = generateArrivals(def).length;
      for (const policy of low ? policies.filter((p) => lowLoad.includes(p.name)) : policies) {
        log(`loopback ${def.name} × ${policy.name}: ${arrivals} requests over ${def.durationMs / 1000} s`);
        const result = await runOne(net, def, policy, log);
        const simulated = compareWithSimulation(def, policy, result, overheadMs);
        errors.push(simulated);
        runs[policy.name] = { ...result, simulated };
        log(
          `  TTFT p50 ${round(result.ttftMs.p50)} / p99 ${round(result.ttftMs.p99)} ms (simulated ${round(simulated.ttftMs.p50)} / ${round(simulated.ttftMs.p99)}), goodput ${round(result.goodput)}, shed ${result.shed}, lost ${result.lost}, edges past capacity ${result.overCapacity.edges}`,
        );
      }
    }
  } finally {
    await stopNetwork(net);
  }
  return {
    ...results,
    sim_vs_loopback_p50_error: errors.length === 0 ? null : round(Math.max(...errors.map((e) => e.p50Error)), 4),
    sim_vs_loopback_p99_error: errors.length === 0 ? null : round(Math.max(...errors.map((e) => e.p99Error)), 4),
    loopback: {
      duration_s: Math.round((Date.now() - started) / 1000),
      seed,
      scenarios: Object.fromEntries(
        defs.map((d) => [
          d.name,
          {
            duration_s: d.durationMs / 1000,
            requests: generateArrivals(d).length,
            capacity_requests_per_s: round(scenarioCapacity(d), 2),
            load: d.load,
            // The highest offered load, × capacity (the surge's peak).
            peak_load: round((Math.max(...d.phases.flatMap((p) => p.rate)) * meanShape(d).turns) / scenarioCapacity(d), 2),
          },
        ]),
      ),
      edges: defs[0]!.edges.map((e) => ({ ...e, declared_capacity: TOKENS_PER_SECOND_PER_SLOT * e.engine.maxSequences })),
      token_scale: LOOPBACK_TOKEN_SCALE,
      overhead_ms: overheadMs,
      surge_peak_cap_times_capacity: LOOPBACK_SURGE_FACTOR,
      policies,
    },
  };
}
