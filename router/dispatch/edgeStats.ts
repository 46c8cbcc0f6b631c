// What the router learns about one edge, and the EdgeCandidate snapshot policies and the
// scheduler see: round-trip time, requests outstanding, its last load report adjusted for what
// this router sent and saw complete since, learned service and prefill rates, Peak-EWMA of time
// to first token, and its concurrency (the slots it reported, else its declared capacity / 10;
// fewer for a while after it refused a request as full).
// Pure functions over a plain record and an explicit `now`, so the routing benchmark's
// simulation learns exactly as the router does (router/dispatch/pool.ts is the router's user).
import type { LoadMessage } from "../../lib/protocol/routerLink.ts";
import type { EdgeCandidate } from "../policy/types.ts";

export interface EdgeStats {
  rttMs: number;
  outstanding: number;
  /** The last load report, with `sinceReport` = requests this router sent minus those it saw end since. */
  reported: (LoadMessage & { receivedAt: number; sinceReport: number }) | undefined;
  serviceTokensPerSecond: number;
  prefillTokensPerSecond: number;
  peakEwmaMs: number;
  peakAt: number;
  samples: number;
  /**
   * Slots the edge showed it has when it refused a request as full (this router's requests in
   * flight there then), and when: believed over what it declared for `REFUSAL_MEMORY_MS`, since
   * other routers' traffic may have filled it.
   */
  refusedAt?: { slots: number; at: number };
}

export interface CompletionSample {
  ttftMs: number;
  durationMs: number;
  promptTokens: number;
  completionTokens: number;
}

/** What an edge declares on-chain that its snapshot needs. */
export interface EdgeIdentity {
  key: string;
  edgeId: bigint;
  region: string;
  /** Declared capacity, output tokens/s. */
  capacity: number;
}

const EWMA = 0.2;
/** How long a refusal's slot count is believed over the declared one. */
const REFUSAL_MEMORY_MS = 30_000;
/** Requests per slot of declared capacity (tokens/s) assumed until the edge reports its slots. */
const TOKENS_PER_SECOND_PER_SLOT = 10;

export function newEdgeStats(): EdgeStats {
  return {
    rttMs: 0,
    outstanding: 0,
    reported: undefined,
    serviceTokensPerSecond: 0,
    prefillTokensPerSecond: 0,
    peakEwmaMs: 0,
    peakAt: 0,
    samples: 0,
  };
}

export function recordRtt(s: EdgeStats, rttMs: number): void {
  s.rttMs = s.rttMs === 0 ? rttMs : s.rttMs * (1 - EWMA) + rttMs * EWMA;
}

export function recordLoadReport(s: EdgeStats, load: LoadMessage, now: number): void {
  s.reported = { ...load, receivedAt: now, sinceReport: 0 };
}

export function recordDispatch(s: EdgeStats): void {
  s.outstanding += 1;
  if (s.reported !== undefined) s.reported.sinceReport += 1;
}

/** The edge answered a request of this router 429 (full), that request still counted in flight. */
export function recordRefusal(s: EdgeStats, now: number): void {
  s.refusedAt = { slots: Math.max(1, s.outstanding - 1), at: now };
}

/** A request to the edge ended (successfully or not); a sample feeds the learned rates. */
export function recordCompletion(s: EdgeStats, sample: CompletionSample | undefined, now: number, peakDecayMs: number): void {
  s.outstanding = Math.max(0, s.outstanding - 1);
  if (s.reported !== undefined) s.reported.sinceReport -= 1;
  if (sample === undefined) return;
  s.samples += 1;
  // Peak-EWMA: a slower sample than the current estimate is taken at once, a faster one is averaged in.
  const current = s.peakAt === 0 ? 0 : s.peakEwmaMs * Math.exp(-(now - s.peakAt) / peakDecayMs);
  s.peakEwmaMs = sample.ttftMs > current ? sample.ttftMs : current * (1 - EWMA) + sample.ttftMs * EWMA;
  s.peakAt = now;
  const decodeMs = sample.durationMs - sample.ttftMs;
  if (sample.completionTokens > 1 && decodeMs > 0) {
    const rate = ((sample.completionTokens - 1) * 1000) / decodeMs;
    s.serviceTokensPerSecond = s.serviceTokensPerSecond === 0 ? rate : s.serviceTokensPerSecond * (1 - EWMA) + rate * EWMA;
  }
  if (sample.promptTokens > 0 && sample.ttftMs > s.rttMs) {
    const rate = (sample.promptTokens * 1000) / Math.max(1, sample.ttftMs - s.rttMs);
    s.prefillTokensPerSecond = s.prefillTokensPerSecond === 0 ? rate : s.prefillTokensPerSecond * (1 - EWMA) + rate * EWMA;
  }
}

/** The edge as a policy sees it at `now`. */
export function edgeCandidate(
  edge: EdgeIdentity,
  s: EdgeStats,
  price: EdgeCandidate["price"],
  now: number,
  peakDecayMs: number,
): EdgeCandidate {
  const reported =
    s.reported === undefined
      ? undefined
      : {
          // What the edge reported, adjusted for what this router sent it and saw end since (the report cannot know).
          inFlight: Math.max(0, s.reported.inFlight + s.reported.sinceReport),
          queued: s.reported.queued,
          saturation: s.reported.saturation,
          ageMs: now - s.reported.receivedAt,
        };
  const decay = s.peakAt === 0 ? 1 : Math.exp(-(now - s.peakAt) / peakDecayMs);
  const declaredSlots = s.reported?.maxConcurrent ?? Math.max(1, Math.round(edge.capacity / TOKENS_PER_SECOND_PER_SLOT));
  const refused = s.refusedAt !== undefined && now - s.refusedAt.at < REFUSAL_MEMORY_MS ? s.refusedAt.slots : Number.POSITIVE_INFINITY;
  return {
    key: edge.key,
    edgeId: edge.edgeId,
    region: edge.region,
    declaredTokensPerSecond: edge.capacity,
    concurrency: Math.min(declaredSlots, refused),
    rttMs: s.rttMs,
    outstanding: s.outstanding,
    reported,
    serviceTokensPerSecond: s.serviceTokensPerSecond,
    prefillTokensPerSecond: s.prefillTokensPerSecond,
    peakEwmaMs: s.peakEwmaMs * decay,
    samples: s.samples,
    price,
  };
}
