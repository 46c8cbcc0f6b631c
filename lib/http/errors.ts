// The one error envelope of the services' own HTTP APIs (everything but the OpenAI-compatible
// routes, which keep OpenAI's shape so OpenAI clients surface our errors as theirs):
//
//   { "error": { "code": "snake_case_code", "message": "what was wrong and what to do", ...details } }
//
// `code` is stable (clients branch on it); details ride inside `error` next to it.
import type { FastifyError, FastifyInstance, FastifyReply } from "fastify";
import type { Logger } from "pino";
import { z } from "zod";

import { ERROR_CODE_PATTERN, TidewayError } from "../errors.ts";

export const errorEnvelopeSchema = z.object({
  error: z.looseObject({
    code: z.string().regex(ERROR_CODE_PATTERN, "must be a snake_case code"),
    message: z.string().min(1),
  }),
});
export type ErrorEnvelope = z.infer<typeof errorEnvelopeSchema>;

/** An error answered to the caller as-is: its status, code, message and details. */
export class HttpError extends TidewayError {
  override name = "HttpError";
  readonly status: number;
  /** Extra fields of the envelope's `error`, e.g. the lock a peer already signed. */
  readonly details: Record<string, unknown>;
  constructor(status: number, code: string, message: string, options: { details?: Record<string, unknown>; cause?: unknown } = {}) {
    super(code, message, { cause: options.cause });
    this.status = status;
    this.details = options.details ?? {};
  }
}

/** The envelope of `code` and `message`; `details` cannot overwrite either. */
export function errorEnvelope(code: string, message: string, details: Record<string, unknown> = {}): ErrorEnvelope {
  return { error: { ...details, code, message } };
}

/** Answers `status` with the envelope. */
export function sendError(
  reply: FastifyReply,
  status: number,
  code: string,
  message: string,
  details?: Record<string, unknown>,
): FastifyReply {
  return reply.code(status).send(errorEnvelope(code, message, details));
}

/**
 * fastify's own 4xx (bad JSON, body too large, wrong media type) as a code and message; a body
 * too large is told the limit, `bodyLimitBytes` (the route's `request.routeOptions.bodyLimit`).
 */
export function fastifyClientError(err: unknown, bodyLimitBytes?: number): { status: number; code: string; message: string } | undefined {
  const fe = err as FastifyError;
  if (typeof fe?.statusCode !== "number" || fe.statusCode < 400 || fe.statusCode >= 500) return undefined;
  const code =
    fe.code === "FST_ERR_CTP_BODY_TOO_LARGE"
      ? "body_too_large"
      : fe.code === "FST_ERR_CTP_INVALID_MEDIA_TYPE"
        ? "unsupported_media_type"
        : fe.code === "FST_ERR_CTP_EMPTY_JSON_BODY" || fe.code === "FST_ERR_CTP_INVALID_JSON_BODY" || fe instanceof SyntaxError
          ? "invalid_json"
          : "bad_request";
  const limit = bodyLimitBytes === undefined ? "" : ` (at most ${bodyLimitBytes} bytes)`;
  const message = code === "body_too_large" ? `the request body is larger than this service accepts${limit}` : fe.message;
  return { status: fe.statusCode, code, message };
}

/**
 * What a 500 tells the caller: nothing of the failure itself (its message may name files, hosts
 * or internals), only the request id under which the detail was logged.
 */
export function internalErrorMessage(service: string, requestId: string): string {
  return `the ${service} failed to serve this request; the detail is logged under request id ${requestId}`;
}

export interface ErrorHandlerOptions {
  logger: Logger;
  /** Names the service in answers, e.g. "verifier". */
  service: string;
  /** Called for a refused request (a 4xx HttpError), e.g. to log or count it. */
  onRefused?: (err: HttpError, url: string) => void;
}

/**
 * Answers every error and unknown route of `app` with the envelope: an HttpError as itself,
 * fastify's own client errors as 4xx, anything else as a logged 500 that shows nothing internal
 * (`internalErrorMessage`).
 */
export function useErrorEnvelope(app: FastifyInstance, options: ErrorHandlerOptions): void {
  app.setErrorHandler((err, request, reply) => {
    if (err instanceof HttpError) {
      if (err.status < 500) options.onRefused?.(err, request.url);
      else options.logger.error({ err, url: request.url, reqId: request.id }, "request failed");
      return sendError(reply, err.status, err.code, err.message, err.details);
    }
    const client = fastifyClientError(err, request.routeOptions.bodyLimit);
    if (client !== undefined) return sendError(reply, client.status, client.code, client.message);
    options.logger.error({ err, url: request.url, reqId: request.id }, "request failed");
    return sendError(reply, 500, "internal_error", internalErrorMessage(options.service, request.id), { request_id: request.id });
  });
  app.setNotFoundHandler((request, reply) =>
    sendError(reply, 404, "unknown_route", `no route ${request.method} ${request.url} on this ${options.service}`),
  );
}
