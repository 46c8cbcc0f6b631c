// Sending a tenant's request to edges until one answers it: admission (admission.ts: token rate,
// spend limit, escrow and authorization), then attempts — choose an edge with the routing policy,
// pay it (router/payment/payer.ts), send, and read the answer — with failover.
//
// Failures never reach the client while another edge can answer:
// - a 4xx the request caused (400, 413, 422) goes back to the client and never counts against
//   the edge; a 404 or 429 from one edge (it dropped the model, it is full) moves on to the next
//   without counting either;
// - connection errors, 5xx, timeouts and broken streams count against the edge (its circuit
//   breaker) and move the request to another edge, within `maxAttempts` and the retry budget,
//   after a short jittered backoff;
// - chat is always streamed from the edge, so that when an edge dies or stalls MID-STREAM the
//   router resumes the answer on another edge from the exact point of failure: it sends the
//   conversation plus the text already delivered as a final assistant message with
//   `continue_final_message: true, add_generation_prompt: false` (vLLM's continuation
//   parameters) and max_tokens reduced by the tokens delivered, and the client's stream goes on
//   with no token lost or repeated (at most `maxMigrations` times). For the seeded reference model
//   the resumed text is bit-identical to the uninterrupted one.
//
// Payment per attempt: the attempt's maximum (its edge's prices × its prompt and max tokens) is
// reserved and a voucher covers it; the attempt settles at the cost the edge reported, or, for a
// stream that broke, at the edge's own rule (prompt plus the tokens it sent). A 402 asking for
// more is reconciled once; an edge that has not yet seen the tenant's new session is waited for.
import type { Logger } from "pino";

import { countPromptTokens } from "../../lib/reference-model/index.ts";
import type { ReferenceMessage } from "../../lib/reference-model/index.ts";
import type { RouterMetrics } from "../metrics.ts";
import type { EscrowReader } from "../payment/escrow.ts";
import type { Payer, Payment } from "../payment/payer.ts";
import type { SessionManager, TenantSession } from "../payment/sessions.ts";
import type { RoutingPolicy } from "../policy/types.ts";
import type { TenantLimiter } from "../tenants/limits.ts";
import type { Tenant } from "../tenants/store.ts";
import { createAdmission } from "./admission.ts";
import { ApiError, modelNotFound, noEdgeAvailable, paymentRequired, rateLimited, upstreamFailed } from "./errors.ts";
import type { EdgePool, ModelPrice, PooledEdge } from "./pool.ts";
import type { RetryBudget } from "./retryBudget.ts";
import { sseData } from "./sse.ts";
import { readBody, TransportError } from "./transport.ts";
import type { EdgeTransport, UpstreamResponse } from "./transport.ts";

export type ChatMessage = ReferenceMessage;

export interface ChatJob {
  tenant: Tenant;
  requestId: string;
  model: string;
  messages: ChatMessage[];
  maxTokens: number;
  /** The client asks to continue its last (assistant) message rather than answer it (vLLM's `continue_final_message`). */
  continueFinalMessage?: boolean;
  /** Other body fields sent to the edge as given (temperature, seed, stop, top_p, ...). */
  passthrough: Record<string, unknown>;
  affinityKey?: string;
  signal: AbortSignal;
}

/** The request to an edge for `job` once `delivered` text has been streamed (continuing it when there is some). */
export function attemptMessages(
  job: Pick<ChatJob, "messages" | "continueFinalMessage">,
  delivered: string,
): { messages: ChatMessage[]; continuing: boolean } {
  if (job.continueFinalMessage === true) {
    const last = job.messages.at(-1)!;
    return { messages: [...job.messages.slice(0, -1), { role: last.role, content: last.content + delivered }], continuing: true };
  }
  if (delivered === "") return { messages: job.messages, continuing: false };
  return { messages: [...job.messages, { role: "assistant", content: delivered }], continuing: true };
}

export interface ChatSink {
  /**
   * The first token is about to be sent (nothing is sent before it: failures until then are
   * invisible). `edge` is the id of the edge serving it.
   */
  start(edge: string): void;
  delta(text: string): void;
}

export interface ChatOutcome {
  text: string;
  finishReason: string;
  usage: { promptTokens: number; completionTokens: number };
  cost: bigint;
  /** Edges that served parts of the answer, in order. */
  edges: string[];
  migrations: number;
  failovers: number;
  ttftMs: number | undefined;
}

export interface EmbeddingsJob {
  tenant: Tenant;
  requestId: string;
  model: string;
  input: string[];
  passthrough: Record<string, unknown>;
  signal: AbortSignal;
}

export interface EmbeddingsOutcome {
  /** The edge's JSON answer. */
  body: Record<string, unknown>;
  cost: bigint;
  edge: string;
  failovers: number;
}

export interface DispatcherOptions {
  pool: EdgePool;
  policy: RoutingPolicy;
  payer: Payer;
  sessions: SessionManager;
  escrow: EscrowReader;
  limiter: TenantLimiter;
  retryBudget: RetryBudget;
  metrics: RouterMetrics;
  logger: Logger;
  maxAttempts: number;
  maxMigrations: number;
  firstByteTimeoutMs: number;
  stallTimeoutMs: number;
  /** Longest an edge may take to see a session the router just opened. */
  sessionVisibilityMs?: number;
}

export interface Dispatcher {
  chat(job: ChatJob, sink: ChatSink): Promise<ChatOutcome>;
  embeddings(job: EmbeddingsJob): Promise<EmbeddingsOutcome>;
}

/** Outcome of one attempt on one edge. */
type Attempt =
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
interface Trail {
  tried: Set<string>;
  attempts: number;
  lastFailure: string;
  lastRetryAfter: number | undefined;
  session: TenantSession;
  renewedSession: boolean;
}

interface EdgeErrorBody {
  error?: { code?: string; message?: string; amount_due?: string; type?: string; param?: string | null };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const jitter = (attempt: number) => Math.random() * Math.min(200, 25 * 2 ** attempt);

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

export function createDispatcher(options: DispatcherOptions): Dispatcher {
  const { pool, policy, payer, sessions, escrow, limiter, metrics, logger } = options;
  const visibilityMs = options.sessionVisibilityMs ?? 10_000;

  const admit = createAdmission({ escrow, limiter, sessions, metrics, payerAddress: payer.address });

  /** Candidates not tried yet, or an error saying why there are none. */
  function choose(model: string, tried: ReadonlySet<string>, request: Parameters<RoutingPolicy["choose"]>[1]) {
    const all = pool.candidates(model);
    const left = all.filter((c) => !tried.has(c.edge.key));
    if (left.length === 0) return undefined;
    const decision = policy.choose(
      left.map((c) => c.candidate),
      request,
    );
    logger.debug({ edgeId: decision.edge.key, reason: decision.reason, terms: decision.terms, model }, "routing decision");
    return left.find((c) => c.candidate === decision.edge) ?? left[0]!;
  }

  /** A new request's way through the edges. */
  function newTrail(session: TenantSession): Trail {
    return { tried: new Set(), attempts: 0, lastFailure: "", lastRetryAfter: undefined, session, renewedSession: false };
  }

  /** The next edge for the request, or the error saying why no edge is left. */
  function nextEdge(model: string, trail: Trail, request: Parameters<RoutingPolicy["choose"]>[1]) {
    const pick = choose(model, trail.tried, request);
    if (pick === undefined) {
      if (trail.lastRetryAfter !== undefined && trail.lastFailure === "busy")
        throw rateLimited(`every edge serving \`${model}\` is at capacity`, trail.lastRetryAfter, "edges_busy");
      if (trail.tried.size === 0) throw noEdgeAvailable(model, "every edge serving it is unreachable or failing");
      throw upstreamFailed(trail.lastFailure);
    }
    trail.tried.add(pick.edge.key);
    trail.attempts += 1;
    return pick;
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

  /**
   * Counts the request on `edge` at once, in the same tick as the choice, then pays it: requests
   * chosen while this one awaits Redis must see it, or a burst all picks the same edge (beyond
   * affinity's bound, past the policies' load estimates).
   */
  async function reserveOn(edge: PooledEdge, tenant: Tenant, session: TenantSession, reservationId: string, maxCost: bigint) {
    pool.dispatched(edge);
    try {
      return await payer.reserve(tenant.payer, session, edge.edgeId, reservationId, maxCost);
    } catch (err) {
      pool.completed(edge, undefined);
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

  return {
    async chat(job, sink) {
      const initialPrompt = countPromptTokens(
        job.messages,
        job.continueFinalMessage === true ? { continueFinalMessage: true, addGenerationPrompt: false } : {},
      );
      if (!pool.knowsModel(job.model)) throw modelNotFound(job.model);
      const price = highestPrice(job.model);
      if (price === undefined) throw noEdgeAvailable(job.model, "no reachable edge serves it");
      const admission = await admit(
        job.tenant,
        job.model,
        initialPrompt + job.maxTokens,
        BigInt(initialPrompt) * price.inputPerToken + BigInt(job.maxTokens) * price.outputPerToken,
      );
      const trail = newTrail(admission.session);
      options.retryBudget.request();
      const startedAt = performance.now();
      const edgesUsed: string[] = [];
      let delivered = "";
      let deliveredTokens = 0;
      let started = false;
      let ttftMs: number | undefined;
      let migrations = 0;
      let failovers = 0;
      let cost = 0n;
      let completionTokens = 0;
      let finalPrompt = initialPrompt;
      try {
        for (;;) {
          if (job.signal.aborted) throw new TransportError("client went away");
          const continuation = deliveredTokens > 0;
          const { edge, transport } = nextEdge(job.model, trail, {
            model: job.model,
            promptTokens: initialPrompt,
            maxTokens: job.maxTokens - deliveredTokens,
            affinityKey: job.affinityKey,
            maxPricePerOutputToken: job.tenant.maxPricePerOutputToken,
          });
          const session = trail.session;
          const { messages, continuing } = attemptMessages(job, delivered);
          const remaining = job.maxTokens - deliveredTokens;
          const continueOptions = { continueFinalMessage: true, addGenerationPrompt: false } as const;
          const promptTokens = countPromptTokens(messages, continuing ? continueOptions : {});
          const edgePrice = edge.models?.get(job.model) ?? price;
          const maxCost = BigInt(promptTokens) * edgePrice.inputPerToken + BigInt(remaining) * edgePrice.outputPerToken;
          const body = JSON.stringify({
            ...job.passthrough,
            model: job.model,
            messages,
            max_tokens: remaining,
            stream: true,
            ...(continuing ? { continue_final_message: true, add_generation_prompt: false } : {}),
          });
          const reservationId = `${job.requestId}.${trail.attempts}`;
          const payment = await reserveOn(edge, job.tenant, session, reservationId, maxCost);
          const timers = attemptSignal(job.signal);
          timers.arm(options.firstByteTimeoutMs, "no first byte in time");
          metrics.outstanding.set({ edge: edge.key }, edge.stats.outstanding);
          const attemptStart = performance.now();
          let attemptTokens = 0;
          let attemptTtft: number | undefined;
          let result: Attempt;
          const sent = await sendPaid(edge, transport, "/v1/chat/completions", body, job.tenant, session, payment, timers.signal);
          if ("kind" in sent) result = sent;
          else {
            // Stream: forward content deltas as they come; a stall or a break fails the attempt.
            result = { kind: "failed", reason: "stream ended without a finish reason" };
            try {
              timers.arm(options.stallTimeoutMs, "edge stalled mid-stream");
              let finishReason: string | undefined;
              let reportedCost: bigint | undefined;
              let usage: { prompt_tokens?: number; completion_tokens?: number } | undefined;
              for await (const data of sseData(sent.body)) {
                timers.arm(options.stallTimeoutMs, "edge stalled mid-stream");
                // Read on to the end of the body: leaving the loop early destroys the response,
                // and with it the keep-alive connection the next request to this edge would reuse.
                if (data === "[DONE]") continue;
                const event = JSON.parse(data) as {
                  error?: { message?: string; code?: string };
                  choices?: Array<{ delta?: { content?: string }; finish_reason?: string | null }>;
                  usage?: { prompt_tokens?: number; completion_tokens?: number };
                  tideway?: { cost?: string };
                };
                if (event.error !== undefined)
                  throw new TransportError(`edge failed mid-stream: ${event.error.message ?? event.error.code}`);
                const choice = event.choices?.[0];
                const content = choice?.delta?.content;
                if (typeof content === "string" && content.length > 0) {
                  if (!started) {
                    started = true;
                    sink.start(edge.key);
                  }
                  if (ttftMs === undefined) ttftMs = performance.now() - startedAt;
                  attemptTtft ??= performance.now() - attemptStart;
                  attemptTokens += 1;
                  deliveredTokens += 1;
                  delivered += content;
                  sink.delta(content);
                }
                if (typeof choice?.finish_reason === "string") finishReason = choice.finish_reason;
                if (event.usage !== undefined) usage = event.usage;
                if (typeof event.tideway?.cost === "string" && /^\d+$/.test(event.tideway.cost)) reportedCost = BigInt(event.tideway.cost);
              }
              if (finishReason !== undefined)
                result = {
                  kind: "done",
                  cost: reportedCost,
                  finishReason,
                  promptTokens: usage?.prompt_tokens,
                  completionTokens: usage?.completion_tokens,
                };
            } catch (err) {
              result = { kind: "failed", reason: (err as Error).message, timeout: timers.signal.aborted && !job.signal.aborted };
            }
          }
          timers.dispose();
          if (result.kind !== "done") timers.abort();
          // Settle: what the edge reported, else its own rule for a broken stream (prompt + tokens sent).
          const attemptCost =
            result.kind === "done" && result.cost !== undefined
              ? result.cost
              : attemptTokens === 0
                ? 0n
                : BigInt(promptTokens) * edgePrice.inputPerToken + BigInt(attemptTokens) * edgePrice.outputPerToken;
          const settled = attemptCost < maxCost ? attemptCost : maxCost;
          cost += settled;
          await payment.recorded.catch((err: unknown) =>
            logger.warn({ err: (err as Error).message }, "a voucher was not recorded in the ledger"),
          );
          await payer.settle(session, edge.edgeId, reservationId, maxCost, settled);
          pool.completed(
            edge,
            result.kind === "done" && attemptTtft !== undefined
              ? { ttftMs: attemptTtft, durationMs: performance.now() - attemptStart, promptTokens, completionTokens: attemptTokens }
              : undefined,
          );
          metrics.outstanding.set({ edge: edge.key }, edge.stats.outstanding);
          recordAttempt(edge, result.kind, job.signal);
          if (attemptTokens > 0) edgesUsed.push(edge.key);
          completionTokens += result.kind === "done" && result.completionTokens !== undefined ? result.completionTokens : attemptTokens;
          if (result.kind === "done") {
            if (!continuation && result.promptTokens !== undefined) finalPrompt = result.promptTokens;
            if (!started) sink.start(edge.key);
            return {
              text: delivered,
              finishReason: result.finishReason,
              usage: { promptTokens: finalPrompt, completionTokens },
              cost,
              edges: edgesUsed.length > 0 ? edgesUsed : [edge.key],
              migrations,
              failovers,
              ttftMs,
            };
          }
          if (await setback(job, trail, edge.key, result)) continue;
          if (job.signal.aborted) throw new TransportError("client went away");
          // Every token asked for had arrived and only the stream's end was lost: the answer is
          // whole (cut at max_tokens), with nothing left for another edge to continue.
          if (deliveredTokens >= job.maxTokens)
            return {
              text: delivered,
              finishReason: "length",
              usage: { promptTokens: finalPrompt, completionTokens },
              cost,
              edges: edgesUsed,
              migrations,
              failovers,
              ttftMs,
            };
          logger.warn(
            { edgeId: edge.key, reason: trail.lastFailure, delivered: deliveredTokens, requestId: job.requestId },
            "edge failed; failing over",
          );
          if (deliveredTokens > 0) {
            if (migrations >= options.maxMigrations) throw upstreamFailed(`stream broke ${migrations + 1} times: ${trail.lastFailure}`);
            migrations += 1;
            failovers += 1;
            metrics.failovers.inc({ kind: "mid_stream" });
            continue;
          }
          if (trail.attempts >= options.maxAttempts || !options.retryBudget.tryRetry())
            throw upstreamFailed(trail.lastFailure, result.kind === "failed" && result.timeout === true ? 504 : 502);
          failovers += 1;
          metrics.failovers.inc({ kind: "before_first_byte" });
          await sleep(jitter(trail.attempts));
        }
      } finally {
        await admission.done(cost, finalPrompt + completionTokens);
      }
    },

    async embeddings(job) {
      const promptTokens = countPromptTokens(job.input.map((content) => ({ role: "user" as const, content })));
      if (!pool.knowsModel(job.model)) throw modelNotFound(job.model);
      const price = highestPrice(job.model);
      if (price === undefined) throw noEdgeAvailable(job.model, "no reachable edge serves it");
      const admission = await admit(job.tenant, job.model, promptTokens, BigInt(promptTokens) * price.inputPerToken);
      const trail = newTrail(admission.session);
      options.retryBudget.request();
      let failovers = 0;
      let cost = 0n;
      const body = JSON.stringify({ ...job.passthrough, model: job.model, input: job.input });
      try {
        for (;;) {
          const { edge, transport } = nextEdge(job.model, trail, {
            model: job.model,
            promptTokens,
            maxTokens: 0,
            maxPricePerOutputToken: job.tenant.maxPricePerOutputToken,
          });
          const session = trail.session;
          const edgePrice = edge.models?.get(job.model) ?? price;
          const maxCost = BigInt(promptTokens) * edgePrice.inputPerToken;
          const reservationId = `${job.requestId}.${trail.attempts}`;
          const payment = await reserveOn(edge, job.tenant, session, reservationId, maxCost);
          const timers = attemptSignal(job.signal);
          timers.arm(options.firstByteTimeoutMs, "no answer in time");
          let result: Attempt;
          const sent = await sendPaid(edge, transport, "/v1/embeddings", body, job.tenant, session, payment, timers.signal);
          if ("kind" in sent) result = sent;
          else {
            try {
              const parsed = JSON.parse(await readBody(sent)) as Record<string, unknown> & { tideway?: { cost?: string } };
              const c = parsed.tideway?.cost;
              result = {
                kind: "done",
                cost: typeof c === "string" && /^\d+$/.test(c) ? BigInt(c) : maxCost,
                finishReason: "stop",
                body: parsed,
              };
            } catch (err) {
              result = { kind: "failed", reason: (err as Error).message };
            }
          }
          timers.dispose();
          const settled = result.kind === "done" && result.cost !== undefined ? (result.cost < maxCost ? result.cost : maxCost) : 0n;
          cost += settled;
          await payment.recorded.catch((err: unknown) =>
            logger.warn({ err: (err as Error).message }, "a voucher was not recorded in the ledger"),
          );
          await payer.settle(session, edge.edgeId, reservationId, maxCost, settled);
          pool.completed(edge, undefined);
          recordAttempt(edge, result.kind, job.signal);
          if (result.kind === "done") return { body: result.body!, cost, edge: edge.key, failovers };
          if (job.signal.aborted) throw new TransportError("client went away");
          if (await setback(job, trail, edge.key, result)) continue;
          if (trail.attempts >= options.maxAttempts || !options.retryBudget.tryRetry()) throw upstreamFailed(trail.lastFailure);
          failovers += 1;
          metrics.failovers.inc({ kind: "before_first_byte" });
          await sleep(jitter(trail.attempts));
        }
      } finally {
        await admission.done(cost, promptTokens);
      }
    },
  };
}
