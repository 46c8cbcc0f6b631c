// One chat completion exchanged with an edge, as an OpenAI client would make it (JSON or SSE),
// timed: time to the first byte of the body, and to the end. Transport failures — a refused
// connection, a timeout, a 5xx, a 429, a stream cut before `[DONE]` or an error event inside it —
// are thrown as RetryableChallengeError; any other status is returned for the caller to judge.
import { Agent as HttpAgent, request as httpRequest } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";

import { z } from "zod";

import { NONCE_HEADER } from "../../lib/protocol/edgeProofs.ts";
import { VOUCHER_HEADER } from "../../lib/protocol/voucherHeader.ts";
import type { Hex } from "viem";

import { RetryableChallengeError } from "./types.ts";
import type { ReceiptJson } from "./types.ts";

/** No HTTP answer at all: the connection was refused or reset before any response (not a timeout). */
export class EdgeUnreachableError extends RetryableChallengeError {
  override name = "EdgeUnreachableError";
}

export interface ChatExchange {
  status: number;
  streamed: boolean;
  /** The completion text (assembled from the deltas when streamed). */
  text: string;
  /** `usage` as the answer reported it. */
  usage?: { promptTokens: number; completionTokens: number };
  /** The receipt the answer carried, if it carried a well-formed one. */
  receipt?: ReceiptJson;
  /** Why the receipt field, present, could not be read. */
  receiptProblem?: string;
  /** Error answers: OpenAI's `error` object. */
  error?: { message?: string; type?: string; code?: string; [k: string]: unknown };
  /** Milliseconds to the first byte of the body. */
  ttfbMs: number;
  /** Milliseconds to the end of the answer. */
  totalMs: number;
}

/** Longest answer read (characters): a challenge answer is a few hundred; an edge must not make us buffer gigabytes. */
export const MAX_ANSWER_CHARS = 4 * 1024 * 1024;

export interface ExchangeOptions {
  endpoint: string;
  /** The exact body bytes to send (the receipt's requestHash covers them). */
  body: string;
  nonce: Hex;
  voucherHeader: string;
  /** The whole exchange must end within this many milliseconds (else: retryable timeout). */
  timeoutMs: number;
  /** Also aborts the exchange (a capacity burst's deadline). */
  signal?: AbortSignal;
}

const hex32 = z
  .string()
  .regex(/^0x[0-9a-fA-F]{64}$/)
  .transform((s) => s.toLowerCase() as Hex);
const uint = z.union([z.string().regex(/^\d{1,78}$/), z.number().int().nonnegative()]).transform((v) => BigInt(v).toString());
const uint32 = z.number().int().min(0).max(0xffffffff);
/** The receipt as the edge's API writes it (snake_case, decimal strings). */
const WireReceipt = z.object({
  edge_id: uint,
  epoch: uint,
  nonce: hex32,
  request_hash: hex32,
  response_hash: hex32,
  prompt_tokens: uint32,
  completion_tokens: uint32,
  signature: z
    .string()
    .regex(/^0x[0-9a-fA-F]{130}$/)
    .transform((s) => s as Hex),
});

/** Reads the `receipt` of an answer's `tideway` object. */
export function parseWireReceipt(value: unknown): { receipt?: ReceiptJson; problem?: string } {
  if (value === undefined || value === null) return { problem: "the answer carries no receipt" };
  const parsed = WireReceipt.safeParse(value);
  if (!parsed.success)
    return { problem: `malformed receipt: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}` };
  const r = parsed.data;
  return {
    receipt: {
      edgeId: r.edge_id,
      epoch: r.epoch,
      nonce: r.nonce,
      requestHash: r.request_hash.toLowerCase() as Hex,
      responseHash: r.response_hash.toLowerCase() as Hex,
      promptTokens: r.prompt_tokens,
      completionTokens: r.completion_tokens,
      signature: r.signature,
    },
  };
}

function usageOf(value: unknown): ChatExchange["usage"] {
  const u = value as { prompt_tokens?: unknown; completion_tokens?: unknown } | undefined;
  if (typeof u?.prompt_tokens !== "number" || typeof u?.completion_tokens !== "number") return undefined;
  return { promptTokens: u.prompt_tokens, completionTokens: u.completion_tokens };
}

// Node's http client with keep-alive agents rather than fetch: fetch cost ~0.23 ms of CPU per
// request here against ~0.04 ms, a third of a challenge's verifier-side cost (bench:verifier).
const agents = { http: new HttpAgent({ keepAlive: true, maxSockets: 1024 }), https: new HttpsAgent({ keepAlive: true, maxSockets: 1024 }) };

interface RawAnswer {
  status: number;
  contentType: string;
  raw: string;
  ttfbMs: number;
}

/**
 * POSTs `body` and reads the whole answer as text. Rejects with {EdgeUnreachableError} when no
 * response came (refused, reset), and with a {RetryableChallengeError} on a timeout or abort, a
 * body cut short, or one longer than MAX_ANSWER_CHARS.
 */
function post(url: string, headers: Record<string, string>, body: string, signal: AbortSignal, started: number): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const target = new URL(url);
    const https = target.protocol === "https:";
    let responded = false;
    const fail = (err: unknown) => {
      if (err instanceof RetryableChallengeError) return reject(err);
      const message = `${responded ? "reading the answer of" : "POST"} ${url}: ${describe(err, signal)}`;
      reject(
        responded || signal.aborted
          ? new RetryableChallengeError(message, { cause: err })
          : new EdgeUnreachableError(message, { cause: err }),
      );
    };
    const req = (https ? httpsRequest : httpRequest)(
      target,
      {
        method: "POST",
        headers: { ...headers, "content-length": Buffer.byteLength(body) },
        agent: https ? agents.https : agents.http,
        signal,
      },
      (res) => {
        responded = true;
        let ttfbMs = -1;
        let raw = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          if (ttfbMs < 0) ttfbMs = performance.now() - started;
          raw += chunk;
          if (raw.length > MAX_ANSWER_CHARS)
            res.destroy(new RetryableChallengeError(`${url} sent more than ${MAX_ANSWER_CHARS} characters: not a chat completion`));
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, contentType: String(res.headers["content-type"] ?? ""), raw, ttfbMs }));
        res.on("error", fail);
      },
    );
    req.on("error", fail);
    req.end(body);
  });
}

/** Sends one chat completion to `options.endpoint` and reads the whole answer. */
export async function exchangeChat(options: ExchangeOptions): Promise<ChatExchange> {
  const base = options.endpoint.replace(/\/+$/, "");
  const url = `${base}/v1/chat/completions`;
  const timeout = AbortSignal.timeout(options.timeoutMs);
  const signal = options.signal === undefined ? timeout : AbortSignal.any([timeout, options.signal]);
  const started = performance.now();
  const answer = await post(
    url,
    { "content-type": "application/json", [VOUCHER_HEADER]: options.voucherHeader, [NONCE_HEADER]: options.nonce },
    options.body,
    signal,
    started,
  );
  const res = { status: answer.status };
  const streamed = answer.contentType.startsWith("text/event-stream");
  const raw = answer.raw;
  const totalMs = performance.now() - started;
  const ttfbMs = answer.ttfbMs < 0 ? totalMs : answer.ttfbMs;
  if (res.status >= 500 || res.status === 429) {
    throw new RetryableChallengeError(`${url} answered ${res.status}: ${raw.slice(0, 200)}`);
  }

  if (!streamed) {
    // biome-ignore lint/suspicious/noExplicitAny: an edge's untrusted JSON; every field is checked with typeof before use
    let json: Record<string, any> | undefined;
    try {
      json = JSON.parse(raw) as typeof json;
    } catch {
      json = undefined;
    }
    if (res.status !== 200) {
      return { status: res.status, streamed, text: "", error: json?.error ?? { message: raw.slice(0, 200) }, ttfbMs, totalMs };
    }
    const content = json?.choices?.[0]?.message?.content;
    if (typeof content !== "string") throw new RetryableChallengeError(`${url} answered 200 without a completion: ${raw.slice(0, 200)}`);
    const { receipt, problem } = parseWireReceipt(json?.tideway?.receipt);
    return { status: 200, streamed, text: content, usage: usageOf(json?.usage), receipt, receiptProblem: problem, ttfbMs, totalMs };
  }

  // SSE: `data: {json}` events separated by blank lines, ending with `data: [DONE]`.
  let text = "";
  let done = false;
  // biome-ignore lint/suspicious/noExplicitAny: an edge's untrusted SSE events; every field is checked before use
  let last: Record<string, any> | undefined;
  for (const block of raw.split("\n\n")) {
    const line = block.trim();
    if (!line.startsWith("data:")) continue;
    const data = line.slice(5).trim();
    if (data === "[DONE]") {
      done = true;
      break;
    }
    let event: NonNullable<typeof last>;
    try {
      event = JSON.parse(data) as typeof event;
    } catch {
      throw new RetryableChallengeError(`${url} sent an unreadable event: ${data.slice(0, 200)}`);
    }
    if (event.error !== undefined)
      throw new RetryableChallengeError(`${url} failed mid-stream: ${JSON.stringify(event.error).slice(0, 200)}`);
    for (const choice of Array.isArray(event.choices) ? event.choices : []) {
      const piece = choice?.delta?.content;
      if (typeof piece === "string") text += piece;
    }
    if (event.usage !== undefined || event.tideway !== undefined) last = event;
  }
  if (!done) throw new RetryableChallengeError(`${url} ended its stream before [DONE]`);
  const { receipt, problem } = parseWireReceipt(last?.tideway?.receipt);
  return { status: res.status, streamed, text, usage: usageOf(last?.usage), receipt, receiptProblem: problem, ttfbMs, totalMs };
}

function describe(err: unknown, signal: AbortSignal): string {
  if (signal.aborted) {
    const reason = signal.reason as Error | undefined;
    return reason?.name === "TimeoutError" ? "timed out" : `aborted (${reason?.message ?? "deadline"})`;
  }
  const e = err as Error & { code?: string; cause?: { code?: string; message?: string } };
  return e.code ?? e.cause?.code ?? e.cause?.message ?? e.message ?? String(err);
}
