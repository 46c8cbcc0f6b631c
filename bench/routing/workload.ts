// The routing benchmark's scenarios as data, and a seeded generator of their arrivals. The
// simulation (simulate.ts) and the loopback harness run the same definitions; `scenario(name,
// { scale })` shrinks the edge set and the request rates together, so a loopback run on two
// cores keeps the load levels of the full-size simulation.
//
// Shapes (sources in bench/README.md):
// - Lengths: prompt and output tokens are lognormal, the shape of ShareGPT conversations (prompt
//   median 120, output median 200 tokens at `tokenScale` 1), clamped; `tokenScale` shrinks both.
// - Arrivals: Poisson, or Gamma interarrival times with a coefficient of variation above 1 (the
//   burstier shape measured in production LLM traces).
// - Shared prefixes: requests of one prefix group share a long prompt prefix (a system prompt or
//   document), Mooncake-style; group popularity is Zipf-like with one group taking `hotShare`.
// - Conversations: open loop. A conversation's next turn arrives a fixed think time after the
//   previous turn's INTENDED end (its arrival plus its nominal service time on an idle edge at a
//   full batch), whether or not that turn was served in time; its prompt is the previous prompt
//   plus the previous answer plus a new user message, and its prefix (key: the conversation) is
//   everything before the new message, so an edge that served the previous turn has it cached.
//   Its requests carry the conversation as their session (affinity key); in prefix groups, the
//   group's prefix is the cache and affinity key instead, and the history is prefilled anew.
//
// Edges: capacities 1×, 2×, 4× in turn, regions eu/us/ap (RTT from the router 5/40/90 ms); a
// k× edge has k× the sequence slots and k× the prefill rate of a 1× one, and the same step time.
import type { EngineSpec } from "./engine.ts";

export const SCENARIO_NAMES = ["steady50", "steady70", "steady85", "surge", "kill", "hotspot"] as const;
export type ScenarioName = (typeof SCENARIO_NAMES)[number];

export type Priority = "interactive" | "batch";

export interface Arrival {
  /** Index in arrival order. */
  id: number;
  /** ms from the scenario's start. */
  at: number;
  tenant: string;
  priority: Priority;
  conversation: string;
  /** 0-based turn within the conversation. */
  turn: number;
  promptTokens: number;
  outputTokens: number;
  prefix?: { key: string; tokens: number };
  /** What the router's session affinity hashes: the session (a conversation) or the shared prefix's hash. */
  affinityKey?: string;
}

export interface EdgeDef {
  key: string;
  region: "eu" | "us" | "ap";
  rttMs: number;
  /** Capacity multiple: 1, 2 or 4. */
  size: number;
  engine: EngineSpec;
}

export interface EdgeEvent {
  at: number;
  /** Index into `edges`. */
  edge: number;
  kind: "kill" | "slow";
  /** For "slow": the factor. */
  factor?: number;
  /** For "slow": the edge keeps reporting itself idle (inFlight 0, queued 0). */
  reportsIdle?: boolean;
}

/** A period of the offered rate, requests/s (surge: users × per-user rate). */
export interface RatePhase {
  fromMs: number;
  toMs: number;
  /** Rate at `fromMs` and at `toMs`; linear in between (a ramp). */
  rate: [number, number];
}

export interface Scenario {
  name: ScenarioName;
  seed: number;
  edges: EdgeDef[];
  /** Arrivals come in [0, durationMs). */
  durationMs: number;
  /** Offered load as a share of the edges' capacity (steady phases). */
  load: number;
  /** Interarrival shape: 1 = Poisson; above 1 = Gamma with that coefficient of variation. */
  arrivalCv: number;
  /** Request rate over time (for conversations: rate of conversation starts). */
  phases: RatePhase[];
  /** Share of requests in the batch class. */
  batchShare: number;
  tenants: number;
  tokenScale: number;
  /** Start and end of the surge, ms (surge only). */
  surge?: { startMs: number; fullMs: number; endMs: number; baseUsers: number; peakUsers: number };
  /** Conversations: turns and think time (kill, hotspot). */
  conversations?: { meanTurns: number; maxTurns: number; thinkMs: number };
  /** Shared prefix groups (hotspot). */
  prefixes?: { groups: number; hotShare: number; tokens: number };
  events: EdgeEvent[];
  /** How long a request may wait for its start (the scheduler's deadline), ms, by class. */
  deadlineMs: Record<Priority, number>;
  /** A client gives up when its first token has not come this long after it asked, ms. */
  clientTimeoutMs: number;
}

export interface ScenarioOptions {
  /** Edge count and request rates × scale (1 = the simulation's size). Default 1. */
  scale?: number;
  seed?: number;
  /** Token lengths × tokenScale. Default 0.25. */
  tokenScale?: number;
  /** Durations × timeScale (the surge's 10 s ramp and 2 min hold included). Default 1. */
  timeScale?: number;
}

// Seeded randomness --------------------------------------------------------------------------

/**
 * mulberry32 (Tommy Ettinger's 32-bit generator): tiny, fast, and good enough for workload
 * shapes; one seed gives one stream on every platform. Returns floats in [0, 1).
 */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A standard normal draw (Box–Muller). */
function normal(random: () => number): number {
  const u = 1 - random();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
}

export function exponential(random: () => number, mean: number): number {
  return -Math.log(1 - random()) * mean;
}

/** A Gamma(shape, scale) draw (Marsaglia and Tsang; shape < 1 by the boost u^(1/shape)). */
export function gamma(random: () => number, shape: number, scale: number): number {
  if (shape < 1) return gamma(random, shape + 1, scale) * (1 - random()) ** (1 / shape);
  const d = shape - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    let x: number;
    let v: number;
    do {
      x = normal(random);
      v = 1 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const u = 1 - random();
    if (Math.log(u) < 0.5 * x * x + d - d * v + d * Math.log(v)) return d * v * scale;
  }
}

/** An interarrival time of mean `mean` with coefficient of variation `cv` (1: exponential). */
export function interarrival(random: () => number, mean: number, cv: number): number {
  if (cv === 1) return exponential(random, mean);
  const shape = 1 / (cv * cv);
  return gamma(random, shape, mean / shape);
}

function lognormalInt(random: () => number, median: number, sigma: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, Math.round(median * Math.exp(sigma * normal(random)))));
}

// Edges and capacity ---------------------------------------------------------------------------

const REGIONS = [
  { region: "eu", rttMs: 5 },
  { region: "us", rttMs: 40 },
  { region: "ap", rttMs: 90 },
] as const;
const SIZES = [1, 2, 4];
/** A 1× edge. */
export const BASE_ENGINE: EngineSpec = {
  maxSequences: 8,
  prefillTokensPerSecond: 6000,
  decodeMs: 20,
  batchSlowdown: 1,
  prefixCacheTokens: 3000,
};

/** `count` edges: sizes 1×/2×/4× in turn, regions in turn every three edges (each region gets every size). */
export function edgeSet(count: number, base: EngineSpec = BASE_ENGINE): EdgeDef[] {
  return Array.from({ length: count }, (_, i) => {
    const size = SIZES[i % 3];
    const { region, rttMs } = REGIONS[Math.floor(i / 3) % 3];
    return {
      key: String(i + 1),
      region,
      rttMs,
      size,
      engine: {
        ...base,
        maxSequences: base.maxSequences * size,
        prefillTokensPerSecond: base.prefillTokensPerSecond * size,
        prefixCacheTokens: (base.prefixCacheTokens ?? 0) * size,
      },
    };
  });
}

/** A full-batch step of `spec`, ms: the step time when the edge is saturated. */
export const fullStepMs = (spec: EngineSpec) => spec.decodeMs * (1 + (spec.batchSlowdown * (spec.maxSequences - 1)) / spec.maxSequences);

/** How long a request holds a slot on a saturated edge, ms (its prefill there, then every step). */
export function holdMs(spec: EngineSpec, promptTokens: number, outputTokens: number): number {
  const factor = 1 + spec.batchSlowdown;
  return ((promptTokens * 1000) / spec.prefillTokensPerSecond) * factor + Math.max(0, outputTokens - 1) * fullStepMs(spec);
}

/**
 * Requests per second `edges` serve at most with requests of the given mean lengths: each edge's
 * slots over the hold time, or its prefill throughput when prompts are the bottleneck.
 */
export function capacityRps(edges: readonly EdgeDef[], meanPrompt: number, meanOutput: number): number {
  let total = 0;
  for (const { engine } of edges) {
    const bySlots = (engine.maxSequences * 1000) / holdMs(engine, meanPrompt, meanOutput);
    const byPrefill = engine.prefillTokensPerSecond / ((1 + engine.batchSlowdown) * Math.max(1, meanPrompt));
    total += Math.min(bySlots, byPrefill);
  }
  return total;
}

// Scenarios ------------------------------------------------------------------------------------

/** How often an active user of the surge asks, on average: a chat turn every 10 s of reading and typing. */
export const USER_REQUESTS_PER_SECOND = 0.1;

/** Edges at scale 1, per scenario (the simulation's size). */
const EDGES: Record<ScenarioName, number> = { steady50: 48, steady70: 48, steady85: 48, surge: 64, kill: 48, hotspot: 48 };

/** A scenario's definition; rates follow from its edges' capacity and load. */
export function scenario(name: ScenarioName, options: ScenarioOptions = {}): Scenario {
  const scale = options.scale ?? 1;
  const tokenScale = options.tokenScale ?? 0.25;
  const timeScale = options.timeScale ?? 1;
  const seed = options.seed ?? 1;
  const edges = edgeSet(Math.max(3, Math.round(EDGES[name] * scale)));
  const base: Scenario = {
    name,
    seed,
    edges,
    durationMs: 300_000 * timeScale,
    load: 0.7,
    arrivalCv: 1,
    phases: [],
    batchShare: 0,
    tenants: 8,
    tokenScale,
    events: [],
    deadlineMs: { interactive: 1500, batch: 30_000 },
    clientTimeoutMs: 60_000,
  };
  const constant = (def: Scenario): Scenario => {
    const { prompt, output, turns } = meanShape(def);
    const rps = def.load * capacityRps(def.edges, prompt, output);
    return { ...def, phases: [{ fromMs: 0, toMs: def.durationMs, rate: [rps / turns, rps / turns] }] };
  };
  switch (name) {
    case "steady50":
    case "steady70":
    case "steady85":
      return constant({ ...base, load: Number(name.slice(6)) / 100, arrivalCv: 2, durationMs: 240_000 * timeScale });
    case "surge": {
      const startMs = 60_000 * timeScale;
      const fullMs = startMs + 10_000 * timeScale;
      const endMs = fullMs + 120_000 * timeScale;
      const durationMs = endMs + 90_000 * timeScale;
      const baseUsers = Math.round(300 * scale);
      const peakUsers = Math.round(10_000 * scale);
      const baseRate = baseUsers * USER_REQUESTS_PER_SECOND;
      const peakRate = peakUsers * USER_REQUESTS_PER_SECOND;
      const def: Scenario = { ...base, batchShare: 0.2, durationMs, surge: { startMs, fullMs, endMs, baseUsers, peakUsers } };
      const { prompt, output } = meanShape(def);
      def.load = baseRate / capacityRps(edges, prompt, output);
      return {
        ...def,
        phases: [
          { fromMs: 0, toMs: startMs, rate: [baseRate, baseRate] },
          { fromMs: startMs, toMs: fullMs, rate: [baseRate, peakRate] },
          { fromMs: fullMs, toMs: endMs, rate: [peakRate, peakRate] },
          { fromMs: endMs, toMs: durationMs, rate: [baseRate, baseRate] },
        ],
      };
    }
    case "kill": {
      // Two edges die mid-stream (a 4× and a 2×), a third slows 5× and keeps reporting itself idle.
      const pick = (size: number, nth: number) => edges.map((e, i) => ({ e, i })).filter(({ e }) => e.size === size)[nth].i;
      const killAt = 90_000 * timeScale;
      return constant({
        ...base,
        load: 0.6,
        durationMs: 240_000 * timeScale,
        conversations: { meanTurns: 4, maxTurns: 10, thinkMs: 3000 },
        events: [
          { at: killAt, edge: pick(4, 0), kind: "kill" },
          { at: killAt + 2000 * timeScale, edge: pick(2, 0), kind: "kill" },
          { at: killAt + 10_000 * timeScale, edge: pick(4, 1), kind: "slow", factor: 5, reportsIdle: true },
        ],
      });
    }
    case "hotspot":
      return constant({
        ...base,
        load: 0.7,
        durationMs: 240_000 * timeScale,
        conversations: { meanTurns: 3, maxTurns: 8, thinkMs: 3000 },
        prefixes: { groups: 64, hotShare: 0.3, tokens: 2000 },
      });
  }
}

export function scenarios(options: ScenarioOptions = {}): Scenario[] {
  return SCENARIO_NAMES.map((name) => scenario(name, options));
}

// Requests -------------------------------------------------------------------------------------

interface Shape {
  prompt: () => number;
  output: () => number;
  /** A new user message in a conversation. */
  message: () => number;
}

function shapes(random: () => number, tokenScale: number): Shape {
  const s = (n: number) => Math.max(1, Math.round(n * tokenScale));
  return {
    prompt: () => lognormalInt(random, s(120), 1.0, s(8), s(4096)),
    output: () => lognormalInt(random, s(200), 0.9, 1, s(1600)),
    message: () => lognormalInt(random, s(60), 0.8, s(4), s(1024)),
  };
}

/** Index of the prefix group: group 0 takes `hotShare`, the rest share the remainder Zipf-like (1/rank). */
function prefixGroup(random: () => number, groups: number, hotShare: number, harmonic: number): number {
  if (random() < hotShare) return 0;
  let u = random() * harmonic;
  for (let g = 1; g < groups; g++) {
    u -= 1 / g;
    if (u <= 0) return g;
  }
  return groups - 1;
}

/** One conversation's turns (a single request outside conversation scenarios), from `startMs`. */
function conversationTurns(
  def: Scenario,
  random: () => number,
  shape: Shape,
  index: number,
  startMs: number,
  harmonic: number,
): Omit<Arrival, "id">[] {
  const conversation = `c${index}`;
  const tenant = `t${index % def.tenants}`;
  const priority: Priority = random() < def.batchShare ? "batch" : "interactive";
  const turns =
    def.conversations === undefined
      ? 1
      : Math.min(def.conversations.maxTurns, 1 + Math.floor(exponential(random, def.conversations.meanTurns - 1)));
  let group: { key: string; tokens: number } | undefined;
  if (def.prefixes !== undefined) {
    const g = prefixGroup(random, def.prefixes.groups, def.prefixes.hotShare, harmonic);
    group = { key: `p${g}`, tokens: Math.max(1, Math.round(def.prefixes.tokens * def.tokenScale)) };
  }
  const nominal = def.edges[0].engine;
  const out: Omit<Arrival, "id">[] = [];
  let at = startMs;
  let history = 0;
  for (let turn = 0; turn < turns; turn++) {
    const message = turn === 0 && group === undefined ? shape.prompt() : shape.message();
    const outputTokens = shape.output();
    const promptTokens = (group?.tokens ?? 0) + history + message;
    // One cache key per request: the group's shared prefix when there is one, else the
    // conversation's history (the edge keeps the longest prefix computed under a key).
    const prefix = group ?? (history > 0 ? { key: conversation, tokens: history } : undefined);
    const affinityKey = group?.key ?? (def.conversations === undefined ? undefined : conversation);
    out.push({
      at,
      tenant,
      priority,
      conversation,
      turn,
      promptTokens,
      outputTokens,
      ...(prefix === undefined ? {} : { prefix }),
      ...(affinityKey === undefined ? {} : { affinityKey }),
    });
    history += message + outputTokens;
    at += holdMs(nominal, promptTokens, outputTokens) + (def.conversations?.thinkMs ?? 0);
  }
  return out;
}

/** Mean prompt and output tokens per request and mean requests per conversation, from a sample. */
export function meanShape(def: Scenario): { prompt: number; output: number; turns: number } {
  const random = mulberry32(def.seed ^ 0x5eed);
  const shape = shapes(random, def.tokenScale);
  const harmonic = harmonicOf(def);
  let prompt = 0;
  let output = 0;
  let requests = 0;
  const samples = 4000;
  for (let i = 0; i < samples; i++)
    for (const turn of conversationTurns(def, random, shape, i, 0, harmonic)) {
      prompt += turn.promptTokens;
      output += turn.outputTokens;
      requests += 1;
    }
  return { prompt: prompt / requests, output: output / requests, turns: requests / samples };
}

function harmonicOf(def: Scenario): number {
  let h = 0;
  for (let g = 1; g < (def.prefixes?.groups ?? 1); g++) h += 1 / g;
  return h;
}

function rateAt(phases: readonly RatePhase[], t: number): number {
  for (const p of phases)
    if (t >= p.fromMs && t < p.toMs) return p.rate[0] + ((p.rate[1] - p.rate[0]) * (t - p.fromMs)) / (p.toMs - p.fromMs);
  return 0;
}

/**
 * The scenario's requests in arrival order. Starts (of conversations, or single requests) follow
 * the rate phases: Poisson/Gamma at the phase's rate, thinned through ramps; later turns follow
 * their conversation. Deterministic in `def` (its seed).
 */
export function generateArrivals(def: Scenario): Arrival[] {
  const random = mulberry32(def.seed);
  const shape = shapes(random, def.tokenScale);
  const harmonic = harmonicOf(def);
  const maxRate = Math.max(...def.phases.map((p) => Math.max(p.rate[0], p.rate[1])));
  const all: Omit<Arrival, "id">[] = [];
  let t = 0;
  let index = 0;
  if (maxRate > 0)
    for (;;) {
      t += interarrival(random, 1000 / maxRate, def.arrivalCv);
      if (t >= def.durationMs) break;
      // Thinning: a candidate start at the peak rate is kept with probability rate(t) / peak.
      if (random() * maxRate >= rateAt(def.phases, t)) continue;
      for (const turn of conversationTurns(def, random, shape, index, t, harmonic)) if (turn.at < def.durationMs) all.push(turn);
      index += 1;
    }
  all.sort((a, b) => a.at - b.at);
  return all.map((a, id) => ({ id, ...a }));
}
