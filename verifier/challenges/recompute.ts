// Recomputing an edge's answer with the reference model (lib/reference-model), bit for bit. A
// completion of up to 64 tokens takes milliseconds of pure CPU, so challenges recompute on a
// piscina worker pool ({createRecomputePool}) and the verifier's event loop stays free for
// HTTP, Redis and BullMQ. {inlineRecomputer} computes on the calling thread (tests, tools).
import { availableParallelism } from "node:os";

import { Piscina } from "piscina";

import { complete } from "../../lib/reference-model/index.ts";
import type { GenerateSpec } from "../../lib/reference-model/index.ts";

/** What the reference model answers to a spec. */
export interface RecomputedAnswer {
  text: string;
  finishReason: "stop" | "length";
  promptTokens: number;
  completionTokens: number;
}

export interface Recomputer {
  complete(spec: GenerateSpec): Promise<RecomputedAnswer>;
  close(): Promise<void>;
}

/** Recomputes on the calling thread. */
export function inlineRecomputer(): Recomputer {
  return {
    async complete(spec) {
      const { text, done } = complete(spec);
      return {
        text,
        finishReason: done.finishReason,
        promptTokens: done.usage.promptTokens,
        completionTokens: done.usage.completionTokens,
      };
    },
    async close() {},
  };
}

/**
 * A pool of `threads` worker threads (default: all cores but one, at least one) recomputing
 * answers. Requests run in arrival order (stricterFIFO, as the edge's reference backend).
 */
export function createRecomputePool(options: { threads?: number } = {}): Recomputer {
  const threads = options.threads ?? Math.max(1, availableParallelism() - 1);
  if (!Number.isInteger(threads) || threads < 1) throw new RangeError(`threads must be a positive integer, got ${threads}`);
  const pool = new Piscina<GenerateSpec, RecomputedAnswer>({
    // A .ts worker: Node's type stripping loads it as the edge's reference backend loads its own.
    filename: new URL("./recomputeWorker.ts", import.meta.url).href,
    minThreads: threads,
    maxThreads: threads,
    idleTimeout: Infinity,
    stricterFIFO: true,
  });
  return {
    complete: (spec) => pool.run(spec),
    close: () => pool.destroy(),
  };
}
