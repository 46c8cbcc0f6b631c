// The routing policy interface: given the edges that could serve a request (already filtered for
// status, model, link and breaker), a policy picks one. Policies are pure choosers over a
// snapshot of the router's per-edge view, so the same policy runs in the router and in the
// routing benchmark's simulator; state a policy keeps for itself (a round-robin cursor) lives in
// its own closure, and the per-edge statistics it reads are maintained by the router
// (router/dispatch/edgeStats.ts) from its own sends, completions and the edges' load reports.
//
// One implementation per file in this folder; `createPolicy(name)` in index.ts builds one by name.

/** Latency-relevant facts about one edge, as the router sees them at decision time. */
export interface EdgeCandidate {
  /** Stable key of the edge (its id as a decimal string). */
  key: string;
  edgeId: bigint;
  region: string;
  /** Declared capacity in output tokens per second (from its on-chain profile). */
  declaredTokensPerSecond: number;
  /** How many requests it serves at once before queueing (declared or learned). */
  concurrency: number;
  /** Round-trip time from the router, milliseconds (smoothed). */
  rttMs: number;
  /** Requests this router has sent to the edge and not yet seen complete. */
  outstanding: number;
  /**
   * The edge's own last load report (over the link), adjusted by the router for what it sent
   * since; undefined when the edge never reported.
   */
  reported?: { inFlight: number; queued: number; saturation: number; ageMs: number };
  /** Learned output rate per request stream (tokens/s, EWMA over completions); 0 when unknown. */
  serviceTokensPerSecond: number;
  /** Learned prefill rate (prompt tokens/s, EWMA); 0 when unknown. */
  prefillTokensPerSecond: number;
  /** Peak-EWMA of time to first token, ms (jumps up on a slow sample, decays over time); 0 when unknown. */
  peakEwmaMs: number;
  /** Completed requests observed (0 = never measured: worth exploring). */
  samples: number;
  /** Price per input and output token, token units (from the edge's model list). */
  price: { inputPerToken: bigint; outputPerToken: bigint };
  /** Quality from the latest settled epoch, 0..1, when known. */
  quality?: number;
}

/** What a policy knows about the request being routed. */
export interface RouteRequest {
  model: string;
  /** Estimated prompt tokens. */
  promptTokens: number;
  /** The most output tokens it may produce. */
  maxTokens: number;
  /**
   * Conversation key for session affinity (the `x-tideway-session` header, or a hash of the
   * conversation's prefix); undefined when the request has none.
   */
  affinityKey?: string;
  /** Highest acceptable price per output token (tenant setting); a filter that falls back rather than fails. */
  maxPricePerOutputToken?: bigint;
}

/** A policy's choice and, for the routing log, the terms that decided it. */
export interface RouteDecision {
  edge: EdgeCandidate;
  /** Score terms of the chosen edge (e.g. `{ rttMs, queueMs, prefillMs }`), for a sampled log line. */
  terms?: Record<string, number>;
  /** Why this edge: "affinity", "spill", "explore", "best-of-d", ... */
  reason?: string;
}

export interface RoutingPolicy {
  readonly name: string;
  /**
   * Picks one of `candidates` (never empty) for `request`. Must return one of the given objects.
   * Must not mutate them.
   */
  choose(candidates: readonly EdgeCandidate[], request: RouteRequest): RouteDecision;
}

/** Options shared by every policy factory. */
export interface PolicyOptions {
  /** Random source in [0, 1) (seeded in tests and benchmarks). Default Math.random. */
  random?: () => number;
}
