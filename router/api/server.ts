// The router's HTTP API (fastify). OpenAI-compatible routes for dApps — `/v1/chat/completions`
// (JSON and SSE), `/v1/embeddings`, `/v1/models`, `/v1/responses` — behind `Authorization: Bearer
// <tenant key>`, with errors in OpenAI's shape; Tideway routes under `/tideway/v1` (the edges'
// relay and link, the router's view of edges and traffic) with the shared error envelope;
// `/health` and `/metrics`. Handlers translate between HTTP and the dispatcher; they hold no
// routing or payment logic.
import { createHash, randomUUID } from "node:crypto";

import type { IncomingMessage, ServerResponse } from "node:http";

import Fastify, { LogController } from "fastify";
import type { FastifyInstance, FastifyReply, FastifyRequest, RawServerDefault } from "fastify";
import type { Logger } from "pino";

import { fastifyClientError, internalErrorMessage } from "../../lib/http/errors.ts";
import { registerOperations } from "../../lib/http/operations.ts";
import { hardenedServerOptions } from "../../lib/http/server.ts";
import type { HttpLimits } from "../../lib/http/server.ts";
import { protocolPath } from "../../lib/http/routes.ts";
import { ApiError, isOpenAIRoute } from "../../lib/openai/errors.ts";
import { EmbeddingsBody, parseBody } from "../../lib/openai/requests.ts";
import type { Dispatcher, ChatMessage } from "../dispatch/dispatcher.ts";
import { TransportError } from "../dispatch/transport.ts";
import type { EdgePool } from "../dispatch/pool.ts";
import type { RouterMetrics } from "../metrics.ts";
import type { Tenant, TenantStore } from "../tenants/store.ts";
import { registerChat } from "./chat.ts";
import { schedulingOf } from "./context.ts";
import type { RouteContext, SchedulingDefaults } from "./context.ts";
import { registerRelay } from "./relay.ts";
import { registerResponses } from "./responses.ts";
import type { ConversationStore } from "../conversations/store.ts";

export interface RouterApiOptions {
  dispatcher: Dispatcher;
  pool: EdgePool;
  tenants: TenantStore;
  conversations: ConversationStore;
  metrics: RouterMetrics;
  logger: Logger;
  /** Body size, timeouts and connection cap of the server (the edges' links included). */
  limits: HttpLimits;
  defaultMaxTokens: number;
  scheduling: SchedulingDefaults;
  health: () => { ok: boolean; [key: string]: unknown };
}

declare module "fastify" {
  interface FastifyRequest {
    tenant?: Tenant;
  }
}

/** The router's fastify instance (its logger is pino's). */
export type RouterApp = FastifyInstance<RawServerDefault, IncomingMessage, ServerResponse, Logger>;

/** Header a client may set to keep a conversation on one edge (its cache). */
export const SESSION_HEADER = "x-tideway-session";

/** Response header naming the edge that served the first token (a stream may move on to others: see `tideway.edges`). */
export const EDGE_HEADER = "x-tideway-edge";

/** Body fields the router sets itself or does not forward to edges. */
const ROUTER_FIELDS = new Set([
  "model",
  "messages",
  "stream",
  "stream_options",
  "max_tokens",
  "max_completion_tokens",
  "n",
  "continue_final_message",
  "add_generation_prompt",
  "input",
]);

export function passthroughOf(body: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(body)) if (!ROUTER_FIELDS.has(key) && value !== undefined) out[key] = value;
  return out;
}

/**
 * The affinity key of a conversation: the client's session header; else, for a conversation that
 * has already had an answer (an assistant message), a hash of how it starts (its first two
 * messages). A first turn without a header has none: nothing is cached for it anywhere yet, so the
 * policy sends it where it starts soonest rather than to an edge its hash happens to pick.
 */
export function affinityKeyOf(request: FastifyRequest, model: string, messages: readonly ChatMessage[]): string | undefined {
  const header = request.headers[SESSION_HEADER];
  if (typeof header === "string" && header.length > 0) return `s:${header}`;
  if (!messages.some((m) => m.role === "assistant")) return undefined;
  const hash = createHash("sha256").update(model);
  for (const m of messages.slice(0, 2)) hash.update(`\u0000${m.role}\u0000${m.content}`);
  return `p:${hash.digest("base64url").slice(0, 22)}`;
}

/**
 * Anything thrown while serving, as the OpenAI-shaped error the client gets (`bodyLimitBytes`: the
 * route's, for a 413). A failure of the router itself is a 500 that names only `requestId`.
 */
export function toApiError(err: unknown, bodyLimitBytes?: number, requestId = "unknown"): ApiError {
  if (err instanceof ApiError) return err;
  const client = fastifyClientError(err, bodyLimitBytes);
  if (client !== undefined) return new ApiError(client.status, "invalid_request_error", client.message, { code: client.code });
  if (err instanceof TransportError) return new ApiError(499, "invalid_request_error", err.message, { code: "client_closed_request" });
  return new ApiError(500, "server_error", internalErrorMessage("router", requestId), {
    code: "internal_error",
    extra: { request_id: requestId },
  });
}

export function createRouterApi(options: RouterApiOptions) {
  const { dispatcher, pool, tenants, metrics, logger } = options;
  const app = Fastify({
    ...hardenedServerOptions(options.limits, logger),
    loggerInstance: logger,
    logController: new LogController({ disableRequestLogging: true }),
  });

  app.setErrorHandler((err, request, reply) => {
    const api = toApiError(err, request.routeOptions.bodyLimit, request.id);
    if (api.status >= 500) logger.error({ err, url: request.url, reqId: request.id }, "request failed");
    metrics.requests.inc({ route: request.routeOptions.url ?? "unknown", status: String(api.status) });
    if (api.status === 429) metrics.record({ status: 429, failovers: 0, cost: 0n });
    void reply
      .code(api.status)
      .headers(api.headers)
      .send(isOpenAIRoute(request.url) ? api.body() : api.envelope());
  });
  app.setNotFoundHandler((request, reply) => {
    const api = new ApiError(404, "not_found_error", `no route ${request.method} ${request.url} on this router`, { code: "unknown_route" });
    void reply.code(404).send(isOpenAIRoute(request.url) ? api.body() : api.envelope());
  });

  // Every OpenAI route needs a tenant key.
  app.addHook("onRequest", async (request) => {
    if (!isOpenAIRoute(request.url)) return;
    const auth = request.headers.authorization;
    const key = typeof auth === "string" && auth.startsWith("Bearer ") ? auth.slice(7).trim() : undefined;
    if (key === undefined || key === "")
      throw new ApiError(
        401,
        "authentication_error",
        "missing API key: send `Authorization: Bearer <tenant key>` (`router tenant add` creates one)",
        {
          code: "missing_api_key",
        },
      );
    const tenant = await tenants.authenticate(key);
    if (tenant === undefined) throw new ApiError(401, "authentication_error", "invalid or revoked API key", { code: "invalid_api_key" });
    request.tenant = tenant;
  });

  /** A controller aborted when the client goes away before the answer ends. */
  function clientSignal(reply: FastifyReply): AbortSignal {
    const controller = new AbortController();
    reply.raw.on("close", () => {
      if (!reply.raw.writableFinished) controller.abort(new TransportError("client went away"));
    });
    return controller.signal;
  }

  function finished(
    route: string,
    status: number,
    outcome: { ttftMs?: number; failovers: number; cost: bigint },
    startedAt: number,
    model: string,
  ) {
    metrics.requests.inc({ route, status: String(status) });
    metrics.requestDuration.observe({ route }, (performance.now() - startedAt) / 1000);
    if (outcome.ttftMs !== undefined) metrics.timeToFirstToken.observe({ model }, outcome.ttftMs / 1000);
    metrics.spent.inc({ model }, Number(outcome.cost) / 1e18);
    metrics.record({ ttftMs: outcome.ttftMs, status, failovers: outcome.failovers, cost: outcome.cost });
  }

  app.post("/v1/embeddings", async (request, reply) => {
    const body = parseBody(EmbeddingsBody, request.body);
    const startedAt = performance.now();
    const input = typeof body.input === "string" ? [body.input] : body.input;
    const outcome = await dispatcher.embeddings({
      tenant: request.tenant!,
      requestId: `emb-${randomUUID()}`,
      model: body.model,
      input,
      passthrough: { ...passthroughOf(body as Record<string, unknown>) },
      ...context.schedulingOf(request),
      signal: clientSignal(reply),
    });
    finished("/v1/embeddings", 200, { failovers: outcome.failovers, cost: outcome.cost }, startedAt, body.model);
    const edgeBody = outcome.body as { data?: unknown; usage?: unknown };
    return {
      object: "list",
      model: body.model,
      data: edgeBody.data,
      usage: edgeBody.usage,
      tideway: { cost: outcome.cost.toString(), edges: outcome.edges },
    };
  });

  function modelEntry(name: string, m: { edges: number; minOutput: bigint; maxOutput: bigint; minInput: bigint; maxInput: bigint }) {
    return {
      id: name,
      object: "model",
      created: 0,
      owned_by: "tideway",
      tideway: {
        edges: m.edges,
        price: {
          input_per_token: { min: m.minInput.toString(), max: m.maxInput.toString() },
          output_per_token: { min: m.minOutput.toString(), max: m.maxOutput.toString() },
        },
      },
    };
  }

  app.get("/v1/models", async () => ({
    object: "list",
    data: [...pool.models()].sort(([a], [b]) => a.localeCompare(b)).map(([name, m]) => modelEntry(name, m)),
  }));
  app.get<{ Params: { id: string } }>("/v1/models/:id", async (request) => {
    const m = pool.models().get(request.params.id);
    if (m === undefined)
      throw new ApiError(404, "not_found_error", `The model \`${request.params.id}\` is not served by any active edge`, {
        param: "model",
        code: "model_not_found",
      });
    return modelEntry(request.params.id, m);
  });

  const context: RouteContext = {
    dispatcher,
    metrics,
    logger,
    defaultMaxTokens: options.defaultMaxTokens,
    clientSignal,
    finished,
    schedulingOf: (request) => schedulingOf(request, options.scheduling),
  };
  registerChat(app, context);
  registerResponses(app, { ...context, conversations: options.conversations });
  registerRelay(app, { pool, logger });

  app.get(protocolPath("edges"), async () => ({
    edges: pool.all().map((e) => ({
      edge_id: e.key,
      status: e.record.status,
      region: e.record.profile?.region ?? null,
      endpoint: e.record.profile?.endpoint ?? null,
      capacity: e.record.profile?.capacity ?? null,
      transport: e.link !== undefined ? "link" : e.http !== undefined ? "http" : null,
      models: e.models === undefined ? [] : [...e.models.keys()],
      breaker: e.breaker.state(),
      rtt_ms: Math.round(e.stats.rttMs * 100) / 100,
      outstanding: e.stats.outstanding,
      reported:
        e.stats.reported === undefined
          ? null
          : { in_flight: e.stats.reported.inFlight, queued: e.stats.reported.queued, saturation: e.stats.reported.saturation },
      samples: e.stats.samples,
    })),
  }));
  app.get(protocolPath("traffic"), async () => metrics.traffic());

  registerOperations(app, { health: options.health, registry: metrics.registry });

  return app;
}
