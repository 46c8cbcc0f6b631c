// The routing benchmark's discrete-event simulation: a scenario's arrivals (workload.ts) through
// the router's REAL scheduling code — createScheduler (router/schedule/), createPolicy
// (router/policy/) and the per-edge learning (router/dispatch/edgeStats.ts) — to engines
// (engine.ts) standing for the edges, all on one virtual clock. Minutes of traffic on 64 edges
// take seconds, and the same seed gives the same result.
//
//   const result = simulateScenario(scenario("steady85"), "tideway");   // one policy
//   const all = runSimulations();                                       // every scenario × policy + oracle
//
// What is modelled, and how:
// - Modes: "tideway" runs as the router runs it — the admission queue (mode "queue") and the
//   policy wrapped in session affinity (router/service.ts); the baselines run in mode "direct"
//   (the policy's choice at once, whatever the edge's load), as usual routers do.
// - Network: edge i is `rttMs` away. A request granted at t reaches the engine at t + RTT/2; a
//   token the engine emits at t reaches the router, and the client beside it, at t + RTT/2; the
//   end of a stream and an edge's failure reach the router RTT/2 after they happen, and only then
//   free the slot, feed the learned rates (recordCompletion) and start a failover.
// - Load reports: every edge reports every `reportIntervalMs` (phases spread), {inFlight: running,
//   queued: its own queue, saturation, maxConcurrent: its slots, tokensPerSecond}; received RTT/2
//   later (recordLoadReport), then the scheduler pumps. An edge that "reports itself idle" sends
//   inFlight 0, queued 0. A killed edge stops reporting, and its link drops RTT/2 after the kill
//   (it leaves the candidates).
// - Failover: a stream cut by a dying edge is submitted again (`admitted: true`, the edges tried
//   excluded), resuming from the tokens delivered: its prompt grows by them and its output
//   shrinks by them; up to `maxAttempts` attempts (the router's default 3). A stream that never
//   restarts is lost.
// - Timeouts and breakers, as the router has them (router/dispatch/chat.ts, breaker.ts, pool.ts):
//   an attempt whose first token has not reached the router `stallTimeoutMs` after the edge's
//   headers did (RTT after it was sent) is cut and fails over like a broken stream. Only the first
//   token is timed: a decode step is never near the timeout, and a timer per token would cost the
//   simulation more than it models. Each edge has the router's breaker (createBreaker): consecutive
//   failures open it, an open edge is no candidate, and the pool's probe every `probeIntervalMs`
//   closes a half-open breaker of a live edge (an edge busy with inference still answers probes).
// - Overhead: `overheadMs` is added to every request's way to the engine: what a real router and
//   edge spend on a request beyond the network (payment, parsing, proxying), which the loopback run
//   measures (loopback.ts) so that the simulation of a loopback run can include it; 0 at full scale.
// - Clients: one that sees no first token `clientTimeoutMs` after asking gives up (lost): in
//   direct mode a surge piles onto edges' own queues, and those clients time out.
// - Over capacity: a request that reaches an engine with every slot taken waits in the edge's
//   own queue; counted, with the edges this ever happened to.
import {
  recordCompletion,
  recordDispatch,
  recordLoadReport,
  recordRtt,
  edgeCandidate,
  newEdgeStats,
} from "../../router/dispatch/edgeStats.ts";
import type { EdgeIdentity, EdgeStats } from "../../router/dispatch/edgeStats.ts";
import { type Breaker, createBreaker } from "../../router/dispatch/breaker.ts";
import { createPolicy, POLICY_NAMES } from "../../router/policy/index.ts";
import type { EdgeCandidate } from "../../router/policy/types.ts";
import { createScheduler, type Grant, type SchedulingMode } from "../../router/schedule/scheduler.ts";
import { createEngine, type Engine } from "./engine.ts";
import { latencyHistogram, type RequestRecord, type RunSummary, recordMs, summarize } from "./metrics.ts";
import { fluidShedBound, runOracle } from "./oracle.ts";
import { createVirtualClock } from "./virtualClock.ts";
import {
  type Arrival,
  type EdgeDef,
  fullStepMs,
  generateArrivals,
  mulberry32,
  type Scenario,
  SCENARIO_NAMES,
  type ScenarioName,
  scenario as defineScenario,
  type ScenarioOptions,
} from "./workload.ts";

const MODEL = "bench-model";
const PRICE = { inputPerToken: 1n, outputPerToken: 1n };
/** The router's defaults (router/config.ts, router/dispatch/pool.ts). */
const PEAK_DECAY_MS = 10_000;
const AFFINITY_EPSILON = 0.25;
const MAX_ATTEMPTS = 3;
const STALL_TIMEOUT_MS = 10_000;
const BREAKER_FAILURES = 3;
const BREAKER_OPEN_MS = 5_000;
const PROBE_INTERVAL_MS = 5_000;
/** A slowed edge's traffic share is measured from this long after it slowed. */
const SLOWED_SHARE_AFTER_MS = 30_000;

export interface SimulateOptions {
  /** Scheduler mode; default "queue" for tideway, "direct" for the baselines. */
  mode?: SchedulingMode;
  /** Seed of the policy's and scheduler's random source. Default: the scenario's seed. */
  seed?: number;
  /** The scenario's arrivals, when already generated (they are the same for every policy). */
  arrivals?: readonly Arrival[];
  /** Default 1000 ms. */
  reportIntervalMs?: number;
  /** Session affinity around the policy, keying requests as the router does. Default: for tideway only. */
  affinity?: boolean;
  /**
   * Whether edges send load reports (default true: edges linked to the router over WebSocket do;
   * edges it reaches over HTTP only, as in the loopback run, do not).
   */
  loadReports?: boolean;
  /** Added to every request's way from the router to the engine, ms (default 0). */
  overheadMs?: number;
  /** The capacity an edge declares (default: its output tokens/s at a full batch). */
  declaredCapacity?: (edge: EdgeDef) => number;
}

export interface PolicyRun extends RunSummary {
  policy: string;
  mode: SchedulingMode | "oracle";
  /** Streams cut by a failing edge and submitted again (failovers). */
  resumed: number;
  /** 429s by class and the scheduler's reason, as "interactive/deadline" (the oracle's are all "deadline"). */
  shedReasons: Record<string, number>;
  /** Wall-clock time the run took, ms. */
  wallMs: number;
}

interface SimEdge {
  index: number;
  identity: EdgeIdentity;
  rttMs: number;
  engine: Engine;
  stats: EdgeStats;
  /** The router still has a link to it. */
  linked: boolean;
  breaker: Breaker;
  reportsIdle: boolean;
  queuedEver: boolean;
  occupancySum: number;
  occupancySamples: number;
  /** Output tokens emitted since its last report (for tokensPerSecond). */
  tokensSinceReport: number;
}

interface Flight {
  arrival: Arrival;
  attempts: number;
  tried: Set<string>;
  /** Tokens delivered to the client so far. */
  delivered: number;
  /** When the client saw its last token (ms), or undefined before the first. */
  lastTokenAt: number | undefined;
  ttftMs: number | undefined;
  settled: boolean;
  cancelTimeout: () => void;
  /** Stops the attempt running on an engine (the client left), while one runs. */
  stop: (() => void) | undefined;
}

/** Runs one policy over one scenario. */
export function simulateScenario(scenario: Scenario, policyName: string, options: SimulateOptions = {}): PolicyRun {
  const wallStart = performance.now();
  const mode = options.mode ?? (policyName === "tideway" ? "queue" : "direct");
  const arrivals = options.arrivals ?? generateArrivals(scenario);
  const reportIntervalMs = options.reportIntervalMs ?? 1000;
  const loadReports = options.loadReports ?? true;
  const overheadMs = options.overheadMs ?? 0;
  const clock = createVirtualClock();
  const random = mulberry32(options.seed ?? scenario.seed);
  // Tideway runs as the router runs it, in session affinity; the baselines as usual routers do
  // (the router's `routing.affinity: false`).
  const keyed = options.affinity ?? policyName === "tideway";
  const policy = createPolicy(policyName, { random, ...(keyed ? { affinity: { epsilon: AFFINITY_EPSILON } } : {}) });

  const edges: SimEdge[] = scenario.edges.map((def, index) => {
    const stats = newEdgeStats();
    recordRtt(stats, def.rttMs);
    return {
      index,
      identity: {
        key: def.key,
        edgeId: BigInt(index + 1),
        region: def.region,
        capacity: options.declaredCapacity?.(def) ?? Math.round((def.engine.maxSequences * 1000) / fullStepMs(def.engine)),
      },
      rttMs: def.rttMs,
      engine: createEngine(def.engine, clock),
      stats,
      linked: true,
      breaker: createBreaker({ failures: BREAKER_FAILURES, openMs: BREAKER_OPEN_MS, now: () => clock.now() }),
      reportsIdle: false,
      queuedEver: false,
      occupancySum: 0,
      occupancySamples: 0,
      tokensSinceReport: 0,
    };
  });
  const byKey = new Map(edges.map((e) => [e.identity.key, e]));
  // The scheduler asks for the candidates several times per request; they change only with time
  // and with what the router learns, so one snapshot serves until either moves.
  let learned = 0;
  let snapshot: { at: number; learned: number; candidates: EdgeCandidate[] } | undefined;

  const scheduler = createScheduler({
    clock,
    policy,
    mode,
    random,
    edges: {
      candidates() {
        const now = clock.now();
        if (snapshot?.at === now && snapshot.learned === learned) return snapshot.candidates;
        const candidates: EdgeCandidate[] = [];
        for (const e of edges)
          if (e.linked && e.breaker.allows()) candidates.push(edgeCandidate(e.identity, e.stats, PRICE, now, PEAK_DECAY_MS));
        snapshot = { at: now, learned, candidates };
        return candidates;
      },
      dispatched(candidate) {
        const edge = byKey.get(candidate.key) as SimEdge;
        recordDispatch(edge.stats);
        edge.breaker.take();
        learned += 1;
      },
    },
  });

  const records: RequestRecord[] = [];
  const itl = latencyHistogram();
  let overCapacityRequests = 0;
  let resumed = 0;
  const shedReasons: Record<string, number> = {};
  let settledCount = 0;
  let arrivalsDone = false;
  const slowEvent = scenario.events.find((e) => e.kind === "slow");
  const shareFrom = slowEvent === undefined ? Number.POSITIVE_INFINITY : slowEvent.at + SLOWED_SHARE_AFTER_MS;
  let grantsAfter = 0;
  let grantsToSlowedAfter = 0;

  function settle(flight: Flight, record: Omit<RequestRecord, "arrival">): void {
    if (flight.settled) return;
    flight.settled = true;
    flight.cancelTimeout();
    records.push({ arrival: flight.arrival, ...record });
    settledCount += 1;
  }

  function submit(flight: Flight): void {
    const a = flight.arrival;
    const resumed = flight.attempts > 0;
    const promptTokens = a.promptTokens + flight.delivered;
    const outputTokens = a.outputTokens - flight.delivered;
    flight.attempts += 1;
    const ticket = scheduler.submit(
      {
        id: String(a.id),
        tenant: a.tenant,
        weight: 1,
        priority: a.priority,
        deadline: a.at + scenario.deadlineMs[a.priority],
        cost: promptTokens + outputTokens,
        route: {
          model: MODEL,
          promptTokens,
          maxTokens: outputTokens,
          // As the router keys them: by the session a conversation or prefix group sends; a lone
          // request has none.
          ...(keyed && a.affinityKey !== undefined ? { affinityKey: a.affinityKey } : {}),
        },
        ...(resumed ? { admitted: true, exclude: flight.tried } : {}),
      },
      (outcome) => {
        if (outcome.kind === "shed" && !resumed) {
          const key = `${a.priority}/${outcome.reason}`;
          shedReasons[key] = (shedReasons[key] ?? 0) + 1;
          settle(flight, { outcome: "shed", shedAfterMs: clock.now() - a.at });
        } else if (outcome.kind !== "granted") settle(flight, { outcome: "lost" });
        else start(flight, outcome.grant, promptTokens, outputTokens);
      },
    );
    if (!resumed && !flight.settled) {
      // The client gives up on a first token that does not come.
      flight.cancelTimeout = clock.setTimer(a.at + scenario.clientTimeoutMs - clock.now(), () => {
        if (flight.ttftMs !== undefined) return;
        ticket.cancel();
        flight.stop?.();
        settle(flight, { outcome: "lost" });
      });
    }
  }

  function start(flight: Flight, grant: Grant, promptTokens: number, outputTokens: number): void {
    const edge = byKey.get(grant.edge.key) as SimEdge;
    const half = edge.rttMs / 2;
    const boundAt = clock.now();
    flight.tried.add(edge.identity.key);
    if (boundAt >= shareFrom) {
      grantsAfter += 1;
      if (slowEvent !== undefined && edge.index === slowEvent.edge) grantsToSlowedAfter += 1;
    }
    let firstAtRouter: number | undefined;
    const ended = (sample: Parameters<typeof recordCompletion>[1], outcome: "done" | "failed" | "cancelled") => {
      recordCompletion(edge.stats, sample, clock.now(), PEAK_DECAY_MS);
      if (outcome === "done") edge.breaker.succeeded();
      else if (outcome === "failed") edge.breaker.failed();
      learned += 1;
      grant.release();
    };
    /** The attempt failed, seen by the router now: fail over, or lose the request after the last attempt. */
    const failOver = () => {
      ended(undefined, "failed");
      if (flight.settled) return;
      if (flight.attempts >= MAX_ATTEMPTS) settle(flight, { outcome: "lost" });
      else {
        resumed += 1;
        submit(flight);
      }
    };
    clock.setTimer(half + overheadMs, () => {
      if (flight.settled) {
        ended(undefined, "cancelled");
        return;
      }
      if (edge.engine.running() >= edge.engine.spec.maxSequences && !edge.engine.dead()) {
        overCapacityRequests += 1;
        edge.queuedEver = true;
      }
      // The edge's headers reach the router RTT/2 from now; the first token must follow within the stall timeout.
      const cancelStall = clock.setTimer(half + STALL_TIMEOUT_MS, () => {
        flight.stop = undefined;
        handle.cancel();
        failOver();
      });
      const handle = edge.engine.submit(
        { promptTokens, outputTokens, ...(flight.arrival.prefix === undefined ? {} : { prefix: flight.arrival.prefix }) },
        {
          token(_index, atMs) {
            edge.tokensSinceReport += 1;
            const seen = atMs + half;
            if (firstAtRouter === undefined) {
              firstAtRouter = seen;
              cancelStall();
            }
            if (flight.lastTokenAt === undefined) {
              flight.ttftMs = seen - flight.arrival.at;
              flight.cancelTimeout();
            } else recordMs(itl, seen - flight.lastTokenAt);
            flight.lastTokenAt = seen;
            flight.delivered += 1;
          },
          done(atMs) {
            flight.stop = undefined;
            const seen = atMs + half;
            clock.setTimer(half, () => {
              ended(
                {
                  ttftMs: (firstAtRouter as number) - boundAt,
                  durationMs: seen - boundAt,
                  promptTokens,
                  completionTokens: outputTokens,
                },
                "done",
              );
            });
            const ttftMs = flight.ttftMs as number;
            const decoded = flight.arrival.outputTokens - 1;
            settle(flight, {
              outcome: "completed",
              ttftMs,
              e2eMs: seen - flight.arrival.at,
              tpotMs: decoded > 0 ? (seen - flight.arrival.at - ttftMs) / decoded : 0,
              edge: edge.identity.key,
            });
          },
          error() {
            flight.stop = undefined;
            cancelStall();
            clock.setTimer(half, failOver);
          },
        },
      );
      flight.stop = () => {
        cancelStall();
        handle.cancel();
        ended(undefined, "cancelled");
      };
    });
  }

  // Arrivals: one timer at a time, each setting the next.
  let next = 0;
  const arrive = () => {
    const a = arrivals[next];
    next += 1;
    submit({
      arrival: a,
      attempts: 0,
      tried: new Set(),
      delivered: 0,
      lastTokenAt: undefined,
      ttftMs: undefined,
      settled: false,
      cancelTimeout: () => {},
      stop: undefined,
    });
    if (next < arrivals.length) clock.setTimer(arrivals[next].at - clock.now(), arrive);
    else arrivalsDone = true;
  };
  if (arrivals.length > 0) clock.setTimer(arrivals[0].at, arrive);
  else arrivalsDone = true;

  // Load reports, until every request has settled.
  edges.forEach((edge, i) => {
    const report = () => {
      if (edge.engine.dead() || (arrivalsDone && settledCount === arrivals.length)) return;
      const running = edge.engine.running();
      const queued = edge.engine.waiting();
      const slots = edge.engine.spec.maxSequences;
      if (clock.now() < scenario.durationMs) {
        edge.occupancySum += running / slots;
        edge.occupancySamples += 1;
      }
      const load = edge.reportsIdle
        ? {
            type: "load" as const,
            inFlight: 0,
            queued: 0,
            saturation: 0,
            maxConcurrent: slots,
            tokensPerSecond: 0,
            at: Math.round(clock.now()),
          }
        : {
            type: "load" as const,
            inFlight: running,
            queued,
            saturation: (running + queued) / slots,
            maxConcurrent: slots,
            tokensPerSecond: (edge.tokensSinceReport * 1000) / reportIntervalMs,
            at: Math.round(clock.now()),
          };
      edge.tokensSinceReport = 0;
      if (loadReports)
        clock.setTimer(edge.rttMs / 2, () => {
          if (!edge.linked) return;
          recordLoadReport(edge.stats, load, clock.now());
          learned += 1;
          scheduler.pump();
        });
      clock.setTimer(reportIntervalMs, report);
    };
    clock.setTimer((i * reportIntervalMs) / edges.length, report);
    // The pool's probe: a live edge answers it, closing a half-open breaker; a dead one reopens it.
    const probe = () => {
      if (!edge.linked || (arrivalsDone && settledCount === arrivals.length)) return;
      if (edge.breaker.state() === "half-open") {
        if (edge.engine.dead()) edge.breaker.probeFailed();
        else edge.breaker.probeSucceeded();
        learned += 1;
        scheduler.pump();
      }
      clock.setTimer(PROBE_INTERVAL_MS, probe);
    };
    clock.setTimer((i * PROBE_INTERVAL_MS) / edges.length, probe);
  });

  for (const event of scenario.events) {
    const edge = edges[event.edge];
    clock.setTimer(event.at, () => {
      if (event.kind === "kill") {
        edge.engine.kill();
        clock.setTimer(edge.rttMs / 2, () => {
          edge.linked = false;
          learned += 1;
          scheduler.pump();
        });
      } else {
        edge.engine.slow(event.factor ?? 1);
        edge.reportsIdle = event.reportsIdle === true;
      }
    });
  }

  clock.run();
  let lookups = 0;
  let hits = 0;
  for (const e of edges) {
    const s = e.engine.cacheStats();
    lookups += s.lookups;
    hits += s.hits;
  }
  const summary = summarize(scenario, records, {
    itl,
    overCapacityRequests,
    overCapacityEdges: edges.filter((e) => e.queuedEver).length,
    occupancy: edges.map((e) => (e.occupancySamples === 0 ? 0 : e.occupancySum / e.occupancySamples)),
    cache: { lookups, hits },
    ...(slowEvent === undefined ? {} : { slowedEdgeShare: grantsAfter === 0 ? 0 : grantsToSlowedAfter / grantsAfter }),
  });
  itl.destroy();
  return { policy: policyName, mode, ...summary, resumed, shedReasons, wallMs: Math.round(performance.now() - wallStart) };
}

export interface ScenarioRuns {
  edges: number;
  arrivals: number;
  /** The fewest requests any router must shed (surge). */
  fluidShedBound: number;
  policies: Record<string, PolicyRun>;
}

/** Every scenario × every policy, plus the oracle, keyed by scenario then policy. */
export function runSimulations(
  options: ScenarioOptions & { scenarios?: readonly ScenarioName[]; policies?: readonly string[]; log?: (line: string) => void } = {},
): Record<string, ScenarioRuns> {
  const out: Record<string, ScenarioRuns> = {};
  for (const name of options.scenarios ?? SCENARIO_NAMES) {
    const def = defineScenario(name, options);
    const arrivals = generateArrivals(def);
    const policies: Record<string, PolicyRun> = {};
    const wallStart = performance.now();
    const oracle = runOracle(def, arrivals);
    policies.oracle = {
      policy: "oracle",
      mode: "oracle",
      ...oracle,
      resumed: 0,
      shedReasons: { "interactive/deadline": oracle.shedByClass.interactive, "batch/deadline": oracle.shedByClass.batch },
      wallMs: Math.round(performance.now() - wallStart),
    };
    for (const policy of options.policies ?? POLICY_NAMES) {
      policies[policy] = simulateScenario(def, policy, { arrivals });
      options.log?.(`${name} ${policy}: ${policies[policy].wallMs} ms`);
    }
    out[name] = { edges: def.edges.length, arrivals: arrivals.length, fluidShedBound: fluidShedBound(def, arrivals), policies };
  }
  return out;
}
