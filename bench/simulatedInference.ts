// A timing-accurate simulated inference server for the router benchmarks: OpenAI-compatible
// streamed chat whose timing comes from the inference-server model of bench/routing/engine.ts
// (continuous batching up to `maxSequences`, its own FIFO queue beyond, prefill and decode that
// slow as the batch grows, an optional prefix cache) on real timers — no CPU while it "thinks", so
// many such servers share 2 cores and still time like GPUs. Importing this file runs nothing.
//
// Contract:
// - `POST /v1/chat/completions` with `stream: true` only (what an edge's proxy backend sends):
//   the first token when the engine's prefill ends, then one per decode step, up to `max_tokens`
//   (or `max_completion_tokens`; finish reason "length"), then the usage chunk and `[DONE]`.
//   Prompt tokens are counted as the edge counts them (lib/reference-model's chat template).
// - The answer is deterministic: token i is word i of a fixed cycle, so a client can tell a lost
//   or repeated token. A continuation (`continue_final_message: true`, the router resuming a
//   broken stream) goes on from the word after those already in the final assistant message.
// - Prefix cache key: the body's `prefix_key` (any string; a field the router and the edge pass
//   through) with `prefix_tokens` (default: the first message's tokens), else the first message's
//   content — the system prompt or shared document conversations start with.
// - Control, for the benchmark harness: `POST /sim/slow {"factor": f}` makes every later prefill
//   and step f× slower (1 restores); `GET /sim/stats` answers SimulatedStats.
// - A client that disconnects cancels its sequence (its slot frees).
import { createHash } from "node:crypto";
import { createServer } from "node:http";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

import { countPromptTokens, countTokens } from "../lib/reference-model/index.ts";
import type { ReferenceMessage } from "../lib/reference-model/index.ts";
import { systemClock } from "../router/schedule/clock.ts";
import { createEngine } from "./routing/engine.ts";
import type { EngineRequest, EngineSpec } from "./routing/engine.ts";

/**
 * The engine's parameters (defaults: 64 sequences, prefill at 1M tokens/s, no batch slow-down, no
 * cache), and a per-request delay before the engine sees a request, `prefillMs + prefillMsPerToken
 * × prompt tokens` (default 0): latency that no two requests share, as bench/router.ts's overhead
 * run wants it; the routing benchmark leaves it at 0 and times prefill in the engine.
 */
export interface SimulatedSpec extends Partial<EngineSpec> {
  decodeMs: number;
  prefillMs?: number;
  prefillMsPerToken?: number;
}

export interface SimulatedStats {
  /** Sequences holding a slot now. */
  running: number;
  /** Sequences in the server's own queue now. */
  waiting: number;
  /** The most sequences that ever held a slot at once. */
  maxRunning: number;
  /** Requests that had to wait in the server's queue: each one found the server past its capacity. */
  queueWaits: number;
  requests: number;
  /** Prefix cache: lookups at prefill start, hits, misses, prompt tokens not prefilled. */
  cache: { lookups: number; hits: number; misses: number; savedTokens: number };
  /** The current slow-down factor. */
  slow: number;
}

export interface SimulatedServer {
  url: string;
  spec: Readonly<EngineSpec>;
  stats(): SimulatedStats;
  slow(factor: number): void;
  close(): Promise<void>;
}

const DEFAULT_MAX_SEQUENCES = 64;
const DEFAULT_PREFILL_TOKENS_PER_SECOND = 1_000_000;

// The answer's words, one a token.
const SIMULATED_WORDS = "the tide comes in over the sand and goes out again under the moon".split(" ");

/** Token `index` of every answer, as streamed (a space before all but the first). */
export function simulatedToken(index: number): string {
  const word = SIMULATED_WORDS[index % SIMULATED_WORDS.length]!;
  return index === 0 ? word : ` ${word}`;
}

/** The whole answer of `tokens` tokens. */
export function simulatedAnswer(tokens: number): string {
  let text = "";
  for (let i = 0; i < tokens; i++) text += simulatedToken(i);
  return text;
}

interface ChatBody {
  model?: string;
  messages?: ReferenceMessage[];
  stream?: boolean;
  max_tokens?: number;
  max_completion_tokens?: number;
  add_generation_prompt?: boolean;
  continue_final_message?: boolean;
  prefix_key?: string;
  prefix_tokens?: number;
}

/** The shared prefix of a request, as the cache keys it (see the header). */
function prefixOf(body: ChatBody, messages: ReferenceMessage[]): EngineRequest["prefix"] {
  const first = messages[0];
  const firstTokens = first === undefined ? 0 : 2 + countTokens(first.content);
  if (typeof body.prefix_key === "string") return { key: `k:${body.prefix_key}`, tokens: body.prefix_tokens ?? firstTokens };
  if (first === undefined) return undefined;
  return { key: `m:${createHash("sha256").update(first.content).digest("base64url")}`, tokens: firstTokens };
}

/** Starts one simulated inference server (one edge's GPU) on a free loopback port. */
export async function startSimulatedInference(spec: SimulatedSpec): Promise<SimulatedServer> {
  const engineSpec: EngineSpec = {
    maxSequences: spec.maxSequences ?? DEFAULT_MAX_SEQUENCES,
    prefillTokensPerSecond: spec.prefillTokensPerSecond ?? DEFAULT_PREFILL_TOKENS_PER_SECOND,
    decodeMs: spec.decodeMs,
    batchSlowdown: spec.batchSlowdown ?? 0,
    prefixCacheTokens: spec.prefixCacheTokens ?? 0,
  };
  const engine = createEngine(engineSpec, systemClock);
  let slowFactor = 1;
  const counters = { maxRunning: 0, queueWaits: 0, requests: 0 };

  const json = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { "content-type": "application/json" });
    res.end(JSON.stringify(body));
  };
  const fail = (res: ServerResponse, status: number, message: string) =>
    json(res, status, { error: { message, type: "invalid_request_error" } });

  function chat(res: ServerResponse, body: ChatBody): void {
    if (body.stream !== true || !Array.isArray(body.messages)) {
      fail(res, 400, "only streamed chats with messages are simulated");
      return;
    }
    const messages = body.messages;
    const continuing = body.continue_final_message === true;
    const options = { addGenerationPrompt: body.add_generation_prompt, continueFinalMessage: body.continue_final_message };
    const promptTokens = countPromptTokens(messages, options);
    const outputTokens = Math.max(1, body.max_completion_tokens ?? body.max_tokens ?? 16);
    // A continuation goes on after the words already in the open assistant message.
    const last = messages.at(-1);
    const offset = continuing && last !== undefined ? last.content.split(" ").filter((w) => w !== "").length : 0;
    const id = `chatcmpl-sim-${counters.requests}`;
    const created = Math.floor(Date.now() / 1000);
    counters.requests += 1;
    const send = (choices: unknown[], usage?: unknown) =>
      res.write(
        `data: ${JSON.stringify({ id, object: "chat.completion.chunk", created, model: body.model, choices, ...(usage === undefined ? {} : { usage }) })}\n\n`,
      );
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
    res.flushHeaders();
    let cancel = () => {};
    let ended = false;
    res.on("close", () => {
      if (!ended) cancel();
    });
    const submit = () => {
      if (res.destroyed) return;
      if (engine.running() >= engineSpec.maxSequences) counters.queueWaits += 1;
      const handle = engine.submit(
        { promptTokens, outputTokens, prefix: prefixOf(body, messages) },
        {
          token(index) {
            const i = offset + index;
            send([{ index: 0, delta: { ...(index === 0 ? { role: "assistant" } : {}), content: simulatedToken(i) }, finish_reason: null }]);
          },
          done() {
            ended = true;
            send([{ index: 0, delta: {}, finish_reason: "length" }]);
            send([], { prompt_tokens: promptTokens, completion_tokens: outputTokens, total_tokens: promptTokens + outputTokens });
            res.end("data: [DONE]\n\n");
          },
          error(reason) {
            ended = true;
            res.destroy(new Error(reason));
          },
        },
      );
      counters.maxRunning = Math.max(counters.maxRunning, engine.running());
      cancel = () => handle.cancel();
    };
    const delayMs = (spec.prefillMs ?? 0) + (spec.prefillMsPerToken ?? 0) * promptTokens;
    if (delayMs > 0) {
      const timer = setTimeout(submit, delayMs);
      cancel = () => clearTimeout(timer);
    } else submit();
  }

  function stats(): SimulatedStats {
    const cache = engine.cacheStats();
    return {
      running: engine.running(),
      waiting: engine.waiting(),
      ...counters,
      cache: { lookups: cache.lookups, hits: cache.hits, misses: cache.lookups - cache.hits, savedTokens: cache.savedTokens },
      slow: slowFactor,
    };
  }

  const slow = (factor: number) => {
    slowFactor = factor;
    engine.slow(factor);
  };

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (req.method === "GET" && req.url === "/sim/stats") return json(res, 200, stats());
    const route = `${req.method} ${req.url}`;
    if (route !== "POST /v1/chat/completions" && route !== "POST /sim/slow") return fail(res, 404, `no route ${route}`);
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      let body: unknown;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
      } catch {
        return fail(res, 400, "the body is not JSON");
      }
      if (route === "POST /v1/chat/completions") return chat(res, body as ChatBody);
      const factor = (body as { factor?: unknown }).factor;
      if (typeof factor !== "number" || !(factor > 0)) return fail(res, 400, "factor must be a positive number");
      slow(factor);
      json(res, 200, stats());
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    spec: engineSpec,
    stats,
    slow,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
