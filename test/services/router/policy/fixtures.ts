// Candidate edges, requests and seeded random sources for the routing policy tests (imported by
// them; runs nothing on import).
import fc from "fast-check";

import { splitmix32 } from "../../../../lib/reference-model/hash.ts";
import type { EdgeCandidate, RouteRequest } from "../../../../router/policy/types.ts";

/** A reproducible random source in [0, 1). */
export function seeded(seed: number): () => number {
  const prng = splitmix32(seed);
  return () => prng.next() / 0x1_0000_0000;
}

/** An edge with ordinary values; `overrides` set what a test is about. */
export function edge(key: string, overrides: Partial<EdgeCandidate> = {}): EdgeCandidate {
  return {
    key,
    edgeId: BigInt(key.replace(/\D/g, "") || "0"),
    region: "eu-west",
    declaredTokensPerSecond: 400,
    concurrency: 4,
    rttMs: 20,
    outstanding: 0,
    serviceTokensPerSecond: 100,
    prefillTokensPerSecond: 4000,
    peakEwmaMs: 60,
    samples: 100,
    price: { inputPerToken: 1n, outputPerToken: 2n },
    ...overrides,
  };
}

export const request: RouteRequest = { model: "tideway/reference-1", promptTokens: 200, maxTokens: 256 };

const candidateFields = fc.record({
  region: fc.constantFrom("eu-west", "us-east", "ap-south"),
  declaredTokensPerSecond: fc.integer({ min: 0, max: 10_000 }),
  concurrency: fc.integer({ min: 0, max: 32 }),
  rttMs: fc.double({ min: 0, max: 500, noNaN: true }),
  outstanding: fc.integer({ min: 0, max: 64 }),
  reported: fc.option(
    fc.record({
      inFlight: fc.integer({ min: 0, max: 64 }),
      queued: fc.integer({ min: 0, max: 64 }),
      saturation: fc.double({ min: 0, max: 4, noNaN: true }),
      ageMs: fc.integer({ min: 0, max: 10_000 }),
    }),
    { nil: undefined },
  ),
  serviceTokensPerSecond: fc.integer({ min: 0, max: 500 }),
  prefillTokensPerSecond: fc.integer({ min: 0, max: 20_000 }),
  peakEwmaMs: fc.double({ min: 0, max: 5_000, noNaN: true }),
  samples: fc.integer({ min: 0, max: 1_000 }),
  price: fc.record({ inputPerToken: fc.bigInt({ min: 0n, max: 10n }), outputPerToken: fc.bigInt({ min: 0n, max: 10n }) }),
  quality: fc.option(fc.double({ min: 0, max: 1, noNaN: true }), { nil: undefined }),
});

/** Non-empty lists of candidates with distinct keys and any mix of load, latency and price. */
export const candidateLists = (maxLength = 16) =>
  fc
    .array(candidateFields, { minLength: 1, maxLength })
    .map((list): EdgeCandidate[] => list.map((fields, i) => ({ key: String(i + 1), edgeId: BigInt(i + 1), ...fields })));

/** Requests with and without an affinity key and a price cap. */
export const requests = fc.record({
  model: fc.constant("tideway/reference-1"),
  promptTokens: fc.integer({ min: 0, max: 32_000 }),
  maxTokens: fc.integer({ min: 1, max: 4_096 }),
  affinityKey: fc.option(fc.string({ minLength: 1, maxLength: 24 }), { nil: undefined }),
  maxPricePerOutputToken: fc.option(fc.bigInt({ min: 0n, max: 10n }), { nil: undefined }),
});

/** How often each key was chosen. */
export function tally(keys: readonly string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const key of keys) counts[key] = (counts[key] ?? 0) + 1;
  return counts;
}

export { expectNear } from "../../../helpers/near.ts";
