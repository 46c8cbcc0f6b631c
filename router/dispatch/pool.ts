// The router's live view of the edges it may send work to: the chain's record (directory), how
// to reach each one (its link, else HTTP to its endpoint), its models and prices (its own
// /v1/models), and what the router has learned about it — round-trip time, requests outstanding,
// its last load report adjusted for what was sent since, service rates, Peak-EWMA of time to
// first token — plus a circuit breaker. Policies see this as EdgeCandidate snapshots.
import type { Logger } from "pino";

import type { DirectoryEdge, EdgeDirectory } from "../chain/directory.ts";
import type { LoadMessage } from "../../lib/protocol/routerLink.ts";
import type { EdgeCandidate } from "../policy/types.ts";
import type { SchedulerEdges } from "../schedule/scheduler.ts";
import { createBreaker } from "./breaker.ts";
import { edgeCandidate, newEdgeStats, recordCompletion, recordRefusal, recordDispatch, recordLoadReport, recordRtt } from "./edgeStats.ts";
import type { CompletionSample, EdgeStats } from "./edgeStats.ts";
import type { Breaker } from "./breaker.ts";
import { httpTransport, readBody } from "./transport.ts";
import type { EdgeTransport } from "./transport.ts";

export interface ModelPrice {
  inputPerToken: bigint;
  outputPerToken: bigint;
}

export interface PooledEdge {
  edgeId: bigint;
  key: string;
  record: DirectoryEdge;
  link: EdgeTransport | undefined;
  http: EdgeTransport | undefined;
  /** Models and prices the edge lists at /v1/models (undefined until read). */
  models: Map<string, ModelPrice> | undefined;
  breaker: Breaker;
  stats: EdgeStats;
}

export interface EdgePoolOptions {
  directory: EdgeDirectory;
  logger: Logger;
  /**
   * This router's own origins (its listen URL, and its public URL when set): an edge whose
   * registered endpoint is this router's relay is reachable only over its link, never over HTTP
   * to ourselves.
   */
  selfOrigins?: readonly string[];
  breakerFailures: number;
  breakerOpenMs: number;
  /** How often each edge's RTT, health and model list are probed. */
  probeIntervalMs?: number;
  /** Decay time constant of Peak-EWMA (ms). */
  peakDecayMs?: number;
}

export interface EdgePool {
  start(): void;
  stop(): void;
  /** Every edge in the directory, reachable or not. */
  all(): PooledEdge[];
  get(edgeId: bigint): PooledEdge | undefined;
  /** Active, reachable edges that list `model` and whose breaker lets a request through. */
  candidates(model: string): Array<{ edge: PooledEdge; candidate: EdgeCandidate; transport: EdgeTransport }>;
  /** The edge as policies see it, with no model's price (for load and utilization). */
  view(edge: PooledEdge): EdgeCandidate;
  /** The edge answered 429 (full): it has no more slots than this router is using there now. */
  refusedBusy(edge: PooledEdge): void;
  /** How the router reaches `edge` now (its link, else HTTP), if at all. */
  transport(edge: PooledEdge): EdgeTransport | undefined;
  /** Whether any Active edge declares `model` at all (for 404 vs 503). */
  knowsModel(model: string): boolean;
  /** Models served by active edges, with the range of their prices. */
  models(): Map<string, { edges: number; minOutput: bigint; maxOutput: bigint; minInput: bigint; maxInput: bigint }>;
  linkConnected(edgeId: bigint, transport: EdgeTransport): void;
  linkDisconnected(edgeId: bigint, transport: EdgeTransport): void;
  loadReport(edgeId: bigint, load: LoadMessage): void;
  dispatched(edge: PooledEdge): void;
  /** A request to `edge` ended (successfully or not); samples feed the learned rates. */
  completed(edge: PooledEdge, sample: CompletionSample | undefined): void;
  /** Reads an edge's models and RTT now (tests, and an edge that just linked). */
  probe(edge: PooledEdge): Promise<void>;
}

/** Parses the edge's /v1/models answer into prices (unknown prices make a model unusable for pay). */
function parseModels(text: string): Map<string, ModelPrice> {
  const body = JSON.parse(text) as {
    data?: Array<{ id?: unknown; tideway?: { price?: { input_per_token?: unknown; output_per_token?: unknown } } }>;
  };
  const models = new Map<string, ModelPrice>();
  for (const m of body.data ?? []) {
    const price = m.tideway?.price;
    if (typeof m.id !== "string" || typeof price?.input_per_token !== "string" || typeof price.output_per_token !== "string") continue;
    if (!/^\d+$/.test(price.input_per_token) || !/^\d+$/.test(price.output_per_token)) continue;
    models.set(m.id, { inputPerToken: BigInt(price.input_per_token), outputPerToken: BigInt(price.output_per_token) });
  }
  return models;
}

export function createEdgePool(options: EdgePoolOptions): EdgePool {
  const { directory, logger } = options;
  const probeIntervalMs = options.probeIntervalMs ?? 5_000;
  const peakDecayMs = options.peakDecayMs ?? 10_000;
  const selfOrigins = new Set((options.selfOrigins ?? []).map((u) => new URL(u).origin));
  const edges = new Map<bigint, PooledEdge>();
  let timer: NodeJS.Timeout | undefined;

  function httpFor(record: DirectoryEdge): EdgeTransport | undefined {
    const endpoint = record.profile?.endpoint;
    if (endpoint === undefined || !/^https?:\/\//.test(endpoint)) return undefined;
    try {
      if (selfOrigins.has(new URL(endpoint).origin)) return undefined;
      return httpTransport(endpoint);
    } catch {
      return undefined;
    }
  }

  function upsert(record: DirectoryEdge): PooledEdge {
    let edge = edges.get(record.edgeId);
    if (edge === undefined) {
      edge = {
        edgeId: record.edgeId,
        key: record.edgeId.toString(),
        record,
        link: undefined,
        http: httpFor(record),
        models: undefined,
        breaker: createBreaker({ failures: options.breakerFailures, openMs: options.breakerOpenMs }),
        stats: newEdgeStats(),
      };
      edges.set(record.edgeId, edge);
      void probe(edge);
    } else {
      const endpointChanged = edge.record.profile?.endpoint !== record.profile?.endpoint;
      edge.record = record;
      if (endpointChanged) {
        edge.http = httpFor(record);
        void probe(edge);
      }
    }
    return edge;
  }

  function transportOf(edge: PooledEdge): EdgeTransport | undefined {
    return edge.link ?? edge.http;
  }

  async function probe(edge: PooledEdge): Promise<void> {
    const transport = transportOf(edge);
    if (transport === undefined || edge.record.status !== "Active") return;
    const started = performance.now();
    try {
      const response = await transport.send({ method: "GET", path: "/v1/models", headers: {}, signal: AbortSignal.timeout(5_000) });
      const text = await readBody(response);
      const rtt = performance.now() - started;
      if (response.status !== 200) throw new Error(`status ${response.status}`);
      edge.models = parseModels(text);
      recordRtt(edge.stats, rtt);
      edge.breaker.probeSucceeded();
    } catch (err) {
      edge.breaker.probeFailed();
      logger.debug({ edgeId: edge.key, err: (err as Error).message }, "edge probe failed");
    }
  }

  function candidate(edge: PooledEdge, model: string): EdgeCandidate {
    const identity = {
      key: edge.key,
      edgeId: edge.edgeId,
      region: edge.record.profile?.region ?? "",
      capacity: edge.record.profile?.capacity ?? 1,
    };
    return edgeCandidate(
      identity,
      edge.stats,
      edge.models?.get(model) ?? { inputPerToken: 0n, outputPerToken: 0n },
      Date.now(),
      peakDecayMs,
    );
  }

  function usable(edge: PooledEdge): boolean {
    return edge.record.status === "Active" && transportOf(edge) !== undefined;
  }

  return {
    start() {
      for (const record of directory.all()) upsert(record);
      directory.onChange((record) => upsert(record));
      const tick = () => {
        for (const edge of edges.values()) void probe(edge);
        timer = setTimeout(tick, probeIntervalMs);
        timer.unref();
      };
      timer = setTimeout(tick, probeIntervalMs);
      timer.unref();
    },
    stop() {
      if (timer !== undefined) clearTimeout(timer);
    },
    all: () => [...edges.values()],
    transport: (edge) => (usable(edge) ? transportOf(edge) : undefined),
    view: (edge) => candidate(edge, ""),
    refusedBusy: (edge) => recordRefusal(edge.stats, Date.now()),
    get: (edgeId) => edges.get(edgeId),
    candidates(model) {
      const out: Array<{ edge: PooledEdge; candidate: EdgeCandidate; transport: EdgeTransport }> = [];
      for (const edge of edges.values()) {
        if (!usable(edge) || edge.models?.has(model) !== true || !edge.breaker.allows()) continue;
        out.push({ edge, candidate: candidate(edge, model), transport: transportOf(edge)! });
      }
      return out;
    },
    knowsModel(model) {
      for (const edge of edges.values()) {
        if (edge.record.status !== "Active") continue;
        if (edge.models?.has(model) === true || edge.record.profile?.models.includes(model) === true) return true;
      }
      return false;
    },
    models() {
      const out = new Map<string, { edges: number; minOutput: bigint; maxOutput: bigint; minInput: bigint; maxInput: bigint }>();
      for (const edge of edges.values()) {
        if (!usable(edge) || edge.models === undefined) continue;
        for (const [name, price] of edge.models) {
          const m = out.get(name);
          if (m === undefined)
            out.set(name, {
              edges: 1,
              minOutput: price.outputPerToken,
              maxOutput: price.outputPerToken,
              minInput: price.inputPerToken,
              maxInput: price.inputPerToken,
            });
          else {
            m.edges += 1;
            if (price.outputPerToken < m.minOutput) m.minOutput = price.outputPerToken;
            if (price.outputPerToken > m.maxOutput) m.maxOutput = price.outputPerToken;
            if (price.inputPerToken < m.minInput) m.minInput = price.inputPerToken;
            if (price.inputPerToken > m.maxInput) m.maxInput = price.inputPerToken;
          }
        }
      }
      return out;
    },
    linkConnected(edgeId, transport) {
      const record = directory.get(edgeId);
      if (record === undefined) return;
      const edge = upsert(record);
      edge.link = transport;
      edge.breaker.reset();
      void probe(edge);
    },
    linkDisconnected(edgeId, transport) {
      const edge = edges.get(edgeId);
      // An edge whose link drops is out at once (unless it also has a public endpoint).
      if (edge?.link === transport) {
        edge.link = undefined;
        edge.stats.reported = undefined;
      }
    },
    loadReport(edgeId, load) {
      const edge = edges.get(edgeId);
      if (edge !== undefined) recordLoadReport(edge.stats, load, Date.now());
    },
    dispatched(edge) {
      edge.breaker.take();
      recordDispatch(edge.stats);
    },
    completed(edge, sample) {
      recordCompletion(edge.stats, sample, Date.now(), peakDecayMs);
    },
    probe,
  };
}

/** The pool as the scheduler sees it: candidates per model, and a request bound to an edge counted at once. */
export function schedulerEdgesOf(pool: EdgePool): SchedulerEdges {
  return {
    candidates: (model) => pool.candidates(model).map((c) => c.candidate),
    dispatched(candidate) {
      const edge = pool.get(candidate.edgeId);
      if (edge !== undefined) pool.dispatched(edge);
    },
  };
}
