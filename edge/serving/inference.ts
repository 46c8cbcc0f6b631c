// Serving one request, whatever carries it (HTTP, or the router link, which also arrives over
// HTTP): price it at its maximum, take a place in line, get it paid, run the backend, meter what
// was served, log it in the usage log, sign a receipt when a nonce asks for one. The HTTP layer
// only turns the events into SSE or JSON.
//
// Order matters:
// - the queue is checked before the payment check, so a surge is turned away cheaply;
// - the payment gate resolves only once the voucher is stored durably, and no output leaves
//   before it has, so nothing is served on a voucher a crash could lose;
// - the usage-log entry is durable before the last byte (its receipt) is sent, so a verifier
//   that got a receipt will find its nonce in the log.
import type { Logger } from "pino";
import type { Hex } from "viem";

import { chatResponseHash, embeddingsResponseHash, requestHash, ZERO_NONCE } from "../../lib/protocol/edgeProofs.ts";
import type { ChatRequest, EmbeddingRequest, TokenUsage } from "../backends/types.ts";
import type { ModelConfig } from "../config.ts";
import type { EdgeMetrics } from "../metrics.ts";
import type { Limiter } from "../api/limiter.ts";
import { ApiError, badRequest, modelNotFound } from "../api/errors.ts";
import type { ChatCompletionBody, EmbeddingsBody } from "../../lib/openai/requests.ts";
import type { Admission, EpochsPort, PaymentGatePort, ReceiptSignerPort, ServedModel, UsageLogPort } from "./ports.ts";

export interface ServingDeps {
  readonly edgeId: bigint;
  readonly models: ReadonlyMap<string, ServedModel>;
  /** Absent when the edge serves without payment. */
  readonly payment?: PaymentGatePort;
  readonly limiter: Limiter;
  readonly epochs: EpochsPort;
  readonly usageLog: UsageLogPort;
  readonly receipts: ReceiptSignerPort;
  readonly metrics: EdgeMetrics;
  readonly logger: Logger;
  /** Called with each finished request's service time, for Retry-After and load reports. */
  readonly onServed?: (serviceMs: number, tokens: number) => void;
  /**
   * DEMOS AND TESTS ONLY (config `faultInjection`): this fraction of chat completions is served
   * corrupted ({corruptAnswer}), and the receipt and usage log cover the corrupted text, as a
   * dishonest edge's would. `random` (default Math.random) draws in [0, 1).
   */
  readonly faultInjection?: { readonly wrongAnswerRate: number; readonly random?: () => number };
}

/** What every answer carries besides the model's output. */
export interface ServedInfo {
  usage: TokenUsage;
  /** What the request cost, in wei of EDGE (0 when unpaid). */
  cost: bigint;
  epoch: bigint;
  usageIndex: number;
  sessionId: bigint;
  receipt?: {
    edgeId: bigint;
    epoch: bigint;
    nonce: Hex;
    requestHash: Hex;
    responseHash: Hex;
    promptTokens: number;
    completionTokens: number;
    signature: Hex;
  };
}

export interface RequestContext {
  /** The exact body bytes (the receipt's requestHash covers them). */
  rawBody: Uint8Array;
  voucherHeader: string | undefined;
  /** A 32-byte nonce: the client wants a signed receipt. */
  nonce: Hex | undefined;
  /** Aborted when the client goes away. */
  signal: AbortSignal;
}

/**
 * A wrong answer for fault injection: `text` with its words shuffled (whitespace stays where it
 * was). Always differs from `text`: when shuffling cannot change it (one word, or all words alike)
 * the characters are reversed, and failing that (a palindrome, or nothing) a mark is appended.
 */
export function corruptAnswer(text: string, random: () => number = Math.random): string {
  const parts = text.split(/(\s+)/);
  const wordAt: number[] = [];
  parts.forEach((p, i) => {
    if (p !== "" && !/^\s+$/.test(p)) wordAt.push(i);
  });
  const words = wordAt.map((i) => parts[i]!);
  for (let i = words.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [words[i], words[j]] = [words[j]!, words[i]!];
  }
  wordAt.forEach((at, k) => {
    parts[at] = words[k]!;
  });
  let wrong = parts.join("");
  if (wrong === text) wrong = [...text].reverse().join("");
  if (wrong === text) wrong = `${text}~`;
  return wrong;
}

/** `text` cut into `n` (at least 1) consecutive pieces of about equal length, to stream it. */
function splitInto(text: string, n: number): string[] {
  const chars = [...text];
  const count = Math.max(1, Math.min(n, chars.length));
  const pieces: string[] = [];
  for (let k = 0; k < count; k++)
    pieces.push(chars.slice(Math.floor((k * chars.length) / count), Math.floor(((k + 1) * chars.length) / count)).join(""));
  return pieces;
}

/** Price of `prompt` input and `completion` output tokens under `model`'s prices. */
export function priceOf(model: ModelConfig, prompt: number, completion: number): bigint {
  return BigInt(prompt) * model.price.inputPerToken + BigInt(completion) * model.price.outputPerToken;
}

function modelOf(deps: ServingDeps, name: string): ServedModel {
  const served = deps.models.get(name);
  if (served === undefined) throw modelNotFound(name, [...deps.models.keys()]);
  return served;
}

/** Queue place first, then payment; on any failure nothing is held. */
async function admit(
  deps: ServingDeps,
  model: string,
  maxCost: bigint,
  ctx: RequestContext,
): Promise<{ release: () => void; admission?: Admission }> {
  const ticket = deps.limiter.enter();
  let admission: Admission | undefined;
  try {
    if (deps.payment !== undefined) admission = await deps.payment.admit({ voucherHeader: ctx.voucherHeader, model, maxCost });
    await ticket.ready;
    if (ctx.signal.aborted)
      throw new ApiError(400, "invalid_request_error", "the client closed the request while it was queued", { code: "client_closed" });
  } catch (err) {
    ticket.release();
    admission?.release();
    throw err;
  }
  // The gate's settle/release are idempotent: whichever comes first wins.
  return { release: () => ticket.release(), admission };
}

async function finish(
  deps: ServingDeps,
  model: ModelConfig,
  ctx: RequestContext,
  admission: Admission | undefined,
  usage: TokenUsage,
  responseHash: Hex,
  maxCost: bigint,
): Promise<ServedInfo> {
  // A proxied backend counts tokens with its own tokenizer, which may exceed the estimate the
  // request was priced (and paid) at: the client never pays more than it was asked for.
  const priced = priceOf(model, usage.promptTokens, usage.completionTokens);
  const cost = admission === undefined ? 0n : priced < maxCost ? priced : maxCost;
  admission?.settle(cost);
  const reqHash = requestHash(ctx.rawBody);
  const sessionId = admission?.sessionId ?? 0n;
  const logged = deps.usageLog.append({
    nonce: ctx.nonce ?? ZERO_NONCE,
    sessionId,
    promptTokens: usage.promptTokens,
    completionTokens: usage.completionTokens,
    requestHash: reqHash,
    responseHash,
  });
  const receipt =
    ctx.nonce === undefined
      ? undefined
      : logged.then(({ epoch }) =>
          deps.receipts.sign({
            epoch,
            nonce: ctx.nonce!,
            requestHash: reqHash,
            responseHash,
            promptTokens: usage.promptTokens,
            completionTokens: usage.completionTokens,
          }),
        );
  // If the log write fails, `receipt` fails with it: that is reported through `logged` below.
  receipt?.catch(() => {});
  const { epoch, index } = await logged;
  const info: ServedInfo = { usage, cost, epoch, usageIndex: index, sessionId };
  if (receipt !== undefined) {
    info.receipt = await receipt;
    deps.metrics.receiptsSigned.inc();
  }
  deps.metrics.tokens.inc({ model: model.name, kind: "prompt" }, usage.promptTokens);
  deps.metrics.tokens.inc({ model: model.name, kind: "completion" }, usage.completionTokens);
  return info;
}

/** Receives a chat completion as it is produced. */
export interface ChatSink {
  /** The request is admitted and paid: output may start (SSE headers go out now). */
  start(): void;
  delta(text: string): void;
}

export interface ChatResult extends ServedInfo {
  text: string;
  finishReason: "stop" | "length";
}

/** Serves a chat completion, streaming deltas into `sink`. Throws ApiError/PaymentError/OverloadedError before `start`. */
export async function serveChat(deps: ServingDeps, body: ChatCompletionBody, ctx: RequestContext, sink: ChatSink): Promise<ChatResult> {
  const served = modelOf(deps, body.model);
  const model = served.config;
  const asked = body.max_completion_tokens ?? body.max_tokens ?? model.defaultMaxTokens;
  if (asked > model.maxTokens)
    throw badRequest(`max_tokens is ${asked}; this edge serves at most ${model.maxTokens} for ${model.name}`, "max_tokens");
  const request: ChatRequest = {
    model: model.name,
    messages: body.messages.map((m) => ({ role: m.role, content: m.content })),
    maxTokens: asked,
    temperature: body.temperature ?? 1,
    seed: body.seed ?? undefined,
    stop: body.stop == null ? undefined : Array.isArray(body.stop) ? body.stop : [body.stop],
    addGenerationPrompt: body.add_generation_prompt,
    continueFinalMessage: body.continue_final_message,
    body: body as Record<string, unknown>,
  };
  const promptTokens = served.backend.countPromptTokens(request);
  const maxCost = priceOf(model, promptTokens, asked);
  const { release, admission } = await admit(deps, model.name, maxCost, ctx);
  const startedAt = performance.now();
  let text = "";
  let deltas = 0;
  // Fault injection (demos and tests only): this answer is held back, corrupted, then sent.
  const fault = deps.faultInjection;
  const random = fault?.random ?? Math.random;
  const corrupt = fault !== undefined && fault.wrongAnswerRate > 0 && random() < fault.wrongAnswerRate;
  // The model starts at once; its output waits until the voucher paying for it is on disk.
  const work = new AbortController();
  const onClientGone = () => work.abort(ctx.signal.reason);
  ctx.signal.addEventListener("abort", onClientGone, { once: true });
  const events = served.backend.chat(request, work.signal)[Symbol.asyncIterator]();
  const first = events.next();
  // If the client leaves while the voucher is still being flushed, `first` rejects before it is
  // awaited: mark it handled now (awaiting it below still throws).
  first.catch(() => {});
  try {
    try {
      await admission?.durable;
    } catch (err) {
      work.abort(err);
      throw err;
    }
    sink.start();
    let done: { finishReason: "stop" | "length"; usage: TokenUsage } | undefined;
    try {
      for (let step = first; ; step = events.next()) {
        const result = await step;
        if (result.done === true) break;
        const event = result.value;
        if (event.type === "delta") {
          if (deltas === 0) deps.metrics.timeToFirstToken.observe({ model: model.name }, (performance.now() - startedAt) / 1000);
          deltas += 1;
          text += event.text;
          if (!corrupt) sink.delta(event.text);
        } else {
          done = event;
        }
      }
    } catch (err) {
      if (!ctx.signal.aborted || deltas === 0) throw err;
    }
    if (corrupt) {
      // What is sent, signed and logged is the corrupted text: a dishonest edge's answer.
      text = corruptAnswer(text, random);
      if (!ctx.signal.aborted) for (const piece of splitInto(text, deltas)) sink.delta(piece);
      deps.logger.debug({ model: model.name }, "fault injection: served a corrupted answer");
    }
    // A client that leaves mid-stream pays for the tokens it was sent.
    const usage = done?.usage ?? { promptTokens, completionTokens: deltas };
    const info = await finish(deps, model, ctx, admission, usage, chatResponseHash(text), maxCost);
    deps.onServed?.(performance.now() - startedAt, usage.promptTokens + usage.completionTokens);
    return { ...info, text, finishReason: done?.finishReason ?? "length" };
  } catch (err) {
    work.abort(err);
    if (deltas === 0) admission?.release();
    else admission?.settle(priceOf(model, promptTokens, deltas));
    throw err;
  } finally {
    ctx.signal.removeEventListener("abort", onClientGone);
    release();
  }
}

export interface EmbeddingsResult extends ServedInfo {
  embeddings: number[][];
}

/** Serves an embeddings request. */
export async function serveEmbeddings(deps: ServingDeps, body: EmbeddingsBody, ctx: RequestContext): Promise<EmbeddingsResult> {
  const served = modelOf(deps, body.model);
  const model = served.config;
  const input = typeof body.input === "string" ? [body.input] : body.input;
  const request: EmbeddingRequest = { model: model.name, input, body: body as Record<string, unknown> };
  const promptTokens = served.backend.countPromptTokens({
    model: model.name,
    messages: input.map((content) => ({ role: "user" as const, content })),
    maxTokens: 0,
    temperature: 0,
    body: {},
  });
  const maxCost = priceOf(model, promptTokens, 0);
  const { release, admission } = await admit(deps, model.name, maxCost, ctx);
  const startedAt = performance.now();
  try {
    const [{ embeddings, usage }] = await Promise.all([served.backend.embed(request, ctx.signal), admission?.durable]);
    const info = await finish(
      deps,
      model,
      ctx,
      admission,
      { promptTokens: usage.promptTokens, completionTokens: 0 },
      embeddingsResponseHash(embeddings),
      maxCost,
    );
    deps.onServed?.(performance.now() - startedAt, usage.promptTokens);
    return { ...info, embeddings };
  } catch (err) {
    admission?.release();
    throw err;
  } finally {
    release();
  }
}
