// `npm run bench:router`: what the router costs a streamed chat, and whether a stream survives
// the death of the edge serving it. Router testbeds (devnet/routerbed.ts: the protocol on the
// in-process Hardhat network, edges and the router as processes, a scratch Redis), one after the
// other:
//
// - overhead: ONE edge behind one router, so the router cannot route anywhere else. 50 workers
//   each send streamed chats back to back, choosing per request at random among the router, the
//   same edge directly (with one voucher signed up front by the testbed's gateway key for the
//   whole run), and the edge directly with a new voucher each time (as the router pays, to tell
//   the edge's share of the difference), so every path sees the same load. Time to first token is
//   measured client-side, from send to the first content delta, by the same code for every path,
//   into HDR histograms. overhead_p50_ms = p50(router) − p50(direct), likewise p99. CPU per
//   request of the router, the edge and this client too, and how long each waited for a core.
//   Two loads:
//   - realistic (the headline): the edge's proxy backend in front of a simulated inference server
//     in this process that takes the time a GPU server takes (a prefill delay, then one token
//     every few tens of ms, from timers: no CPU while it waits), so streams last about a second
//     and the cores are not the bottleneck;
//   - saturated: a tiny reference model answering 8 tokens at once, so the workers send as fast as
//     the 2 cores handle requests and the figure is mostly CPU queueing; then one stream at a time.
// - failover: three public edges and one behind NAT (reached over its link), serving a model slow
//   enough (a few ms a token) for a kill to land mid-stream. Each trial asks the router for a
//   seeded streamed chat once uninterrupted, then again, and `kill -9`s the edge serving it after
//   a random number of tokens; the stream must complete with the same text. The killed edge is
//   started again and the next trial waits until the router sees it back.
//
// - peak shaving (bench/routing/peakShaving.ts): every routing policy and the oracle bound on the
//   same seeded arrivals, in a discrete-event simulation at full scale (10,000 users, 48–64 edges)
//   and in a loopback run of the real router and edges over simulated GPUs (bench/README.md).
//
// Prints tables and writes bench/results/router.json. BENCH_ROUTER_SECONDS (measured seconds of
// each overhead run), BENCH_ROUTER_KILLS (failover trials); BENCH_ROUTER_PROF=1 writes CPU
// profiles of the overhead runs' router and edge to /tmp/routerprof/<load>;
// BENCH_ROUTER_PEAK_ONLY=1 runs only the peak-shaving part and keeps the other figures already in
// router.json (BENCH_ROUTER_SIMULATION_ONLY=1: only its simulation).
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { availableParallelism, cpus, loadavg, tmpdir } from "node:os";
import path from "node:path";

import { build } from "hdr-histogram-js";
import type { Histogram } from "hdr-histogram-js";
import { network } from "hardhat";

import { EDGE_MODEL, INPUT_PRICE, OUTPUT_PRICE, startRouterbed } from "../devnet/routerbed.ts";
import type { Routerbed, RouterbedEdge } from "../devnet/routerbed.ts";
import { SESSION_BUDGET } from "../devnet/testbed.ts";
import type { EdgeConfigInput } from "../edge/config.ts";
import { countPromptTokens } from "../lib/reference-model/index.ts";
import type { ReferenceMessage } from "../lib/reference-model/index.ts";
import { signVoucher } from "../lib/protocol/eip712.ts";
import { signDigest } from "../lib/protocol/fastTypedData.ts";
import { createVoucherVerifier } from "../lib/protocol/fastVoucher.ts";
import { encodeVoucherHeader, VOUCHER_HEADER } from "../lib/protocol/voucherHeader.ts";
import { SESSION_HEADER } from "../router/api/server.ts";
import { sseData } from "../router/dispatch/sse.ts";
import { runPeakShaving } from "./routing/peakShaving.ts";
import { startSimulatedInference } from "./simulatedInference.ts";

const ROOT = path.resolve(import.meta.dirname, "..");
const OUT = path.join(ROOT, "bench/results/router.json");
const WORKERS = 50;
const WARMUP_SECONDS = 5;
const SECONDS = Number(process.env.BENCH_ROUTER_SECONDS ?? 20);
const UNLOADED_SECONDS = 10;
const SATURATED_MAX_TOKENS = 8;
const REALISTIC_MAX_TOKENS = 32;
const KILLS = Number(process.env.BENCH_ROUTER_KILLS ?? 24);
const FAILOVER_MAX_TOKENS = 64;
const PROFILE_DIR = "/tmp/routerprof";

/** The simulated server's clock: a GPU server's order of magnitude for a mid-size model. */
const SIMULATED_TIMING = { prefillMs: 20, prefillMsPerToken: 0.1, decodeMs: 25 };
/** Streams the simulated server can decode at once (its declared capacity is this × its token rate). */
const SIMULATED_BATCH = 64;

/** An edge model entry (the testbed's name and prices) served by `backend`. */
function edgeModel(backend: EdgeConfigInput["models"][number]["backend"]) {
  return {
    name: EDGE_MODEL,
    backend,
    price: { inputPerToken: INPUT_PRICE.toString(), outputPerToken: OUTPUT_PRICE.toString() },
    maxTokens: 1024,
    defaultMaxTokens: 64,
  };
}
/** The reference network of the given shape, on one thread. */
const referenceModel = (hidden: number, layers: number) =>
  edgeModel({ type: "reference", hidden, layers, threads: 1, tokensPerSecond: 400 });
// Per token: a few µs for the saturated run; about 3 ms for the failover run, so a 64-token answer
// lasts long enough for a kill sent after token k to land before the edge finishes.
const TINY_MODEL = referenceModel(16, 1);
const SLOW_MODEL = referenceModel(1024, 4);

interface StreamResult {
  status: number;
  /** From send to the first non-empty content delta. */
  ttftMs: number | undefined;
  text: string;
  tokens: number;
  finishReason: string | undefined;
  tideway: { edges?: string[]; migrations?: number } | undefined;
  error: string | undefined;
}

/**
 * One streamed chat completion over fetch, read event by event: the same client code for the
 * router and an edge. `onDelta` sees the count of content deltas so far.
 */
async function streamChat(
  url: string,
  headers: Record<string, string>,
  body: string,
  onDelta?: (count: number) => void,
): Promise<StreamResult> {
  const sent = performance.now();
  const result: StreamResult = {
    status: 0,
    ttftMs: undefined,
    text: "",
    tokens: 0,
    finishReason: undefined,
    tideway: undefined,
    error: undefined,
  };
  try {
    const response = await fetch(url, { method: "POST", headers: { "content-type": "application/json", ...headers }, body });
    result.status = response.status;
    if (response.status !== 200) {
      result.error = `${response.status}: ${(await response.text()).slice(0, 300)}`;
      return result;
    }
    const text = response.body!.pipeThrough(new TextDecoderStream());
    for await (const data of sseData(text)) {
      // Read to the end of the body, so the connection is reused (leaving early closes it).
      if (data === "[DONE]") continue;
      const event = JSON.parse(data) as {
        error?: { message?: string };
        choices?: Array<{ delta?: { content?: string }; finish_reason?: string | null }>;
        tideway?: StreamResult["tideway"];
      };
      if (event.error !== undefined) {
        result.error = `in-band error: ${event.error.message}`;
        return result;
      }
      const choice = event.choices?.[0];
      const content = choice?.delta?.content;
      if (typeof content === "string" && content.length > 0) {
        result.ttftMs ??= performance.now() - sent;
        result.text += content;
        result.tokens += 1;
        onDelta?.(result.tokens);
      }
      if (typeof choice?.finish_reason === "string") result.finishReason = choice.finish_reason;
      if (event.tideway !== undefined) result.tideway = event.tideway;
    }
    if (result.finishReason === undefined) result.error = "stream ended without a finish reason";
  } catch (err) {
    result.error = (err as Error).message;
  }
  return result;
}

interface RouterEdgeView {
  edge_id: string;
  transport: string | null;
  models: string[];
  breaker: string;
  outstanding: number;
}

async function routerEdges(bed: Routerbed): Promise<RouterEdgeView[]> {
  const response = await fetch(`${bed.routers[0]!.url}/tideway/v1/edges`);
  return ((await response.json()) as { edges: RouterEdgeView[] }).edges;
}

/** CPU time (user + system, ms) a process has used so far (Linux /proc; clock ticks of 10 ms). */
function cpuMsOf(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/**
 * Time (ms) a process's main thread, its event loop, has spent runnable but waiting for a core
 * (Linux /proc/<pid>/schedstat, second field, ns): the share of latency that is CPU contention.
 */
function runQueueMsOf(pid: number): number {
  return Number(readFileSync(`/proc/${pid}/schedstat`, "utf8").split(" ")[1]) / 1e6;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until the router can send `edges` (all of them by default) a request. */
async function untilRouterSees(bed: Routerbed, edges: readonly RouterbedEdge[] = bed.edges, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const view = await routerEdges(bed);
    const ready = edges.every((edge) => {
      const e = view.find((v) => v.edge_id === edge.edgeId.toString());
      return e !== undefined && e.models.length > 0 && e.breaker === "closed" && e.transport === (edge.nat ? "link" : "http");
    });
    if (ready) return;
    if (Date.now() > deadline) throw new Error(`the router does not see the edges: ${JSON.stringify(view)}`);
    await sleep(100);
  }
}

const histogram = () => build({ lowestDiscernibleValue: 1, highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: 3 });
/** Histograms hold microseconds; figures are reported in ms. */
const ms = (us: number) => Math.round(us) / 1000;
function distribution(h: Histogram) {
  return {
    count: h.totalCount,
    p50_ms: ms(h.getValueAtPercentile(50)),
    p90_ms: ms(h.getValueAtPercentile(90)),
    p99_ms: ms(h.getValueAtPercentile(99)),
    p999_ms: ms(h.getValueAtPercentile(99.9)),
    max_ms: ms(h.maxValue),
    mean_ms: ms(h.mean),
  };
}

// ------------------------------------------------------------------------------------ overhead

interface OverheadLoad {
  /** Names the load in the results and the profile directory. */
  name: "realistic" | "saturated";
  model: ReturnType<typeof edgeModel>;
  /** The edge's declared capacity (output tokens/s) in its on-chain profile. */
  capacity?: number;
  messages: ReferenceMessage[];
  maxTokens: number;
  /**
   * Workers start this far apart, so that streams of near-constant length do not all start
   * (and all ask for their first token) at the same instants.
   */
  staggerMs: number;
  /** Then one stream at a time for UNLOADED_SECONDS. */
  alone: boolean;
}

async function measureOverhead(load: OverheadLoad) {
  const workDir = mkdtempSync(path.join(tmpdir(), "tideway-bench-router-"));
  const nodeOptions = process.env.NODE_OPTIONS;
  if (process.env.BENCH_ROUTER_PROF) {
    const dir = path.join(PROFILE_DIR, load.name);
    mkdirSync(dir, { recursive: true });
    process.env.NODE_OPTIONS = `${nodeOptions ?? ""} --cpu-prof --cpu-prof-dir=${dir}`.trim();
  }
  const bed = await startRouterbed({
    conn: await network.create(),
    root: ROOT,
    workDir,
    edges: [{ region: "eu-west", capacity: load.capacity, overrides: { models: [load.model] } }],
  });
  try {
    await untilRouterSees(bed);
    const edge = bed.edges[0]!;
    const { market } = bed;
    const voucherFor = (cumulativeAmount: bigint) => ({
      payer: market.payer,
      edgeId: edge.edgeId,
      sessionId: market.sessionId,
      cumulativeAmount,
      expiry: 2n ** 40n,
    });
    // One voucher for the whole run, as a gateway that prepaid the edge sends it each time: the
    // edge reserves each request against it and settles, with nothing new to verify or store.
    const prepaid = voucherFor(SESSION_BUDGET);
    const prepaidHeader = encodeVoucherHeader(prepaid, await signVoucher(market.gateway, market.domain, prepaid));
    // A new, higher voucher on every request, as the router pays: the edge recovers its signer and
    // stores it before answering. Above the prepaid one, so that one never needs checking again.
    const codec = createVoucherVerifier(market.domain);
    let next = SESSION_BUDGET;
    const newVoucherHeader = () => {
      next += 1n;
      const voucher = voucherFor(next);
      return encodeVoucherHeader(voucher, signDigest(market.gatewayPrivateKey, codec.digest(voucher)));
    };
    const routerUrl = `${bed.routers[0]!.url}/v1/chat/completions`;
    const edgeUrl = `${edge.url}/v1/chat/completions`;
    const paths = {
      router: () => ({ url: routerUrl, headers: { authorization: `Bearer ${bed.tenant.apiKey}` } }),
      direct: () => ({ url: edgeUrl, headers: { [VOUCHER_HEADER]: prepaidHeader } }),
      direct_new_voucher: () => ({ url: edgeUrl, headers: { [VOUCHER_HEADER]: newVoucherHeader() } }),
    };
    type PathName = keyof typeof paths;
    const names = Object.keys(paths) as PathName[];
    const body = JSON.stringify({
      model: EDGE_MODEL,
      messages: load.messages,
      max_tokens: load.maxTokens,
      temperature: 0,
      stream: true,
    });
    // The router opens the tenant's session on its first request: not part of what is measured.
    const first = await streamChat(paths.router().url, paths.router().headers, body);
    if (first.error !== undefined) throw new Error(`the router does not answer: ${first.error}`);

    const run = async (seconds: number, workers: number) => {
      const stats = Object.fromEntries(
        names.map((name) => [name, { ttft: histogram(), total: histogram(), errors: 0, errorSamples: [] as string[] }]),
      ) as Record<PathName, { ttft: Histogram; total: Histogram; errors: number; errorSamples: string[] }>;
      const end = Date.now() + seconds * 1000;
      const worker = async (index: number) => {
        await sleep(index * load.staggerMs);
        while (Date.now() < end) {
          const name = names[Math.floor(Math.random() * names.length)]!;
          const { url, headers } = paths[name]();
          const started = performance.now();
          const r = await streamChat(url, headers, body);
          const s = stats[name];
          if (r.error !== undefined || r.ttftMs === undefined) {
            s.errors += 1;
            if (s.errorSamples.length < 5) s.errorSamples.push(r.error ?? "no content");
            continue;
          }
          s.ttft.recordValue(Math.round(r.ttftMs * 1000));
          s.total.recordValue(Math.round((performance.now() - started) * 1000));
        }
      };
      await Promise.all(Array.from({ length: workers }, (_, i) => worker(i)));
      return stats;
    };
    await run(WARMUP_SECONDS, WORKERS);
    const loadAverage = loadavg()[0]!;
    const pids = { router: bed.routers[0]!.service!.pid!, edge: edge.service.pid! };
    const cpuBefore = { router: cpuMsOf(pids.router), edge: cpuMsOf(pids.edge), client: process.cpuUsage() };
    const waitBefore = { router: runQueueMsOf(pids.router), edge: runQueueMsOf(pids.edge), client: runQueueMsOf(process.pid) };
    const stats = await run(SECONDS, WORKERS);
    const client = process.cpuUsage(cpuBefore.client);
    const routed = stats.router.ttft.totalCount;
    const all = names.reduce((sum, name) => sum + stats[name].ttft.totalCount, 0);
    // What each process spent per request it took part in (the edge and this client serve every path).
    const cpu = {
      router_ms_per_router_request: Number(((cpuMsOf(pids.router) - cpuBefore.router) / routed).toFixed(3)),
      edge_ms_per_request: Number(((cpuMsOf(pids.edge) - cpuBefore.edge) / all).toFixed(3)),
      client_ms_per_request: Number(((client.user + client.system) / 1000 / all).toFixed(3)),
    };
    const waited = (who: keyof typeof waitBefore, pid: number, requests: number) =>
      Number(((runQueueMsOf(pid) - waitBefore[who]) / requests).toFixed(3));
    // Likewise, the time each event loop spent waiting for a core.
    const runQueueWait = {
      router_ms_per_router_request: waited("router", pids.router, routed),
      edge_ms_per_request: waited("edge", pids.edge, all),
      client_ms_per_request: waited("client", process.pid, all),
    };
    const summary = (name: PathName) => ({
      ttft: distribution(stats[name].ttft),
      total: distribution(stats[name].total),
      requests_per_s: Math.round(stats[name].ttft.totalCount / SECONDS),
      errors: stats[name].errors,
      error_samples: stats[name].errorSamples,
    });
    const diff = (a: Histogram, b: Histogram, percentile: number) =>
      ms(a.getValueAtPercentile(percentile) - b.getValueAtPercentile(percentile));
    const measured = {
      overhead_p50_ms: diff(stats.router.ttft, stats.direct.ttft, 50),
      overhead_p99_ms: diff(stats.router.ttft, stats.direct.ttft, 99),
      requests_per_s: Math.round(all / SECONDS),
      router: summary("router"),
      direct: summary("direct"),
      direct_new_voucher: summary("direct_new_voucher"),
      // The part of the overhead that is the edge taking a new voucher on each request.
      new_voucher_p50_ms: diff(stats.direct_new_voucher.ttft, stats.direct.ttft, 50),
      new_voucher_p99_ms: diff(stats.direct_new_voucher.ttft, stats.direct.ttft, 99),
      cpu,
      run_queue_wait: runQueueWait,
      load_average_at_start: loadAverage,
    };
    if (!load.alone) return { ...measured, one_stream_at_a_time: undefined };
    // One stream at a time: what the router adds when nothing queues behind other requests.
    const alone = await run(UNLOADED_SECONDS, 1);
    return {
      ...measured,
      one_stream_at_a_time: {
        duration_s: UNLOADED_SECONDS,
        router: distribution(alone.router.ttft),
        direct: distribution(alone.direct.ttft),
        direct_new_voucher: distribution(alone.direct_new_voucher.ttft),
        errors: names.reduce((sum, name) => sum + alone[name].errors, 0),
        overhead_p50_ms: diff(alone.router.ttft, alone.direct.ttft, 50),
        overhead_p99_ms: diff(alone.router.ttft, alone.direct.ttft, 99),
        new_voucher_p50_ms: diff(alone.direct_new_voucher.ttft, alone.direct.ttft, 50),
      },
    };
  } finally {
    await bed.stop();
    if (nodeOptions === undefined) delete process.env.NODE_OPTIONS;
    else process.env.NODE_OPTIONS = nodeOptions;
  }
}

// ------------------------------------------------------------------------------------ failover

interface Trial {
  seed: number;
  temperature: number;
  /** Content deltas received before the kill. */
  killed_after: number;
  reference_tokens: number;
  killed_edge: string;
  edges: string[];
  migrations: number;
  completed: boolean;
  identical: boolean;
  /** The edge had already answered when the kill landed: not a mid-stream failure. */
  late: boolean;
  error?: string;
}

async function measureFailover() {
  const workDir = mkdtempSync(path.join(tmpdir(), "tideway-bench-router-"));
  const bed = await startRouterbed({
    conn: await network.create(),
    root: ROOT,
    workDir,
    edges: [
      { region: "eu-west", overrides: { models: [SLOW_MODEL] } },
      { region: "eu-west", overrides: { models: [SLOW_MODEL] } },
      { region: "eu-west", overrides: { models: [SLOW_MODEL] } },
      { region: "eu-west", nat: true, overrides: { models: [SLOW_MODEL] } },
    ],
  });
  const trials: Trial[] = [];
  const restartMs: number[] = [];
  try {
    await untilRouterSees(bed);
    const url = `${bed.routers[0]!.url}/v1/chat/completions`;
    const auth = `Bearer ${bed.tenant.apiKey}`;
    const prompts = [
      "Tell me a story about the tides and the moon.",
      "Explain how an edge network serves inference.",
      "Write a short poem about the sea at night.",
      "Describe a harbour at dawn.",
    ];
    for (let i = 0; trials.filter((t) => !t.late).length < KILLS && i < 3 * KILLS; i++) {
      const seed = 1000 + i;
      const temperature = i % 2 === 0 ? 0.8 : 0;
      const body = JSON.stringify({
        model: EDGE_MODEL,
        messages: [{ role: "user", content: prompts[i % prompts.length] }],
        max_tokens: FAILOVER_MAX_TOKENS,
        temperature,
        seed,
        stream: true,
        stream_options: { include_usage: true },
      });
      // A session of its own per trial: the router sends both requests of a trial to one edge,
      // and the trials to every edge (the one behind NAT included) as their keys hash.
      const headers = { authorization: auth, [SESSION_HEADER]: `bench-trial-${i}` };
      const reference = await streamChat(url, headers, body);
      if (reference.error !== undefined) throw new Error(`trial ${i}: the uninterrupted request failed: ${reference.error}`);
      if (reference.tokens < 2) throw new Error(`trial ${i}: the answer has ${reference.tokens} token(s), too short to break`);
      const killAfter = 1 + Math.floor(Math.random() * (reference.tokens - 1));
      let victim: RouterbedEdge | undefined;
      let lookup: Promise<RouterbedEdge | undefined> | undefined;
      let kill: Promise<void> | undefined;
      const result = await streamChat(url, headers, body, (count) => {
        // Which edge serves it: the only one with a request outstanding (trials run one at a time).
        lookup ??= routerEdges(bed).then((view) => {
          const serving = view.find((e) => e.outstanding > 0);
          return bed.edges.find((e) => e.edgeId.toString() === serving?.edge_id);
        });
        if (count === killAfter)
          kill = lookup.then((edge) => {
            if (edge === undefined) throw new Error("no edge has the request outstanding");
            victim = edge;
            process.kill(edge.service.pid!, "SIGKILL");
          });
      });
      await kill;
      if (victim === undefined) throw new Error(`trial ${i}: nothing was killed (${result.tokens} tokens, ${result.error ?? "no error"})`);
      const edges = result.tideway?.edges ?? [];
      const trial: Trial = {
        seed,
        temperature,
        killed_after: killAfter,
        reference_tokens: reference.tokens,
        killed_edge: victim.edgeId.toString(),
        edges,
        migrations: result.tideway?.migrations ?? 0,
        completed: result.error === undefined,
        identical: result.error === undefined && result.text === reference.text,
        late: result.error === undefined && edges.length === 1 && edges[0] === victim.edgeId.toString(),
        ...(result.error === undefined ? {} : { error: result.error }),
      };
      trials.push(trial);
      console.log(
        `trial ${trials.length}: edge ${trial.killed_edge}${victim.nat ? " (NAT)" : ""} killed after ${killAfter}/${reference.tokens} tokens → ${
          trial.late
            ? "too late (already answered)"
            : trial.identical
              ? `identical via ${edges.join("→")}`
              : `FAILED: ${trial.error ?? "text differs"}`
        }`,
      );
      // Start it again ourselves at once (the supervisor's backoff grows with each crash in a row)
      // and wait until the router can use it.
      const restartStarted = Date.now();
      await victim.service.stop();
      victim.service = await bed.supervisor.start({ ...victim.service.spec, appendLog: true });
      await untilRouterSees(bed);
      restartMs.push(Date.now() - restartStarted);
    }
  } finally {
    await bed.stop();
  }
  const kills = trials.filter((t) => !t.late);
  const ok = kills.filter((t) => t.completed && t.identical).length;
  return {
    failover_completed_ratio: kills.length === 0 ? 0 : Number((ok / kills.length).toFixed(4)),
    kills: kills.length,
    completed: kills.filter((t) => t.completed).length,
    completed_and_identical: ok,
    late_kills: trials.length - kills.length,
    nat_kills: kills.filter((t) => bed.edges.find((e) => e.edgeId.toString() === t.killed_edge)?.nat === true).length,
    kills_per_edge: Object.fromEntries(
      bed.edges.map((e) => [e.edgeId.toString(), kills.filter((t) => t.killed_edge === e.edgeId.toString()).length]),
    ),
    restart_until_routable_ms_median: [...restartMs].sort((a, b) => a - b)[Math.floor(restartMs.length / 2)] ?? null,
    trials,
  };
}

// ------------------------------------------------------------------------------------ run

const peakOptions = { root: ROOT, simulationOnly: process.env.BENCH_ROUTER_SIMULATION_ONLY === "1" };
if (process.env.BENCH_ROUTER_PEAK_ONLY === "1") {
  const peak = await runPeakShaving(peakOptions);
  const previous = JSON.parse(readFileSync(OUT, "utf8")) as Record<string, unknown> & { goals?: Record<string, unknown> };
  writeFileSync(
    OUT,
    `${JSON.stringify({ ...previous, ...peak.keys, goals: { ...previous.goals, ...peak.goals }, peak_shaving: peak.details }, null, 2)}\n`,
  );
  console.log(`wrote ${path.relative(ROOT, OUT)} (peak shaving only; the other figures kept)`);
  process.exit(0);
}

const simulated = await startSimulatedInference(SIMULATED_TIMING);
const simulatedTokensPerSecond = Math.round((SIMULATED_BATCH * 1000) / SIMULATED_TIMING.decodeMs);
// A chat as an app sends it: a system prompt of a few hundred tokens, then the question.
const realisticMessages: ReferenceMessage[] = [
  {
    role: "system",
    content: Array.from(
      { length: 6 },
      () => "You are the assistant of a harbour office. Answer in plain words, briefly, and say when you do not know.",
    ).join(" "),
  },
  { role: "user", content: "When is high tide tomorrow, and can a small boat leave before it?" },
];
const realisticPromptTokens = countPromptTokens(realisticMessages);
const realisticStreamMs =
  SIMULATED_TIMING.prefillMs +
  SIMULATED_TIMING.prefillMsPerToken * realisticPromptTokens +
  (REALISTIC_MAX_TOKENS - 1) * SIMULATED_TIMING.decodeMs;
let realistic: Awaited<ReturnType<typeof measureOverhead>>;
try {
  realistic = await measureOverhead({
    name: "realistic",
    model: edgeModel({ type: "openai", baseUrl: simulated.url, tokensPerSecond: simulatedTokensPerSecond }),
    capacity: simulatedTokensPerSecond,
    messages: realisticMessages,
    maxTokens: REALISTIC_MAX_TOKENS,
    staggerMs: realisticStreamMs / WORKERS,
    alone: false,
  });
} finally {
  await simulated.close();
}
const saturated = await measureOverhead({
  name: "saturated",
  model: TINY_MODEL,
  messages: [{ role: "user", content: "Say hello to the Tideway edge network." }],
  maxTokens: SATURATED_MAX_TOKENS,
  staggerMs: 0,
  alone: true,
});
for (const [name, o] of [
  ["realistic", realistic],
  ["saturated", saturated],
] as const) {
  console.log(
    `overhead (${name}): router p50 ${o.router.ttft.p50_ms} ms / direct ${o.direct.ttft.p50_ms} ms; p99 ${o.router.ttft.p99_ms} / ${o.direct.ttft.p99_ms} ms`,
  );
}
const failover = await measureFailover();
const peak = await runPeakShaving(peakOptions);

const workload = {
  workers: WORKERS,
  warmup_s: WARMUP_SECONDS,
  duration_s: SECONDS,
  mix: "each worker picks router, direct or direct with a new voucher at random per request",
  ttft: "client-side, from send to the first non-empty content delta (fetch, same code for every path)",
};
const result = {
  overhead_p50_ms: realistic.overhead_p50_ms,
  overhead_p99_ms: realistic.overhead_p99_ms,
  failover_completed_ratio: failover.failover_completed_ratio,
  ...peak.keys,
  goals: { overhead_p50_ms: 2, overhead_p99_ms: 10, failover_completed_ratio: 1, ...peak.goals },
  overhead: {
    ...realistic,
    workload: {
      ...workload,
      max_tokens: REALISTIC_MAX_TOKENS,
      prompt_tokens: realisticPromptTokens,
      worker_start_stagger_ms: Number((realisticStreamMs / WORKERS).toFixed(1)),
      edge_model: { type: "openai", tokensPerSecond: simulatedTokensPerSecond },
      upstream:
        "a simulated OpenAI-compatible server in the benchmark's process: first token after prefillMs + prefillMsPerToken × prompt tokens, then one every decodeMs, from timers",
      upstream_timing: SIMULATED_TIMING,
    },
    saturated: {
      ...saturated,
      what: `CPU contention: tokens cost nothing to generate, so the workers send about ${saturated.requests_per_s} requests/s and the 2 cores queue every step of every request`,
      workload: { ...workload, max_tokens: SATURATED_MAX_TOKENS, edge_model: TINY_MODEL.backend },
    },
  },
  failover: {
    ...failover,
    workload: {
      max_tokens: FAILOVER_MAX_TOKENS,
      edges: "3 public + 1 behind NAT (link)",
      routing: "the default policy; each trial its own x-tideway-session (its edge by rendezvous hashing)",
      edge_model: SLOW_MODEL.backend,
    },
  },
  peak_shaving: peak.details,
  machine: { cores: availableParallelism(), cpu: cpus()[0]?.model ?? "unknown", node: process.version },
  date: new Date().toISOString(),
};

const mark = (ok: boolean) => (ok ? "✓" : "✗");
console.log(
  `\nrouter: ${WORKERS} concurrent streams, router and direct interleaved, ${SECONDS} s each load\n` +
    `realistic: ${REALISTIC_MAX_TOKENS} tokens from a simulated server (prefill ${SIMULATED_TIMING.prefillMs} ms + ${SIMULATED_TIMING.prefillMsPerToken} ms × ${realisticPromptTokens} prompt tokens, ${SIMULATED_TIMING.decodeMs} ms a token) through the edge's proxy backend\n` +
    `saturated: ${SATURATED_MAX_TOKENS} tokens from a tiny reference model (CPU contention)\n`,
);
console.log("| load | path | requests | req/s | TTFT p50 ms | TTFT p90 ms | TTFT p99 ms | TTFT max ms | errors |");
console.log("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
for (const [load, o] of [
  ["realistic", realistic],
  ["saturated", saturated],
] as const) {
  for (const name of ["direct", "direct_new_voucher", "router"] as const) {
    const p = o[name];
    console.log(
      `| ${load} | ${name} | ${p.ttft.count} | ${p.requests_per_s} | ${p.ttft.p50_ms} | ${p.ttft.p90_ms} | ${p.ttft.p99_ms} | ${p.ttft.max_ms} | ${p.errors} |`,
    );
  }
}
const alone = saturated.one_stream_at_a_time!;
console.log(
  `\none stream at a time: TTFT p50 router ${alone.router.p50_ms} ms, direct ${alone.direct.p50_ms} ms, direct with a new voucher ${alone.direct_new_voucher.p50_ms} ms (overhead p50 ${alone.overhead_p50_ms} ms, p99 ${alone.overhead_p99_ms} ms)`,
);
for (const [load, o] of [
  ["realistic", realistic],
  ["saturated", saturated],
] as const) {
  console.log(
    `CPU per request (${load}, ${o.requests_per_s} req/s): router ${o.cpu.router_ms_per_router_request} ms, edge ${o.cpu.edge_ms_per_request} ms, client ${o.cpu.client_ms_per_request} ms${load === "realistic" ? " (with the simulated server, in the same process)" : ""}; waiting for a core: router ${o.run_queue_wait.router_ms_per_router_request} ms, edge ${o.run_queue_wait.edge_ms_per_request} ms, client ${o.run_queue_wait.client_ms_per_request} ms (load average ${o.load_average_at_start})`,
  );
}
console.log(`\n| figure | result | goal |\n| --- | ---: | ---: |`);
console.log(`| overhead_p50_ms | ${result.overhead_p50_ms} | ≤ 2 ${mark(result.overhead_p50_ms <= 2)} |`);
console.log(`| overhead_p99_ms | ${result.overhead_p99_ms} | ≤ 10 ${mark(result.overhead_p99_ms <= 10)} |`);
console.log(`| overhead p50 / p99, saturated | ${saturated.overhead_p50_ms} / ${saturated.overhead_p99_ms} | |`);
console.log(
  `| failover_completed_ratio | ${result.failover_completed_ratio} (${failover.completed_and_identical}/${failover.kills} kills, ${failover.nat_kills} of a NAT edge) | 1.0 ${mark(result.failover_completed_ratio === 1)} |`,
);
mkdirSync(path.dirname(OUT), { recursive: true });
writeFileSync(OUT, `${JSON.stringify(result, null, 2)}\n`);
console.log(`wrote ${path.relative(ROOT, OUT)}`);
