// What the router's route modules (server.ts, chat.ts, responses.ts) share: the dispatcher, the
// client-gone signal, the metrics of a finished request, and the class and deadline of a request
// (its headers, else its tenant's defaults, else the router's).
import type { FastifyReply, FastifyRequest } from "fastify";
import type { Logger } from "pino";

import { ApiError } from "../../lib/openai/errors.ts";
import type { Dispatcher } from "../dispatch/dispatcher.ts";
import type { RouterMetrics } from "../metrics.ts";
import { PRIORITY_CLASSES } from "../schedule/scheduler.ts";
import type { PriorityClass } from "../schedule/scheduler.ts";

/** Request header choosing the class: `interactive` (dispatched first) or `batch`. */
export const PRIORITY_HEADER = "x-tideway-priority";
/** Request header: how long, in ms, the request may wait for an edge before the router answers 429. */
export const DEADLINE_HEADER = "x-tideway-deadline-ms";

export interface SchedulingDefaults {
  defaultPriority: PriorityClass;
  deadlineMs: Record<PriorityClass, number>;
}

export interface RouteContext {
  dispatcher: Dispatcher;
  metrics: RouterMetrics;
  logger: Logger;
  defaultMaxTokens: number;
  /** A signal aborted when the client goes away before the answer ends. */
  clientSignal(reply: FastifyReply): AbortSignal;
  /** Counts a request answered 2xx. */
  finished(
    route: string,
    status: number,
    outcome: { ttftMs?: number; failovers: number; cost: bigint },
    startedAt: number,
    model: string,
  ): void;
  schedulingOf(request: FastifyRequest): { priority: PriorityClass; deadlineMs: number };
}

/** Longest deadline a request may ask for (an hour): beyond it, a client should not hold a connection open. */
const MAX_DEADLINE_MS = 3_600_000;

/** The class and deadline of `request`: its headers, else its tenant's defaults, else the router's. */
export function schedulingOf(request: FastifyRequest, defaults: SchedulingDefaults): { priority: PriorityClass; deadlineMs: number } {
  const header = request.headers[PRIORITY_HEADER];
  let priority = request.tenant?.priority ?? defaults.defaultPriority;
  if (header !== undefined) {
    if (typeof header !== "string" || !(PRIORITY_CLASSES as readonly string[]).includes(header))
      throw new ApiError(400, "invalid_request_error", `${PRIORITY_HEADER} must be one of ${PRIORITY_CLASSES.join(", ")}`, {
        param: PRIORITY_HEADER,
        code: "invalid_priority",
      });
    priority = header as PriorityClass;
  }
  const deadline = request.headers[DEADLINE_HEADER];
  let deadlineMs = request.tenant?.deadlineMs ?? defaults.deadlineMs[priority];
  if (deadline !== undefined) {
    const ms = typeof deadline === "string" && /^\d+$/.test(deadline) ? Number(deadline) : Number.NaN;
    if (!(ms >= 1 && ms <= MAX_DEADLINE_MS))
      throw new ApiError(
        400,
        "invalid_request_error",
        `${DEADLINE_HEADER} must be a whole number of milliseconds from 1 to ${MAX_DEADLINE_MS}`,
        {
          param: DEADLINE_HEADER,
          code: "invalid_deadline",
        },
      );
    deadlineMs = ms;
  }
  return { priority, deadlineMs };
}
