// Tideway's default policy: send each request where its first token is expected soonest, among a
// few edges drawn by capacity, preferring edges with a free slot. The ideas come from Prequal
// (Google's load balancer: probe a few replicas, split them into hot and cold by requests in
// flight, take the best cold one) and from the power of d choices.
//
// 1. Price: when the tenant caps the price per output token, only edges at or under the cap are
//    considered; when none is, all are (reason "price-fallback"): an answer at a higher price
//    beats no answer, and the router reports the fallback.
// 2. Exploration: with probability `explorationShare`, a uniformly drawn edge among those with
//    fewer than `exploreBelowSamples` completed requests (reason "explore"). Without it a new
//    edge would keep the priors it started with, and never get the traffic that measures it.
// 3. Sampling: `d` distinct edges drawn with probability proportional to declared capacity.
//    Sampling, not a global minimum, so routers that share one view of the network do not all
//    pile onto the same best edge; weighting by capacity gives a big edge proportionally more
//    chances, so traffic spreads the way capacity does before any load is known.
// 4. Hot and cold: a sampled edge is hot when its occupancy (requests in flight per slot) is at or
//    over `hotOccupancy` (1: no free slot). The cold edge with the lowest estimate wins (reason
//    "best-of-d"); when all are hot, the one with the lowest estimate (reason "all-hot"). A cold
//    edge starts at once, so a far cold edge is preferred to a near one where the request queues.
//
// Estimated time to first token = rttMs + queueMs + prefillMs:
// - load: the edge's own report (in flight plus queued, already adjusted by the router for what it
//   sent since) while it is younger than `reportMaxAgeMs`, and never less than this router's own
//   `outstanding`, which is exact for its own sends; only `outstanding` without a fresh report;
// - queueMs: the requests that must finish before this one gets a slot, max(0, load + 1 − slots),
//   times `meanOutputTokens` each, over the edge's total output rate (slots × per-stream rate);
//   the per-stream rate is the learned one, else the declared capacity spread over the slots;
// - prefillMs: prompt tokens over the learned prefill rate, else `prefillPriorTokensPerSecond`.
import { minBy, pickUniform, sampleWeighted, slots, withinPrice } from "./choice.ts";
import { checkOption } from "./errors.ts";
import type { EdgeCandidate, PolicyOptions, RouteDecision, RouteRequest, RoutingPolicy } from "./types.ts";

export interface TidewayPolicyOptions extends PolicyOptions {
  /** Edges sampled per request. Default 3. */
  d?: number;
  /** Share of requests sent to an edge that still needs measuring, when there is one. Default 0.05. */
  explorationShare?: number;
  /** An edge with fewer completed requests than this is worth exploring. Default 3. */
  exploreBelowSamples?: number;
  /** Occupancy (load per slot) from which an edge is hot. Default 1 (no free slot). */
  hotOccupancy?: number;
  /** A load report older than this is ignored, ms. Default 2000. */
  reportMaxAgeMs?: number;
  /** Output tokens of a typical request ahead in an edge's queue. Default 256. */
  meanOutputTokens?: number;
  /** Prefill rate assumed for an edge not measured yet, prompt tokens/s. Default 2000. */
  prefillPriorTokensPerSecond?: number;
  /** Per-stream output rate assumed when an edge neither declared nor showed one, tokens/s. Default 20. */
  servicePriorTokensPerSecond?: number;
}

/** The estimate's terms for one edge, as they go into `RouteDecision.terms`. */
export type FirstTokenEstimate = {
  rttMs: number;
  queueMs: number;
  prefillMs: number;
  /** rttMs + queueMs + prefillMs. */
  estimateMs: number;
  /** Requests in flight or queued on the edge (see the header). */
  load: number;
  /** load per slot; hot at or over `hotOccupancy`. */
  occupancy: number;
};

type EstimateSettings = Required<
  Pick<TidewayPolicyOptions, "reportMaxAgeMs" | "meanOutputTokens" | "prefillPriorTokensPerSecond" | "servicePriorTokensPerSecond">
>;

export const TIDEWAY_DEFAULTS = {
  d: 3,
  explorationShare: 0.05,
  exploreBelowSamples: 3,
  hotOccupancy: 1,
  reportMaxAgeMs: 2000,
  meanOutputTokens: 256,
  prefillPriorTokensPerSecond: 2000,
  servicePriorTokensPerSecond: 20,
} as const satisfies Required<Omit<TidewayPolicyOptions, "random">>;

/** The estimated time to first token of `request` on `edge`, with its terms. */
export function estimateFirstToken(
  edge: EdgeCandidate,
  request: RouteRequest,
  settings: EstimateSettings = TIDEWAY_DEFAULTS,
): FirstTokenEstimate {
  const edgeSlots = slots(edge);
  const report = edge.reported !== undefined && edge.reported.ageMs <= settings.reportMaxAgeMs ? edge.reported : undefined;
  const load = report === undefined ? edge.outstanding : Math.max(edge.outstanding, report.inFlight + report.queued);
  const perStreamRate =
    edge.serviceTokensPerSecond > 0
      ? edge.serviceTokensPerSecond
      : edge.declaredTokensPerSecond > 0
        ? edge.declaredTokensPerSecond / edgeSlots
        : settings.servicePriorTokensPerSecond;
  const ahead = Math.max(0, load + 1 - edgeSlots);
  const queueMs = ((ahead * settings.meanOutputTokens) / (edgeSlots * perStreamRate)) * 1000;
  const prefillRate = edge.prefillTokensPerSecond > 0 ? edge.prefillTokensPerSecond : settings.prefillPriorTokensPerSecond;
  const prefillMs = (request.promptTokens / prefillRate) * 1000;
  return { rttMs: edge.rttMs, queueMs, prefillMs, estimateMs: edge.rttMs + queueMs + prefillMs, load, occupancy: load / edgeSlots };
}

export function createTidewayPolicy(options: TidewayPolicyOptions = {}): RoutingPolicy {
  const random = options.random ?? Math.random;
  const settings = { ...TIDEWAY_DEFAULTS, ...withoutUndefined(options) };
  const { d, explorationShare, exploreBelowSamples, hotOccupancy } = settings;
  checkOption(Number.isInteger(d) && d >= 1, "tideway", "d", d, "an integer of at least 1");
  checkOption(explorationShare >= 0 && explorationShare <= 1, "tideway", "explorationShare", explorationShare, "between 0 and 1");
  checkOption(exploreBelowSamples >= 0, "tideway", "exploreBelowSamples", exploreBelowSamples, "at least 0");
  checkOption(hotOccupancy > 0, "tideway", "hotOccupancy", hotOccupancy, "above 0");
  checkOption(settings.reportMaxAgeMs >= 0, "tideway", "reportMaxAgeMs", settings.reportMaxAgeMs, "at least 0");
  for (const key of ["meanOutputTokens", "prefillPriorTokensPerSecond", "servicePriorTokensPerSecond"] as const) {
    checkOption(settings[key] > 0, "tideway", key, settings[key], "above 0");
  }

  return {
    name: "tideway",
    choose(candidates: readonly EdgeCandidate[], request: RouteRequest): RouteDecision {
      const { pool, fallback: priceFallback } = withinPrice(candidates, request.maxPricePerOutputToken);

      if (explorationShare > 0 && random() < explorationShare) {
        const unmeasured = pool.filter((c) => c.samples < exploreBelowSamples);
        if (unmeasured.length > 0) {
          const edge = pickUniform(unmeasured, random);
          return { edge, terms: estimateFirstToken(edge, request, settings), reason: priceFallback ? "price-fallback" : "explore" };
        }
      }

      const sampled = pool.length <= d ? pool : sampleWeighted(pool, (c) => c.declaredTokensPerSecond, d, random);
      const scored = sampled.map((edge) => ({ edge, estimate: estimateFirstToken(edge, request, settings) }));
      const cold = scored.filter((s) => s.estimate.occupancy < hotOccupancy);
      const best = minBy(cold.length > 0 ? cold : scored, (s) => s.estimate.estimateMs, random);
      return {
        edge: best.edge,
        terms: best.estimate,
        reason: priceFallback ? "price-fallback" : cold.length > 0 ? "best-of-d" : "all-hot",
      };
    },
  };
}

/** `options` without its undefined fields, so they do not override the defaults. */
function withoutUndefined<T extends object>(options: T): Partial<T> {
  return Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) as Partial<T>;
}
