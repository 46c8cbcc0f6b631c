// Re-exported for the dispatch layer: every refusal the router answers itself is an ApiError in
// OpenAI's shape (lib/openai/errors.ts); these build the ones dispatch needs.
import { ApiError } from "../../lib/openai/errors.ts";
import { paymentRefusalDetails } from "../../lib/openai/payment.ts";
import { formatTokensExact, TOKEN_SYMBOL } from "../../lib/protocol/units.ts";
import type { PriorityClass, ShedReason } from "../schedule/scheduler.ts";

export { ApiError } from "../../lib/openai/errors.ts";

export const modelNotFound = (model: string) =>
  new ApiError(404, "not_found_error", `The model \`${model}\` is not served by any active edge; GET /v1/models lists those that are`, {
    param: "model",
    code: "model_not_found",
  });

export const noEdgeAvailable = (model: string, detail: string) =>
  new ApiError(503, "server_error", `no edge can serve \`${model}\` right now (${detail}); retry shortly`, {
    code: "no_edge_available",
    headers: { "retry-after": "1" },
  });

export const upstreamFailed = (detail: string, status: 502 | 504 = 502) =>
  new ApiError(status, "server_error", `the edges could not complete this request: ${detail}`, {
    code: status === 504 ? "upstream_timeout" : "upstream_failed",
  });

/** A 402 with what the payer must do first (lib/openai/payment.ts); `amountDue` in wei when an amount fixes it. */
export const paymentRequired = (message: string, code: string, amountDue?: bigint) =>
  new ApiError(
    402,
    "payment_required",
    amountDue === undefined ? message : `${message} (${formatTokensExact(amountDue)} ${TOKEN_SYMBOL})`,
    {
      code,
      extra: paymentRefusalDetails(code, "router", amountDue),
    },
  );

export const rateLimited = (message: string, retryAfterMs: number, code = "rate_limited") => {
  // Jittered, so that clients told to come back do not all come back in the same second.
  const seconds = Math.max(1, Math.ceil((retryAfterMs * (1 + Math.random() * 0.2)) / 1000));
  return new ApiError(429, "rate_limit_error", message, { code, headers: { "retry-after": String(seconds) } });
};

const SHED_EXPLANATIONS: Record<ShedReason, string> = {
  deadline: "its predicted wait is longer than its deadline allows",
  expired: "its deadline passed while it waited for a free edge",
  preempted: "interactive requests took the capacity it waited for",
  queue_full: "the router's queue is full",
};

/**
 * The scheduler shed the request before any edge worked on it. `retryAfterMs` (already jittered
 * by the scheduler) goes out both as `Retry-After` in whole seconds and as `retry-after-ms`,
 * which the official OpenAI clients prefer.
 */
export const overloaded = (
  model: string,
  shed: { reason: ShedReason; retryAfterMs: number; predictedWaitMs: number; priority: PriorityClass },
) =>
  new ApiError(
    429,
    "rate_limit_error",
    `the edges serving \`${model}\` cannot start this ${shed.priority} request in time: ${SHED_EXPLANATIONS[shed.reason]}; retry after ${(shed.retryAfterMs / 1000).toFixed(1)} s`,
    {
      code: "overloaded",
      headers: {
        "retry-after": String(Math.max(1, Math.ceil(shed.retryAfterMs / 1000))),
        "retry-after-ms": String(Math.round(shed.retryAfterMs)),
      },
      extra: {
        shed_reason: shed.reason,
        ...(Number.isFinite(shed.predictedWaitMs) ? { predicted_wait_ms: String(Math.round(shed.predictedWaitMs)) } : {}),
      },
    },
  );
