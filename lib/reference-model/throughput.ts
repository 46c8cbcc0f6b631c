// Measured throughput of the reference model, for the declared capacity (/v1/models) and bench.
import { performance } from "node:perf_hooks";

import { generate } from "./generate.ts";
import { DEFAULT_MODEL_CONFIG } from "./model.ts";
import type { ModelConfig } from "./model.ts";
import type { ReferenceMessage } from "./template.ts";

/** The short-completion workload: 11 prompt tokens (with the chat template), 16 output tokens. */
export const SHORT_WORKLOAD: { messages: ReferenceMessage[]; maxTokens: number } = {
  messages: [{ role: "user", content: "Tide at Brest today?" }],
  maxTokens: 16,
};

/** Result of a throughput measurement on one thread. */
export interface ThroughputMeasurement {
  /** Tokens (prompt + completion) processed per second. */
  tokensPerSecond: number;
  /** Mean wall time of one completion, in milliseconds. */
  msPerCompletion: number;
  /** Completions run. */
  runs: number;
}

/**
 * Runs `workload` repeatedly on this thread for about `budgetMs` (after one warm-up run) and
 * reports tokens per second. Blocks the thread for that long: call it at startup or in a bench.
 */
export function measureThroughput(
  config: ModelConfig = DEFAULT_MODEL_CONFIG,
  budgetMs = 200,
  workload: { messages: ReferenceMessage[]; maxTokens: number } = SHORT_WORKLOAD,
): ThroughputMeasurement {
  const once = (): number => {
    for (const ev of generate({ ...workload, temperature: 0, config })) {
      if (ev.type === "done") return ev.usage.promptTokens + ev.usage.completionTokens;
    }
    return 0;
  };
  once();
  let tokens = 0;
  let runs = 0;
  const start = performance.now();
  let elapsed = 0;
  do {
    tokens += once();
    runs++;
    elapsed = performance.now() - start;
  } while (elapsed < budgetMs);
  return { tokensPerSecond: (tokens * 1000) / elapsed, msPerCompletion: elapsed / runs, runs };
}
