// Errors in OpenAI's shape, `{ "error": { "message", "type", "param", "code" } }`, so every
// OpenAI client library surfaces them as it surfaces OpenAI's own. Tideway-specific fields
// (the amount a 402 asks for) ride alongside inside `error`.

/** OpenAI's error `type`s we use. */
export type OpenAIErrorType = "invalid_request_error" | "authentication_error" | "payment_required" | "rate_limit_error" | "not_found_error" | "server_error" | "upstream_error";

/** An error answered to the client as-is. */
export class ApiError extends Error {
  readonly status: number;
  readonly type: OpenAIErrorType;
  readonly code: string | null;
  readonly param: string | null;
  readonly extra: Record<string, string>;
  readonly headers: Record<string, string>;
  constructor(status: number, type: OpenAIErrorType, message: string, options: { code?: string; param?: string; extra?: Record<string, string>; headers?: Record<string, string> } = {}) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.type = type;
    this.code = options.code ?? null;
    this.param = options.param ?? null;
    this.extra = options.extra ?? {};
    this.headers = options.headers ?? {};
  }

  /** The JSON body OpenAI clients expect. */
  body(): { error: Record<string, string | null> } {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code, ...this.extra } };
  }
}

export const badRequest = (message: string, param?: string, code = "invalid_request") =>
  new ApiError(400, "invalid_request_error", message, { param, code });

export const modelNotFound = (model: string, available: readonly string[]) =>
  new ApiError(404, "not_found_error", `The model \`${model}\` does not exist on this edge. Available: ${available.join(", ")}`, { param: "model", code: "model_not_found" });
