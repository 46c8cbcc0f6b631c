// Errors of the OpenAI-compatible APIs (the edge's and the router's). On the OpenAI routes
// (`/v1/...`) they keep OpenAI's shape, `{ "error": { "message", "type", "param", "code" } }`, with
// the HTTP status the official clients map to their error classes (400 BadRequestError, 401
// AuthenticationError, 404 NotFoundError, 429 RateLimitError, 5xx InternalServerError; 402 is an
// APIError with status 402); on the Tideway routes (`/tideway/v1/...`, `/health`) they are the
// services' shared envelope, `{ "error": { "code", "message", ...details } }` (lib/http/errors.ts).
// Tideway-specific fields (the amount a 402 asks for) ride inside `error` in both.
import { toErrorCode } from "../errors.ts";
import { errorEnvelope, HttpError } from "../http/errors.ts";
import type { ErrorEnvelope } from "../http/errors.ts";

/** OpenAI's error `type`s we use. */
export type OpenAIErrorType =
  | "invalid_request_error"
  | "authentication_error"
  | "payment_required"
  | "rate_limit_error"
  | "not_found_error"
  | "server_error"
  | "upstream_error";

/** An error answered to the client as-is. */
export class ApiError extends HttpError {
  override name = "ApiError";
  readonly type: OpenAIErrorType;
  readonly param: string | null;
  readonly extra: Record<string, string>;
  readonly headers: Record<string, string>;
  constructor(
    status: number,
    type: OpenAIErrorType,
    message: string,
    options: { code?: string; param?: string; extra?: Record<string, string>; headers?: Record<string, string>; cause?: unknown } = {},
  ) {
    // Codes from an upstream server are made snake_case like ours; the type stands in for none.
    super(status, toErrorCode(options.code, type), message, {
      details: { ...(options.param === undefined ? {} : { param: options.param }), ...options.extra },
      cause: options.cause,
    });
    this.type = type;
    this.param = options.param ?? null;
    this.extra = options.extra ?? {};
    this.headers = options.headers ?? {};
  }

  /** The JSON body OpenAI clients expect. */
  body(): { error: Record<string, string | null> } {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code, ...this.extra } };
  }

  /** The services' shared error envelope. */
  envelope(): ErrorEnvelope {
    return errorEnvelope(this.code, this.message, this.details);
  }
}

/** Whether `url` is one of the OpenAI-compatible routes, whose errors keep OpenAI's shape. */
export const isOpenAIRoute = (url: string): boolean => url === "/v1" || url.startsWith("/v1/") || url.startsWith("/v1?");

export const badRequest = (message: string, param?: string, code = "invalid_request") =>
  new ApiError(400, "invalid_request_error", message, { param, code });
