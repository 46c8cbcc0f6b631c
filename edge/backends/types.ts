// The contract between the edge's API layer and whatever produces tokens: the built-in
// reference model (reference.ts) or a proxy to an OpenAI-compatible server (openai.ts).

/** One chat message (OpenAI roles; content as plain text). */
export interface ChatMessage {
  role: "system" | "user" | "assistant" | "tool" | "developer";
  content: string;
}

/** A chat completion request, already validated, defaulted and clamped by the API layer. */
export interface ChatRequest {
  /** The public model name requested. */
  model: string;
  messages: ChatMessage[];
  /** Already defaulted/clamped by the API layer: the backend never generates more. */
  maxTokens: number;
  /** 0..2 */
  temperature: number;
  seed?: number;
  stop?: string[];
  /** End the prompt with a generation prompt asking for a new answer; absent means true. */
  addGenerationPrompt?: boolean;
  /**
   * Continue the last message (an assistant message) instead of answering it; absent means
   * false. Already checked against `messages` and `addGenerationPrompt` by the API layer.
   */
  continueFinalMessage?: boolean;
  /** The original JSON body (the proxy forwards it). */
  body: Record<string, unknown>;
}

/** An embeddings request. */
export interface EmbeddingRequest {
  model: string;
  input: string[];
  body: Record<string, unknown>;
}

/** Tokens billed for a completion. */
export interface TokenUsage {
  promptTokens: number;
  completionTokens: number;
}

/** What a backend streams: text deltas, then exactly one `done`. */
export type ChatEvent = { type: "delta"; text: string } | { type: "done"; finishReason: "stop" | "length"; usage: TokenUsage };

/** A source of completions and embeddings. */
export interface Backend {
  /** Prompt tokens of a request as this backend counts them (used to price it before serving). */
  countPromptTokens(req: ChatRequest): number;
  /**
   * Streams the completion; ends with exactly one "done". Honours `signal` (stops work
   * promptly): once it is aborted the iteration throws the signal's reason.
   */
  chat(req: ChatRequest, signal: AbortSignal): AsyncIterable<ChatEvent>;
  embed(req: EmbeddingRequest, signal: AbortSignal): Promise<{ embeddings: number[][]; usage: { promptTokens: number } }>;
  /** Declared throughput (tokens/s) for /v1/models and capacity reporting; undefined if unknown. */
  readonly declaredTokensPerSecond?: number;
  close(): Promise<void>;
}

/** Fields of an OpenAI-style error answer. */
export interface BackendErrorFields {
  /** HTTP status the API layer should answer with. */
  status: number;
  message: string;
  /** OpenAI error type, e.g. "invalid_request_error", "server_error". */
  type?: string;
  /** OpenAI error code, e.g. "upstream_timeout"; null when none. */
  code?: string | null;
  /** Parameter the error is about, when the upstream names one. */
  param?: string | null;
}

/**
 * An error a backend reports to the client: carries the HTTP status and OpenAI's error fields
 * (`{ error: { message, type, code, param } }`), so the API layer can answer it as is.
 */
export class BackendError extends Error {
  override name = "BackendError";
  readonly status: number;
  readonly type: string;
  readonly code: string | null;
  readonly param: string | null;

  constructor(fields: BackendErrorFields, options?: { cause?: unknown }) {
    super(fields.message, options);
    this.status = fields.status;
    this.type = fields.type ?? (fields.status >= 500 ? "server_error" : "invalid_request_error");
    this.code = fields.code ?? null;
    this.param = fields.param ?? null;
  }

  /** The OpenAI error body for this error. */
  toJSON(): { error: { message: string; type: string; code: string | null; param: string | null } } {
    return { error: { message: this.message, type: this.type, code: this.code, param: this.param } };
  }
}
