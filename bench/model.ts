// Reference-model benchmark: `bash scripts/with-node22.sh node bench/model.ts` (plain Node, one
// thread, no Hardhat). Times a short completion (11 prompt tokens, 16 output tokens: a typical
// chat turn) and a long one (≈ 500 prompt tokens, 256 output tokens) at the default network
// shape, plus prefill alone, and writes bench/results/model.json. The edge declares its
// throughput from the same measurement (measureThroughput), times its worker threads.
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { performance } from "node:perf_hooks";

import { DEFAULT_MODEL_CONFIG, generate, measureThroughput, SHORT_WORKLOAD } from "../lib/reference-model/index.ts";
import type { GenerateDone, ReferenceMessage } from "../lib/reference-model/index.ts";

const config = DEFAULT_MODEL_CONFIG;

/** Mean and median wall time (ms) of `runs` runs after `warm` warm-up runs, with the last done event. */
function time(
  messages: ReferenceMessage[],
  maxTokens: number,
  runs: number,
  warm = 3,
): { meanMs: number; medianMs: number; done: GenerateDone } {
  let done: GenerateDone | undefined;
  const once = (): void => {
    for (const ev of generate({ messages, maxTokens, temperature: 0.7, seed: 1, config })) if (ev.type === "done") done = ev;
  };
  for (let i = 0; i < warm; i++) once();
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    once();
    samples.push(performance.now() - t);
  }
  samples.sort((a, b) => a - b);
  return { meanMs: samples.reduce((a, b) => a + b, 0) / runs, medianMs: samples[runs >> 1], done: done! };
}

const longPrompt: ReferenceMessage[] = [
  { role: "system", content: "You are a harbour master's assistant. Answer with the times and heights asked for." },
  {
    role: "user",
    content: "High and low water for the week ahead, port by port: ".concat(
      Array.from({ length: 40 }, (_, i) => `port ${i}, coefficient ${60 + i};`).join(" "),
    ),
  },
];

const short = time(SHORT_WORKLOAD.messages, SHORT_WORKLOAD.maxTokens, 400);
const long = time(longPrompt, 256, 15);
const prefill = time(longPrompt, 0, 15);
const tput = measureThroughput(config, 1_000);
const longTokens = long.done.usage.promptTokens + long.done.usage.completionTokens;

const results = {
  model: { hidden: config.hidden, layers: config.layers },
  node: process.version,
  cpu: cpus()[0]?.model ?? "unknown",
  tokens_per_s_one_thread: Math.round(tput.tokensPerSecond),
  short_completion_ms: Number(short.meanMs.toFixed(3)),
  short_completion_median_ms: Number(short.medianMs.toFixed(3)),
  short_prompt_tokens: short.done.usage.promptTokens,
  short_completion_tokens: short.done.usage.completionTokens,
  short_work_mac: short.done.work,
  long_completion_ms: Number(long.meanMs.toFixed(1)),
  long_prompt_tokens: long.done.usage.promptTokens,
  long_completion_tokens: long.done.usage.completionTokens,
  long_tokens_per_s: Math.round((longTokens * 1000) / long.meanMs),
  prefill_tokens_per_s: Math.round((prefill.done.usage.promptTokens * 1000) / prefill.meanMs),
  decode_tokens_per_s: Math.round((long.done.usage.completionTokens * 1000) / (long.meanMs - prefill.meanMs)),
  mac_per_ns: Number((long.done.work / (long.meanMs * 1e6)).toFixed(3)),
};

console.table({
  short: {
    prompt: results.short_prompt_tokens,
    completion: results.short_completion_tokens,
    "ms (mean)": results.short_completion_ms,
    "ms (median)": results.short_completion_median_ms,
  },
  long: {
    prompt: results.long_prompt_tokens,
    completion: results.long_completion_tokens,
    "ms (mean)": results.long_completion_ms,
    "ms (median)": Number(long.medianMs.toFixed(1)),
  },
});
console.log(
  `one thread, hidden ${config.hidden} × layers ${config.layers}: ${results.tokens_per_s_one_thread} tokens/s (short workload), prefill ${results.prefill_tokens_per_s} tokens/s, decode ${results.decode_tokens_per_s} tokens/s`,
);
mkdirSync(new URL("./results/", import.meta.url), { recursive: true });
writeFileSync(new URL("./results/model.json", import.meta.url), `${JSON.stringify(results, null, 2)}\n`);
console.log("wrote bench/results/model.json");
