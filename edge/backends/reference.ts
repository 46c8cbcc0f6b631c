// The reference backend: the built-in deterministic model (lib/reference-model) served from a
// piscina worker pool, so the HTTP thread stays free while the model computes. Deltas stream
// from the worker through a MessagePort as each token is produced; an abort sets a shared flag
// that the worker checks between tokens. Its output is byte-identical to calling the model
// directly (a verifier recomputes answers that way).
import { availableParallelism } from "node:os";
import { MessageChannel } from "node:worker_threads";

import { Piscina } from "piscina";
import type { Logger } from "pino";

import {
  countPromptTokens as countTemplateTokens,
  measureThroughput,
  modelWeights,
  ReferenceTemplateError,
  resolveTemplateOptions,
  temperatureMilli,
} from "../../lib/reference-model/index.ts";
import { componentLogger } from "../../lib/logging.ts";
import type { ChatTemplateOptions, GenerateEvent, GenerateSpec, ModelConfig } from "../../lib/reference-model/index.ts";
import { BackendError } from "./types.ts";
import type { Backend, ChatEvent, ChatRequest, EmbeddingRequest } from "./types.ts";
import type { AbortedMessage, ChatTask, EmbedTask, WorkerResult } from "./referenceWorker.ts";

/** Options of the reference backend. */
export interface ReferenceBackendOptions {
  /** Width of the network's layers (8..1024). */
  hidden: number;
  /** Number of layers (1..64). */
  layers: number;
  /** Worker threads; default max(1, availableParallelism() - 1). */
  threads?: number;
  /**
   * Declared throughput (prompt + completion tokens per second, all threads). When absent it is
   * measured at creation: about 100 ms of the short-completion workload on this thread, times
   * `threads`.
   */
  tokensPerSecond?: number;
  logger: Logger;
}

/** Converts a ChatRequest into the model's spec (the same spec a verifier would rebuild). */
export function referenceSpec(req: ChatRequest, config: ModelConfig, seed: number): GenerateSpec {
  return {
    messages: req.messages.map((m) => ({ role: m.role, content: m.content })),
    maxTokens: req.maxTokens,
    temperature: req.temperature,
    seed,
    stop: req.stop,
    config,
    ...templateOptions(req),
  };
}

/** Checks what the worker would otherwise reject, so the client gets a 400 naming the field. */
function validate(req: ChatRequest): void {
  try {
    temperatureMilli(req.temperature);
  } catch (err) {
    throw new BackendError({ status: 400, message: (err as Error).message, param: "temperature" });
  }
  if (!Number.isSafeInteger(req.maxTokens) || req.maxTokens < 0) {
    throw new BackendError({
      status: 400,
      message: `max_tokens must be a non-negative integer, got ${req.maxTokens}`,
      param: "max_tokens",
    });
  }
  if (req.seed !== undefined && !Number.isSafeInteger(req.seed)) {
    throw new BackendError({ status: 400, message: `seed must be a safe integer, got ${req.seed}`, param: "seed" });
  }
  if (req.stop !== undefined && req.stop.length > 4) {
    throw new BackendError({ status: 400, message: `at most 4 stop sequences are allowed, got ${req.stop.length}`, param: "stop" });
  }
  try {
    resolveTemplateOptions(req.messages, templateOptions(req));
  } catch (err) {
    if (!(err instanceof ReferenceTemplateError)) throw err;
    throw new BackendError({ status: 400, message: err.message, param: err.param });
  }
}

/** How the request's prompt ends, in the template's terms. */
function templateOptions(req: ChatRequest): ChatTemplateOptions {
  return { addGenerationPrompt: req.addGenerationPrompt, continueFinalMessage: req.continueFinalMessage };
}

/**
 * A queue between the port's message events and the async iterator: push from the event,
 * await in the iterator; `fail` makes the next (or pending) read reject.
 */
function createEventQueue<T>(): { push(v: T): void; fail(e: unknown): void; wake(): void; next(): Promise<T | undefined> } {
  const items: T[] = [];
  let failure: { error: unknown } | undefined;
  let waiter: (() => void) | undefined;
  const notify = (): void => {
    const w = waiter;
    waiter = undefined;
    w?.();
  };
  return {
    push(v) {
      items.push(v);
      notify();
    },
    fail(e) {
      failure ??= { error: e };
      notify();
    },
    wake: notify,
    async next() {
      if (items.length === 0 && failure === undefined) await new Promise<void>((resolve) => (waiter = resolve));
      if (items.length > 0) return items.shift();
      if (failure !== undefined) throw failure.error;
      return undefined; // woken without an item: the caller re-checks its abort signal
    },
  };
}

/** The reference model as a Backend (see the file comment); `close()` ends the worker threads. */
export function createReferenceBackend(options: ReferenceBackendOptions): Backend {
  const config: ModelConfig = { hidden: options.hidden, layers: options.layers };
  modelWeights(config); // throws ReferenceModelConfigError for a bad shape here, not on the first request
  const threads = options.threads ?? Math.max(1, availableParallelism() - 1);
  if (!Number.isInteger(threads) || threads < 1) throw new RangeError(`threads must be a positive integer, got ${threads}`);
  const tokensPerSecond = options.tokensPerSecond ?? Math.round(measureThroughput(config, 100).tokensPerSecond * threads);
  const log = componentLogger(options.logger, "reference-backend");
  const pool = new Piscina<ChatTask | EmbedTask, WorkerResult>({
    filename: new URL("./referenceWorker.ts", import.meta.url).href,
    minThreads: threads,
    maxThreads: threads,
    idleTimeout: Infinity,
    // Without it piscina re-queues a task it could not hand out at the tail, and under sustained
    // load some requests wait for seconds while later ones run (piscinajs/piscina#1031; measured
    // here: p99 4.6 s against p50 0.11 s with 64 clients on one thread, 0.2 s / 0.2 s with it).
    stricterFIFO: true,
  });
  log.info({ hidden: config.hidden, layers: config.layers, threads, tokensPerSecond }, "reference backend started");

  async function* chat(req: ChatRequest, signal: AbortSignal): AsyncGenerator<ChatEvent, void, undefined> {
    validate(req);
    signal.throwIfAborted();
    // Without a seed each request samples differently, as OpenAI does; the seed drawn is what a
    // verifier would need, so it is logged.
    const seed = req.seed ?? (Math.random() * 0x1_0000_0000) >>> 0;
    if (req.seed === undefined && req.temperature > 0) log.debug({ seed }, "drew a sampling seed");
    const spec = referenceSpec(req, config, seed);
    const abort = new SharedArrayBuffer(4);
    const flag = new Int32Array(abort);
    const { port1, port2 } = new MessageChannel();
    const queue = createEventQueue<GenerateEvent | AbortedMessage>();
    port1.on("message", (m: GenerateEvent | AbortedMessage) => queue.push(m));
    const onAbort = (): void => {
      Atomics.store(flag, 0, 1);
      queue.wake();
    };
    signal.addEventListener("abort", onAbort, { once: true });
    const task = pool.run({ kind: "chat", spec, port: port2, abort }, { transferList: [port2] });
    task.catch((err: unknown) => {
      log.error({ err }, "reference worker failed");
      queue.fail(
        new BackendError({ status: 500, message: `the reference model failed: ${(err as Error)?.message ?? String(err)}` }, { cause: err }),
      );
    });
    try {
      for (;;) {
        const ev = await queue.next();
        signal.throwIfAborted();
        if (ev === undefined) continue;
        if (ev.type === "delta") yield { type: "delta", text: ev.text };
        else if (ev.type === "done") {
          yield { type: "done", finishReason: ev.finishReason, usage: ev.usage };
          return;
        } else {
          // The worker only stops on our flag, which is set only after an abort or an early exit.
          signal.throwIfAborted();
          return;
        }
      }
    } finally {
      // Reached on completion, abort, error, or the consumer leaving early: stop the worker.
      Atomics.store(flag, 0, 1);
      signal.removeEventListener("abort", onAbort);
      port1.close();
    }
  }

  async function embedTexts(
    req: EmbeddingRequest,
    signal: AbortSignal,
  ): Promise<{ embeddings: number[][]; usage: { promptTokens: number } }> {
    signal.throwIfAborted();
    const abort = new SharedArrayBuffer(4);
    const flag = new Int32Array(abort);
    const onAbort = (): void => {
      Atomics.store(flag, 0, 1);
    };
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      const r = await pool.run({ kind: "embed", texts: req.input, config, abort }).catch((err: unknown) => {
        log.error({ err }, "reference worker failed");
        throw new BackendError(
          { status: 500, message: `the reference model failed: ${(err as Error)?.message ?? String(err)}` },
          { cause: err },
        );
      });
      signal.throwIfAborted();
      if (r.kind !== "embed" || !("embeddings" in r))
        throw new BackendError({ status: 500, message: "the reference worker returned no embeddings" });
      return { embeddings: r.embeddings, usage: { promptTokens: r.promptTokens } };
    } finally {
      signal.removeEventListener("abort", onAbort);
    }
  }

  return {
    countPromptTokens: (req) => countTemplateTokens(req.messages, templateOptions(req)),
    chat,
    embed: embedTexts,
    declaredTokensPerSecond: tokensPerSecond,
    async close() {
      await pool.destroy();
      log.info("reference backend closed");
    },
  };
}
