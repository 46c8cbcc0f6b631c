// The proxy backend: forwards requests to any OpenAI-compatible server (vLLM, Ollama, llama.cpp,
// a hosted API) and streams its answer through as it arrives. The upstream is always asked to
// stream with usage, so the edge bills what the upstream counted; when it sends no usage the
// reference tokenizer counts instead.
import type { Logger } from "pino";

import { componentLogger } from "../../lib/logging.ts";
import { countPromptTokens as countTemplateTokens, countTokens } from "../../lib/reference-model/index.ts";
import { BackendError } from "./types.ts";
import type { Backend, ChatEvent, ChatRequest, EmbeddingRequest, TokenUsage } from "./types.ts";

/** Options of the proxy backend. */
export interface OpenAIBackendOptions {
  /** The upstream server, e.g. "http://127.0.0.1:8000" (a trailing "/v1" is accepted too). */
  baseUrl: string;
  /** Sent as `Authorization: Bearer <apiKey>` when set. */
  apiKey?: string;
  /** Model name the upstream knows; the requested public name is forwarded when absent. */
  upstreamModel?: string;
  /** Longest wait for the upstream's answer headers, and then between two streamed chunks. */
  timeoutMs: number;
  /** Declared throughput (tokens/s), when the operator knows it. */
  tokensPerSecond?: number;
  logger: Logger;
}

/** The upstream's OpenAI error body, as far as it can be read. */
interface UpstreamErrorBody {
  error?: { message?: unknown; type?: unknown; code?: unknown; param?: unknown } | string;
  message?: unknown;
}

function str(v: unknown): string | undefined {
  return typeof v === "string" ? v : undefined;
}

/** Turns a non-2xx upstream answer into a BackendError (4xx passed through, 5xx as 502). */
async function upstreamHttpError(res: Response, url: string): Promise<BackendError> {
  const raw = await res.text().catch(() => "");
  let message: string | undefined;
  let type: string | undefined;
  let code: string | undefined;
  let param: string | undefined;
  try {
    const body = JSON.parse(raw) as UpstreamErrorBody;
    if (typeof body.error === "string") message = body.error;
    else if (body.error !== undefined) {
      message = str(body.error.message);
      type = str(body.error.type);
      code = str(body.error.code) ?? (typeof body.error.code === "number" ? String(body.error.code) : undefined);
      param = str(body.error.param);
    }
    message ??= str(body.message);
  } catch {
    // not JSON: keep a short prefix of the text
  }
  message ??= raw.slice(0, 200) || res.statusText;
  if (res.status >= 400 && res.status < 500) return new BackendError({ status: res.status, message, type, code, param });
  return new BackendError({
    status: 502,
    message: `the upstream model server ${url} answered ${res.status}: ${message}`,
    type: "server_error",
    code: "upstream_error",
  });
}

/**
 * Reads server-sent events from a byte stream, yielding each event's data. Hand-rolled because
 * no SSE parser is among the dependencies and the format is a few lines (WHATWG HTML §9.2:
 * lines end in CRLF, LF or CR; "data:" lines accumulate; a blank line ends an event).
 */
async function* sseData(body: AsyncIterable<Uint8Array>): AsyncGenerator<string, void, undefined> {
  const decoder = new TextDecoder();
  let buffer = "";
  let data: string[] = [];
  const line = (l: string): string | undefined => {
    if (l === "") {
      if (data.length === 0) return undefined;
      const out = data.join("\n");
      data = [];
      return out;
    }
    if (l.startsWith(":")) return undefined; // comment / keep-alive
    const colon = l.indexOf(":");
    const field = colon === -1 ? l : l.slice(0, colon);
    let value = colon === -1 ? "" : l.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") data.push(value);
    return undefined;
  };
  for await (const chunk of body) {
    buffer += decoder.decode(chunk, { stream: true });
    for (;;) {
      const m = /\r\n|\r|\n/.exec(buffer);
      // A lone CR at the end may be the first half of CRLF: wait for more bytes.
      if (m === null || (m[0] === "\r" && m.index === buffer.length - 1)) break;
      const l = buffer.slice(0, m.index);
      buffer = buffer.slice(m.index + m[0].length);
      const ev = line(l);
      if (ev !== undefined) yield ev;
    }
  }
  buffer += decoder.decode();
  if (buffer !== "") {
    const ev = line(buffer);
    if (ev !== undefined) yield ev;
  }
  const last = line("");
  if (last !== undefined) yield last;
}

/** One chunk of OpenAI's chat completion stream, as far as the edge reads it. */
interface StreamChunk {
  choices?: { delta?: { content?: unknown }; finish_reason?: unknown }[];
  usage?: { prompt_tokens?: unknown; completion_tokens?: unknown } | null;
  error?: { message?: unknown } | string;
}

/** The reference tokenizer's count of the prompt, for a server that reports none. */
function estimatePromptTokens(req: ChatRequest): number {
  return countTemplateTokens(req.messages, {
    addGenerationPrompt: req.addGenerationPrompt,
    continueFinalMessage: req.continueFinalMessage,
  });
}

/** The upstream's root URL without a trailing slash or "/v1". */
function apiRoot(baseUrl: string): string {
  let root = baseUrl.replace(/\/+$/, "");
  if (root.endsWith("/v1")) root = root.slice(0, -3);
  return root;
}

/** A proxy to an OpenAI-compatible server as a Backend (see the file comment). */
export function createOpenAIBackend(options: OpenAIBackendOptions): Backend {
  const root = apiRoot(options.baseUrl);
  const log = componentLogger(options.logger, "openai-backend", { upstream: root });
  const inFlight = new Set<AbortController>();
  const headers: Record<string, string> = { "content-type": "application/json", accept: "text/event-stream, application/json" };
  if (options.apiKey !== undefined) headers.authorization = `Bearer ${options.apiKey}`;

  /**
   * Runs `use` with a controller that aborts on the caller's signal, on close(), and when the
   * idle timer (restarted by `touch`) runs out; maps network failures to BackendErrors.
   */
  async function* guarded<T>(
    url: string,
    signal: AbortSignal,
    use: (ctrl: AbortController, touch: () => void) => AsyncGenerator<T, void, undefined>,
  ): AsyncGenerator<T, void, undefined> {
    signal.throwIfAborted();
    const ctrl = new AbortController();
    let timedOut = false;
    let timer: NodeJS.Timeout | undefined;
    const touch = (): void => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        timedOut = true;
        ctrl.abort(new Error("upstream timeout"));
      }, options.timeoutMs);
    };
    const onAbort = (): void => ctrl.abort(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    inFlight.add(ctrl);
    touch();
    try {
      yield* use(ctrl, touch);
    } catch (err) {
      if (signal.aborted) throw signal.reason;
      if (err instanceof BackendError) throw err;
      if (timedOut) {
        log.warn({ url, timeoutMs: options.timeoutMs }, "upstream timed out");
        throw new BackendError(
          {
            status: 504,
            message: `the upstream model server ${url} sent nothing for ${options.timeoutMs} ms`,
            type: "server_error",
            code: "upstream_timeout",
          },
          { cause: err },
        );
      }
      const cause = (err as { cause?: { code?: unknown; message?: unknown } }).cause;
      const detail = str(cause?.code) ?? str(cause?.message) ?? (err as Error).message;
      log.warn({ url, detail }, "upstream unreachable");
      throw new BackendError(
        {
          status: 502,
          message: `the upstream model server ${url} failed (${detail}): check that it runs and that the edge's backend URL is right`,
          type: "server_error",
          code: "upstream_unreachable",
        },
        { cause: err },
      );
    } finally {
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
      inFlight.delete(ctrl);
      ctrl.abort(); // the consumer may have left early: close the upstream connection
    }
  }

  async function* chat(req: ChatRequest, signal: AbortSignal): AsyncGenerator<ChatEvent, void, undefined> {
    const url = `${root}/v1/chat/completions`;
    // The client's fields go through as sent (continue_final_message and add_generation_prompt
    // among them, which vLLM reads); only what the edge must control is overwritten.
    const body: Record<string, unknown> = {
      ...req.body,
      model: options.upstreamModel ?? req.model,
      stream: true,
      stream_options: { include_usage: true },
    };
    // The API layer priced the request for req.maxTokens: never let the upstream write more.
    if ("max_completion_tokens" in body) {
      body.max_completion_tokens = req.maxTokens;
      delete body.max_tokens;
    } else body.max_tokens = req.maxTokens;

    yield* guarded<ChatEvent>(url, signal, async function* (ctrl, touch) {
      const res = await fetch(url, { method: "POST", headers, body: JSON.stringify(body), signal: ctrl.signal });
      touch();
      if (!res.ok) throw await upstreamHttpError(res, url);
      if (res.body === null)
        throw new BackendError({ status: 502, message: `the upstream model server ${url} sent no body`, code: "upstream_error" });
      let text = "";
      let finish: "stop" | "length" | undefined;
      let usage: TokenUsage | undefined;
      let ended = false;
      for await (const data of sseData(res.body)) {
        touch();
        if (data === "[DONE]") {
          ended = true;
          break;
        }
        let chunk: StreamChunk;
        try {
          chunk = JSON.parse(data) as StreamChunk;
        } catch {
          throw new BackendError({
            status: 502,
            message: `the upstream model server ${url} sent an unreadable stream chunk`,
            code: "upstream_error",
          });
        }
        if (chunk.error !== undefined) {
          const m = typeof chunk.error === "string" ? chunk.error : (str(chunk.error.message) ?? "unknown error");
          throw new BackendError({
            status: 502,
            message: `the upstream model server ${url} failed mid-stream: ${m}`,
            code: "upstream_error",
          });
        }
        const choice = chunk.choices?.[0];
        const content = choice?.delta?.content;
        if (typeof content === "string" && content !== "") {
          text += content;
          yield { type: "delta", text: content };
        }
        if (typeof choice?.finish_reason === "string") finish = choice.finish_reason === "length" ? "length" : "stop";
        const u = chunk.usage;
        if (u != null && typeof u.prompt_tokens === "number" && typeof u.completion_tokens === "number") {
          usage = { promptTokens: u.prompt_tokens, completionTokens: u.completion_tokens };
        }
      }
      if (!ended && finish === undefined) {
        throw new BackendError({
          status: 502,
          message: `the upstream model server ${url} ended the stream before finishing`,
          code: "upstream_error",
        });
      }
      usage ??= { promptTokens: estimatePromptTokens(req), completionTokens: countTokens(text) };
      yield { type: "done", finishReason: finish ?? "stop", usage };
    });
  }

  async function embed(req: EmbeddingRequest, signal: AbortSignal): Promise<{ embeddings: number[][]; usage: { promptTokens: number } }> {
    const url = `${root}/v1/embeddings`;
    const body = { ...req.body, model: options.upstreamModel ?? req.model, input: req.input, encoding_format: "float" };
    const results = guarded<{ embeddings: number[][]; usage: { promptTokens: number } }>(url, signal, async function* (ctrl) {
      const res = await fetch(url, { method: "POST", headers, body: JSON.stringify(body), signal: ctrl.signal });
      if (!res.ok) throw await upstreamHttpError(res, url);
      const json = (await res.json()) as { data?: { index?: unknown; embedding?: unknown }[]; usage?: { prompt_tokens?: unknown } };
      const data = json.data;
      if (!Array.isArray(data) || data.length !== req.input.length) {
        throw new BackendError({
          status: 502,
          message: `the upstream model server ${url} returned ${Array.isArray(data) ? data.length : "no"} embeddings for ${req.input.length} inputs`,
          code: "upstream_error",
        });
      }
      const embeddings: number[][] = new Array(req.input.length);
      data.forEach((d, i) => {
        const index = typeof d.index === "number" ? d.index : i;
        if (
          !Number.isInteger(index) ||
          index < 0 ||
          index >= req.input.length ||
          embeddings[index] !== undefined ||
          !Array.isArray(d.embedding) ||
          !d.embedding.every((x) => typeof x === "number")
        ) {
          throw new BackendError({
            status: 502,
            message: `the upstream model server ${url} returned a malformed embedding at index ${index}`,
            code: "upstream_error",
          });
        }
        embeddings[index] = d.embedding as number[];
      });
      const promptTokens =
        typeof json.usage?.prompt_tokens === "number" ? json.usage.prompt_tokens : req.input.reduce((n, t) => n + countTokens(t), 0);
      yield { embeddings, usage: { promptTokens } };
    });
    for await (const r of results) return r;
    throw new BackendError({ status: 502, message: `the upstream model server ${url} returned nothing`, code: "upstream_error" });
  }

  return {
    // An estimate for pricing before serving: the upstream's own count (billed) comes with its usage.
    countPromptTokens: estimatePromptTokens,
    chat,
    embed,
    declaredTokensPerSecond: options.tokensPerSecond,
    async close() {
      for (const ctrl of inFlight) ctrl.abort(new Error("backend closed"));
      inFlight.clear();
    },
  };
}
