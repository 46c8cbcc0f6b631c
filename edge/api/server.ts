// The edge's HTTP API (fastify): OpenAI's `/v1/chat/completions` (SSE and JSON),
// `/v1/embeddings` and `/v1/models` (errors in OpenAI's shape); the usage-log audit routes verifiers
// call and the edge's info under `/tideway/v1` (errors in the shared envelope, lib/http/errors.ts);
// `/health` and `/metrics`. Handlers only translate between HTTP and serving/inference.ts.
import { randomUUID } from "node:crypto";

import Fastify, { LogController } from "fastify";
import type { FastifyReply, FastifyRequest } from "fastify";
import type { Logger } from "pino";
import { isHex } from "viem";
import type { Hex } from "viem";

import { fastifyClientError, internalErrorMessage } from "../../lib/http/errors.ts";
import { registerOperations } from "../../lib/http/operations.ts";
import { hardenedServerOptions } from "../../lib/http/server.ts";
import type { HttpLimits } from "../../lib/http/server.ts";
import { protocolPath } from "../../lib/http/routes.ts";
import { NONCE_HEADER } from "../../lib/protocol/edgeProofs.ts";
import { VOUCHER_HEADER } from "../../lib/protocol/voucherHeader.ts";
import type { EdgeMetrics } from "../metrics.ts";
import { serveChat, serveEmbeddings } from "../serving/inference.ts";
import type { ChatResult, RequestContext, ServedInfo, ServingDeps } from "../serving/inference.ts";
import type { ServedModel, UsageAuditPort } from "../serving/ports.ts";
import { BackendError } from "../backends/types.ts";
import { EpochNotClosedError, EpochPrunedError, UnknownEntryError, UsageTreeBuildError } from "../gpow/usageLog.ts";
import { PaymentError } from "../payment/errors.ts";
import { ApiError, badRequest, isOpenAIRoute } from "./errors.ts";
import { OverloadedError } from "./limiter.ts";
import { paymentRefusalDetails } from "../../lib/openai/payment.ts";
import { formatTokensExact, TOKEN_SYMBOL } from "../../lib/protocol/units.ts";
import { ChatCompletionBody, EmbeddingsBody, parseBody } from "../../lib/openai/requests.ts";

export interface ApiOptions {
  serving: ServingDeps;
  audit: UsageAuditPort;
  metrics: EdgeMetrics;
  logger: Logger;
  /** Body size, timeouts and connection cap of the server. */
  limits: HttpLimits;
  /** Public facts about this edge for `/tideway/v1/info` (chain, contracts, signing key). */
  info: () => Record<string, unknown>;
  health: () => { ok: boolean; [key: string]: unknown };
}

declare module "fastify" {
  interface FastifyRequest {
    rawBody?: Buffer;
  }
}

/**
 * Anything thrown while serving, as the OpenAI-shaped error the client gets (`bodyLimitBytes`: the
 * route's, for a 413). A failure of the edge itself or of its model backend is a 5xx that names
 * only `requestId`: its message may carry internals (a worker's error, the upstream's URL).
 */
export function toApiError(err: unknown, bodyLimitBytes?: number, requestId = "unknown"): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof OverloadedError) {
    return new ApiError(429, "rate_limit_error", err.message, {
      code: err.code,
      headers: { "retry-after": String(err.retryAfterSeconds) },
    });
  }
  if (err instanceof PaymentError) {
    const headers: Record<string, string> = {};
    if (err.amountDue !== undefined) headers["x-tideway-amount-due"] = err.amountDue.toString();
    if (err.status !== 402) {
      const type = err.status >= 500 ? "server_error" : "invalid_request_error";
      return new ApiError(err.status, type, err.message, { code: err.code, headers });
    }
    const message = err.amountDue === undefined ? err.message : `${err.message} (${formatTokensExact(err.amountDue)} ${TOKEN_SYMBOL})`;
    return new ApiError(402, "payment_required", message, {
      code: err.code,
      extra: paymentRefusalDetails(err.code, "edge", err.amountDue),
      headers,
    });
  }
  if (err instanceof EpochNotClosedError) return new ApiError(409, "invalid_request_error", err.message, { code: "epoch_not_closed" });
  if (err instanceof UnknownEntryError) return new ApiError(404, "not_found_error", err.message, { code: "unknown_entry" });
  if (err instanceof EpochPrunedError) return new ApiError(410, "not_found_error", err.message, { code: "epoch_pruned" });
  if (err instanceof UsageTreeBuildError)
    return new ApiError(503, "server_error", err.message, { code: "usage_tree_unavailable", headers: { "retry-after": "1" } });
  if (err instanceof BackendError) {
    if (err.status >= 500)
      return new ApiError(err.status, "server_error", internalErrorMessage("edge's model backend", requestId), {
        code: err.code ?? "backend_error",
        extra: { request_id: requestId },
      });
    return new ApiError(err.status, err.type as ApiError["type"], err.message, {
      code: err.code ?? "backend_error",
      param: err.param ?? undefined,
    });
  }
  // fastify's own errors (body parsing and limits) carry a statusCode and an FST_ code.
  const client = fastifyClientError(err, bodyLimitBytes);
  if (client !== undefined) return new ApiError(client.status, "invalid_request_error", client.message, { code: client.code });
  return new ApiError(500, "server_error", internalErrorMessage("edge", requestId), {
    code: "internal_error",
    extra: { request_id: requestId },
  });
}

function nonceOf(request: FastifyRequest): Hex | undefined {
  const value = request.headers[NONCE_HEADER];
  if (value === undefined) return undefined;
  if (typeof value !== "string" || !isHex(value) || value.length !== 66) {
    throw badRequest(`${NONCE_HEADER} must be 32 bytes of 0x-prefixed hex`, NONCE_HEADER, "invalid_nonce");
  }
  return value.toLowerCase() as Hex;
}

function contextOf(request: FastifyRequest, reply: FastifyReply): RequestContext {
  const controller = new AbortController();
  // The response closing before it finished means the client went away: stop the work.
  reply.raw.on("close", () => {
    if (!reply.raw.writableFinished) controller.abort();
  });
  const voucher = request.headers[VOUCHER_HEADER];
  return {
    rawBody: request.rawBody ?? Buffer.alloc(0),
    voucherHeader: typeof voucher === "string" ? voucher : undefined,
    nonce: nonceOf(request),
    signal: controller.signal,
  };
}

/** `value` with every bigint as a decimal string (JSON has no bigints). */
function jsonSafe(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value, (_key, v: unknown) => (typeof v === "bigint" ? v.toString() : v)));
}

/** Usage and Tideway fields every answer carries. */
function tidewayFields(info: ServedInfo) {
  return {
    usage: {
      prompt_tokens: info.usage.promptTokens,
      completion_tokens: info.usage.completionTokens,
      total_tokens: info.usage.promptTokens + info.usage.completionTokens,
    },
    tideway: {
      cost: info.cost.toString(),
      epoch: info.epoch.toString(),
      usage_index: info.usageIndex,
      session_id: info.sessionId.toString(),
      ...(info.receipt === undefined
        ? {}
        : {
            receipt: {
              edge_id: info.receipt.edgeId.toString(),
              epoch: info.receipt.epoch.toString(),
              nonce: info.receipt.nonce,
              request_hash: info.receipt.requestHash,
              response_hash: info.receipt.responseHash,
              prompt_tokens: info.receipt.promptTokens,
              completion_tokens: info.receipt.completionTokens,
              signature: info.receipt.signature,
            },
          }),
    },
  };
}

/** Builds the API (not listening yet). */
export function createApi(options: ApiOptions) {
  const { serving, metrics, logger } = options;
  const app = Fastify({
    ...hardenedServerOptions(options.limits, logger),
    loggerInstance: logger,
    // One log line per request would be the loudest thing in the log; metrics count requests.
    logController: new LogController({ disableRequestLogging: true }),
  });

  // Keep the exact body bytes: a receipt's requestHash covers them.
  const defaultJson = app.getDefaultJsonParser("error", "error");
  app.addContentTypeParser("application/json", { parseAs: "buffer" }, (request, body, done) => {
    request.rawBody = body as Buffer;
    defaultJson(request, (body as Buffer).toString("utf8"), done);
  });

  app.setErrorHandler((err, request, reply) => {
    const api = toApiError(err, request.routeOptions.bodyLimit, request.id);
    if (api.status >= 500) logger.error({ err, url: request.url, reqId: request.id }, "request failed");
    if (err instanceof OverloadedError) metrics.rejectedOverload.inc();
    metrics.requests.inc({ route: request.routeOptions.url ?? "unknown", model: "", status: String(api.status) });
    void reply
      .code(api.status)
      .headers(api.headers)
      .send(isOpenAIRoute(request.url) ? api.body() : api.envelope());
  });
  app.setNotFoundHandler((request, reply) => {
    const api = new ApiError(404, "not_found_error", `no route ${request.method} ${request.url} on this edge`, { code: "unknown_route" });
    void reply.code(404).send(isOpenAIRoute(request.url) ? api.body() : api.envelope());
  });

  app.post("/v1/chat/completions", async (request, reply) => {
    const body = parseBody(ChatCompletionBody, request.body);
    const ctx = contextOf(request, reply);
    const id = `chatcmpl-${randomUUID().replaceAll("-", "")}`;
    const created = Math.floor(Date.now() / 1000);
    const startedAt = performance.now();
    const route = "/v1/chat/completions";
    if (body.stream === true) {
      let started = false;
      const chunk = (delta: Record<string, unknown>, finish: string | null) =>
        `data: ${JSON.stringify({ id, object: "chat.completion.chunk", created, model: body.model, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] })}\n\n`;
      let result: ChatResult;
      try {
        result = await serveChat(serving, body, ctx, {
          start() {
            started = true;
            reply.hijack();
            reply.raw.writeHead(200, {
              "content-type": "text/event-stream; charset=utf-8",
              "cache-control": "no-cache",
              connection: "keep-alive",
              "x-accel-buffering": "no",
            });
            reply.raw.write(chunk({ role: "assistant", content: "" }, null));
          },
          delta(text) {
            reply.raw.write(chunk({ content: text }, null));
          },
        });
      } catch (err) {
        if (!started) throw err;
        // Headers are gone: report in-band as OpenAI does, then end the stream.
        const api = toApiError(err, undefined, request.id);
        if (api.status >= 500) logger.error({ err, reqId: request.id }, "stream failed");
        if (!reply.raw.destroyed) reply.raw.end(`data: ${JSON.stringify(api.body())}\n\n`);
        metrics.requests.inc({ route, model: body.model, status: String(api.status) });
        return;
      }
      reply.raw.write(chunk({}, result.finishReason));
      reply.raw.write(
        `data: ${JSON.stringify({ id, object: "chat.completion.chunk", created, model: body.model, choices: [], ...tidewayFields(result) })}\n\n`,
      );
      reply.raw.end("data: [DONE]\n\n");
      metrics.requests.inc({ route, model: body.model, status: "200" });
      metrics.requestDuration.observe({ route, model: body.model }, (performance.now() - startedAt) / 1000);
      return;
    }
    const result = await serveChat(serving, body, ctx, { start() {}, delta() {} });
    metrics.requests.inc({ route, model: body.model, status: "200" });
    metrics.requestDuration.observe({ route, model: body.model }, (performance.now() - startedAt) / 1000);
    return {
      id,
      object: "chat.completion",
      created,
      model: body.model,
      choices: [
        {
          index: 0,
          message: { role: "assistant", content: result.text, refusal: null },
          logprobs: null,
          finish_reason: result.finishReason,
        },
      ],
      ...tidewayFields(result),
    };
  });

  app.post("/v1/embeddings", async (request, reply) => {
    const body = parseBody(EmbeddingsBody, request.body);
    const ctx = contextOf(request, reply);
    const startedAt = performance.now();
    const result = await serveEmbeddings(serving, body, ctx);
    const route = "/v1/embeddings";
    metrics.requests.inc({ route, model: body.model, status: "200" });
    metrics.requestDuration.observe({ route, model: body.model }, (performance.now() - startedAt) / 1000);
    const base64 = body.encoding_format === "base64";
    return {
      object: "list",
      model: body.model,
      data: result.embeddings.map((vector, index) => ({
        object: "embedding",
        index,
        embedding: base64 ? Buffer.from(new Float32Array(vector).buffer).toString("base64") : vector,
      })),
      ...tidewayFields(result),
    };
  });

  const modelEntry = ({ config, backend }: ServedModel) => ({
    id: config.name,
    object: "model",
    created: 0,
    owned_by: `tideway-edge-${serving.edgeId}`,
    tideway: {
      backend: config.backend.type,
      price: { input_per_token: config.price.inputPerToken.toString(), output_per_token: config.price.outputPerToken.toString() },
      max_tokens: config.maxTokens,
      declared_tokens_per_second: backend.declaredTokensPerSecond ?? null,
    },
  });
  app.get("/v1/models", async () => ({ object: "list", data: [...serving.models.values()].map(modelEntry) }));
  app.get<{ Params: { id: string } }>("/v1/models/:id", async (request) => {
    const served = serving.models.get(request.params.id);
    if (served === undefined)
      throw new ApiError(404, "not_found_error", `The model \`${request.params.id}\` is not served by this edge`, {
        param: "model",
        code: "model_not_found",
      });
    return modelEntry(served);
  });

  // --- audits of the served-usage log (verifiers) -------------------------------------------
  const epochParam = (value: string): bigint => {
    if (!/^\d{1,20}$/.test(value)) throw badRequest("epoch must be a whole number", "epoch");
    return BigInt(value);
  };
  app.get<{ Params: { epoch: string } }>(protocolPath("usage/:epoch"), async (request) => {
    const c = await options.audit.commitment(epochParam(request.params.epoch));
    return { edge_id: c.edgeId.toString(), epoch: c.epoch.toString(), root: c.root, count: Number(c.count), signature: c.signature };
  });
  app.get<{ Params: { epoch: string; index: string } }>(protocolPath("usage/:epoch/entries/:index"), async (request) => {
    if (!/^\d{1,10}$/.test(request.params.index)) throw badRequest("index must be a whole number", "index");
    const opened = await options.audit.open(epochParam(request.params.epoch), Number(request.params.index));
    return jsonSafe(opened);
  });
  app.get<{ Params: { epoch: string; nonce: string } }>(protocolPath("usage/:epoch/nonces/:nonce"), async (request) => {
    const nonce = request.params.nonce;
    if (!isHex(nonce) || nonce.length !== 66) throw badRequest("nonce must be 32 bytes of 0x-prefixed hex", "nonce");
    const index = await options.audit.findNonce(epochParam(request.params.epoch), nonce.toLowerCase() as Hex);
    if (index === undefined)
      throw new ApiError(404, "not_found_error", `no entry with this nonce in epoch ${request.params.epoch}`, { code: "unknown_nonce" });
    return { index };
  });

  app.get(protocolPath("info"), async () => options.info());

  // --- operations --------------------------------------------------------------------------------
  registerOperations(app, { health: options.health, registry: metrics.registry });

  return app;
}
