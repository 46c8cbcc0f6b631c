// What every request's attempts share: a slot on an edge from the scheduler (router/schedule/),
// the voucher and the payment answers that need no other edge, the timers of one attempt, and
// how an attempt that did not answer moves the request on. The chat (chat.ts) and embeddings
// (embeddings.ts) paths are built on it.
//
// A slot is taken when the scheduler binds the request to an edge (it counts it in flight in the
// same tick, so requests bound meanwhile see it) and freed by `Slot.end` — exactly once, on every
// path, or the edge would look busy forever.
import type { Logger } from "pino";

import type { RouterMetrics } from "../metrics.ts";
import type { Payer, Payment } from "../payment/payer.ts";
import type { SessionManager, TenantSession } from "../payment/sessions.ts";
import type { RouteRequest } from "../policy/types.ts";
import { systemClock } from "../schedule/clock.ts";
import type { PriorityClass, ScheduleOutcome, Scheduler } from "../schedule/scheduler.ts";
import type { Tenant } from "../tenants/store.ts";
import type { CompletionSample } from "./edgeStats.ts";
import { ApiError, noEdgeAvailable, overloaded, paymentRequired, rateLimited, upstreamFailed } from "./errors.ts";
import type { EdgePool, ModelPrice, PooledEdge } from "./pool.ts";
import { readBody, TransportError } from "./transport.ts";
import type { EdgeTransport, UpstreamResponse } from "./transport.ts";

/** What the attempts of a request need to know about it. */
export interface AttemptJob {
  tenant: Tenant;
  requestId: string;
  model: string;
  priority: PriorityClass;
  signal: AbortSignal;
}

/** A slot held on an edge for one attempt. */
export interface Slot {
  edge: PooledEdge;
  transport: EdgeTransport;
  /** Frees the slot; `sample` (a complete answer) feeds what the router learns about the edge. Idempotent. */
  end(sample?: CompletionSample): void;
}

/** Outcome of one attempt on one edge. */
export type Attempt =
  | {
      kind: "done";
      cost: bigint | undefined;
      finishReason: string;
      promptTokens?: number;
      completionTokens?: number;
      body?: Record<string, unknown>;
    }
  /** The request itself is wrong (or the tenant cannot pay): answer the client, the edge did nothing wrong. */
  | { kind: "client"; error: ApiError }
  /** The edge could not take it now (full, or does not have the model after all): next edge, no penalty. */
  | { kind: "skip"; reason: string; retryAfterMs?: number }
  /** The tenant's session ended on-chain: open a new one and try again. */
  | { kind: "session-gone" }
  /** The edge failed: breaker, failover. */
  | { kind: "failed"; reason: string; timeout?: boolean };

/** One request's way through the edges: which were tried, why the last one did not answer, its session. */
export interface Trail {
  tried: Set<string>;
  /** Clock time by which its first attempt must have started (the scheduler sheds it otherwise). */
  deadline: number;
  /** How long each attempt may wait for an edge, ms. */
  deadlineMs: number;
  attempts: number;
  lastFailure: string;
  lastRetryAfter: number | undefined;
  session: TenantSession;
  renewedSession: boolean;
}

interface EdgeErrorBody {
  error?: { code?: string; message?: string; amount_due?: string; type?: string; param?: string | null };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
export const jitter = (attempt: number) => Math.random() * Math.min(200, 25 * 2 ** attempt);

/** Codes an edge answers while it has not yet seen a session or authorization the router just made. */
const NOT_SEEN_YET = new Set(["session_unknown", "voucher_unauthorized_signer"]);
/** The tenant's escrow cannot pay: only the tenant can fix that. */
const TENANT_CANNOT_PAY = new Set(["escrow_insufficient"]);
/** The router's session for the tenant has ended (expired, closed, or its budget spent): the router opens a new one. */
const SESSION_GONE = new Set(["session_expired", "session_closed", "budget_exhausted"]);

function parseError(text: string): EdgeErrorBody["error"] {
  try {
    return (JSON.parse(text) as EdgeErrorBody).error;
  } catch {
    return undefined;
  }
}

export interface AttemptOptions {
  pool: EdgePool;
  scheduler: Scheduler;
  payer: Payer;
  sessions: SessionManager;
  metrics: RouterMetrics;
  logger: Logger;
  /** Longest an edge may take to see a session the router just opened. */
  sessionVisibilityMs?: number;
  /** Share of routing decisions logged at info level with their score terms (the rest at debug). */
  decisionLogShare?: number;
}

export type Attempts = ReturnType<typeof createAttempts>;

export function createAttempts(options: AttemptOptions) {
  const { pool, scheduler, payer, sessions, metrics, logger } = options;
  const visibilityMs = options.sessionVisibilityMs ?? 10_000;

  /** A new request's way through the edges, which must start within `deadlineMs`. */
  function newTrail(session: TenantSession, deadlineMs: number): Trail {
    return {
      tried: new Set(),
      deadline: systemClock.now() + deadlineMs,
      deadlineMs,
      attempts: 0,
      lastFailure: "",
      lastRetryAfter: undefined,
      session,
      renewedSession: false,
    };
  }

  /** Waits for the scheduler's answer, or for the client to leave. */
  function schedule(job: AttemptJob, trail: Trail, route: RouteRequest, cost: number): Promise<ScheduleOutcome | "gone"> {
    return new Promise((resolve) => {
      if (job.signal.aborted) return resolve("gone");
      let answered = false;
      const onAbort = () => {
        ticket.cancel();
        if (!answered) resolve("gone");
        answered = true;
      };
      const ticket = scheduler.submit(
        {
          id: job.requestId,
          tenant: job.tenant.id,
          weight: job.tenant.weight ?? 1,
          priority: job.priority,
          // One moving on gets a fresh wait budget: its first one may be long gone (a slow edge that failed).
          deadline: trail.attempts > 0 ? systemClock.now() + trail.deadlineMs : trail.deadline,
          cost,
          route,
          exclude: trail.tried,
          // An admitted request moving on (failover, a stream resuming) goes first and is never shed.
          admitted: trail.attempts > 0,
        },
        (outcome) => {
          job.signal.removeEventListener("abort", onAbort);
          if (!answered) resolve(outcome);
          answered = true;
        },
      );
      if (!answered) job.signal.addEventListener("abort", onAbort, { once: true });
    });
  }

  /**
   * A slot on an edge for the request's next attempt — now, or when one frees — or the error
   * saying why there is none: 429 when it cannot start before its deadline, else why no edge is left.
   */
  async function acquire(job: AttemptJob, trail: Trail, route: RouteRequest, cost: number): Promise<Slot> {
    for (;;) {
      const outcome = await schedule(job, trail, route, cost);
      if (outcome === "gone") throw new TransportError("client went away");
      if (outcome.kind === "shed") throw overloaded(job.model, outcome);
      if (outcome.kind === "unavailable") {
        if (trail.lastRetryAfter !== undefined && trail.lastFailure === "busy")
          throw rateLimited(`every edge serving \`${job.model}\` is at capacity`, trail.lastRetryAfter, "edges_busy");
        if (trail.tried.size === 0) throw noEdgeAvailable(job.model, "every edge serving it is unreachable or failing");
        throw upstreamFailed(trail.lastFailure);
      }
      const { grant } = outcome;
      const edge = pool.get(grant.edge.edgeId);
      const transport = edge === undefined ? undefined : pool.transport(edge);
      trail.tried.add(grant.edge.key);
      if (edge === undefined || transport === undefined) {
        // Gone between the snapshot and now (its link dropped in this tick): the next one.
        grant.release();
        continue;
      }
      trail.attempts += 1;
      logDecision(job, grant.decision, grant.waitedMs);
      let ended = false;
      metrics.outstanding.set({ edge: edge.key }, edge.stats.outstanding);
      return {
        edge,
        transport,
        end(sample) {
          if (ended) return;
          ended = true;
          pool.completed(edge, sample);
          grant.release();
          metrics.outstanding.set({ edge: edge.key }, edge.stats.outstanding);
        },
      };
    }
  }

  function logDecision(
    job: AttemptJob,
    decision: { edge: { key: string }; reason?: string; terms?: Record<string, number> },
    waitedMs: number,
  ) {
    const line = {
      requestId: job.requestId,
      tenant: job.tenant.id,
      model: job.model,
      priority: job.priority,
      edgeId: decision.edge.key,
      reason: decision.reason,
      terms: decision.terms,
      waitedMs: Math.round(waitedMs),
    };
    if (Math.random() < (options.decisionLogShare ?? 0)) logger.info(line, "routing decision");
    else logger.debug(line, "routing decision");
  }

  /**
   * An attempt that ended without an answer: throws the client's error; renews the tenant's
   * session (once per request) and lets the same edge be tried again; notes a skipped edge.
   * Returns true when the request should go on to its next attempt at once, false when the edge
   * failed (the caller decides on failover).
   */
  async function setback(job: { tenant: Tenant; model: string }, trail: Trail, edgeKey: string, result: Attempt): Promise<boolean> {
    if (result.kind === "client") throw result.error;
    if (result.kind === "session-gone") {
      if (trail.renewedSession) throw paymentRequired("the tenant's session keeps closing or expiring on-chain", "session_unavailable");
      trail.renewedSession = true;
      await sessions.invalidate(job.tenant.payer, job.model, trail.session.id);
      trail.session = await sessions.sessionFor(job.tenant.payer, job.model);
      trail.tried.delete(edgeKey);
      return true;
    }
    if (result.kind === "skip") {
      trail.lastFailure = result.reason;
      trail.lastRetryAfter = Math.min(trail.lastRetryAfter ?? Number.POSITIVE_INFINITY, result.retryAfterMs ?? 1000);
      return true;
    }
    if (result.kind === "failed") trail.lastFailure = `edge ${edgeKey}: ${result.reason}`;
    return false;
  }

  function highestPrice(model: string): ModelPrice | undefined {
    let best: ModelPrice | undefined;
    for (const { edge } of pool.candidates(model)) {
      const p = edge.models?.get(model);
      if (p === undefined) continue;
      if (best === undefined || p.outputPerToken > best.outputPerToken || p.inputPerToken > best.inputPerToken)
        best = {
          inputPerToken: best === undefined || p.inputPerToken > best.inputPerToken ? p.inputPerToken : best.inputPerToken,
          outputPerToken: best === undefined || p.outputPerToken > best.outputPerToken ? p.outputPerToken : best.outputPerToken,
        };
    }
    return best;
  }

  /**
   * Sends `body` to the edge with a voucher, handling the payment answers that do not need another
   * edge (reconcile once; wait for the edge to see a new session). Returns the 2xx response, or an
   * Attempt saying why not.
   */
  async function sendPaid(
    edge: PooledEdge,
    transport: EdgeTransport,
    path: string,
    body: string,
    tenant: Tenant,
    session: TenantSession,
    payment: Payment,
    signal: AbortSignal,
  ): Promise<UpstreamResponse | Attempt> {
    let current = payment;
    let reconciled = false;
    const startedAt = Date.now();
    for (;;) {
      let response: UpstreamResponse;
      try {
        response = await transport.send({
          method: "POST",
          path,
          headers: { "content-type": "application/json", "x-tideway-voucher": current.header },
          body,
          signal,
        });
      } catch (err) {
        return { kind: "failed", reason: (err as Error).message, timeout: signal.aborted };
      }
      if (response.status === 200) return response;
      let text: string;
      try {
        text = await readBody(response);
      } catch (err) {
        return { kind: "failed", reason: (err as Error).message };
      }
      const error = parseError(text);
      const code = error?.code ?? "";
      const message = error?.message ?? text.slice(0, 200);
      if (response.status === 402) {
        if (code === "insufficient_voucher" && error?.amount_due !== undefined && /^\d+$/.test(error.amount_due) && !reconciled) {
          reconciled = true;
          const next = await payer.reconcile(tenant.payer, session, edge.edgeId, BigInt(error.amount_due), current.ceiling);
          if (next === undefined)
            return { kind: "failed", reason: `edge asks ${error.amount_due} wei, more than it can be owed (${current.ceiling})` };
          current = next;
          continue;
        }
        if (NOT_SEEN_YET.has(code) && Date.now() - startedAt < visibilityMs) {
          await sleep(250);
          continue;
        }
        if (SESSION_GONE.has(code)) return { kind: "session-gone" };
        if (TENANT_CANNOT_PAY.has(code)) return { kind: "client", error: paymentRequired(`the tenant cannot pay: ${message}`, code) };
        return { kind: "failed", reason: `edge refused payment (${code}): ${message}` };
      }
      if (response.status === 429) {
        pool.refusedBusy(edge);
        const after = Number(response.headers["retry-after"]);
        return { kind: "skip", reason: "busy", retryAfterMs: Number.isFinite(after) ? after * 1000 : 1000 };
      }
      if (response.status === 404) return { kind: "skip", reason: `edge answered 404 (${code})` };
      if (response.status >= 400 && response.status < 500) {
        return {
          kind: "client",
          error: new ApiError(response.status, (error?.type as ApiError["type"]) ?? "invalid_request_error", message, {
            code: code || "invalid_request",
            param: error?.param ?? undefined,
          }),
        };
      }
      return { kind: "failed", reason: `edge answered ${response.status} (${code}): ${message}` };
    }
  }

  /** Reserves the attempt's maximum on the edge and signs its voucher; frees the slot if that fails. */
  async function reserve(slot: Slot, tenant: Tenant, session: TenantSession, reservationId: string, maxCost: bigint) {
    try {
      return await payer.reserve(tenant.payer, session, slot.edge.edgeId, reservationId, maxCost);
    } catch (err) {
      slot.end();
      throw err;
    }
  }

  /** An AbortController for one attempt: aborted by the client leaving, or by a timer (first byte, stall). */
  function attemptSignal(clientSignal: AbortSignal) {
    const controller = new AbortController();
    const onClient = () => controller.abort(new TransportError("client went away"));
    // A client that left before the listener was attached is gone all the same.
    if (clientSignal.aborted) onClient();
    else clientSignal.addEventListener("abort", onClient, { once: true });
    let timer: NodeJS.Timeout | undefined;
    return {
      signal: controller.signal,
      arm(ms: number, why: string) {
        if (timer !== undefined) clearTimeout(timer);
        timer = setTimeout(() => controller.abort(new TransportError(why)), ms);
      },
      dispose() {
        if (timer !== undefined) clearTimeout(timer);
        clientSignal.removeEventListener("abort", onClient);
      },
      abort() {
        controller.abort(new TransportError("attempt abandoned"));
      },
    };
  }

  /** Counts an attempt; only what the edge caused counts against it, never a client that went away. */
  function recordAttempt(edge: PooledEdge, kind: Attempt["kind"], clientSignal: AbortSignal): void {
    const outcome = kind === "failed" && clientSignal.aborted ? "client" : kind;
    metrics.attempts.inc({
      outcome: outcome === "done" ? "ok" : outcome === "failed" ? "failed" : outcome === "skip" ? "skipped" : "client",
    });
    if (outcome === "failed") edge.breaker.failed();
    else if (outcome === "done") edge.breaker.succeeded();
    metrics.breakerOpen.set({ edge: edge.key }, edge.breaker.state() === "open" ? 1 : 0);
  }

  return { newTrail, acquire, setback, highestPrice, sendPaid, reserve, attemptSignal, recordAttempt };
}
