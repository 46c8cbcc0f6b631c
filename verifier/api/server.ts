// The verifier's HTTP API: the peer protocol (observations, attestation and fault signatures),
// the settled results of an epoch (for `npx hardhat epoch claim` and dashboards), /health and
// /metrics. Bad requests get a 4xx naming the problem; nothing a peer sends can stop the service.
import Fastify from "fastify";
import type { FastifyInstance } from "fastify";

import type { VerifierContext } from "../context.ts";
import { answerAttestationRequest, answerObservationRequest, EpochRequestError } from "../consensus/epochs.ts";
import type { ReportBuilder } from "../consensus/epochs.ts";
import { answerFaultRequest } from "../faults/cosign.ts";
import type { WrongAnswerChecker } from "../faults/cosign.ts";

export interface ApiDeps {
  ctx: VerifierContext;
  buildReport: ReportBuilder;
  checkWrongAnswer: WrongAnswerChecker;
  /** What /health reports beyond Redis: the last successful chain read. */
  health: () => Promise<{ ok: boolean; detail: Record<string, unknown> }>;
  /** Refreshes the queue-depth gauges before /metrics answers. */
  refreshGauges: () => Promise<void>;
}

function parseEpoch(text: string): bigint {
  if (!/^\d{1,78}$/.test(text)) throw new EpochRequestError(400, "bad-epoch", `"${text}" is not an epoch number`);
  return BigInt(text);
}

const jsonText = (value: unknown) => JSON.stringify(value, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v));

export function buildApi(deps: ApiDeps): FastifyInstance {
  const { ctx } = deps;
  const app = Fastify({ logger: false, bodyLimit: 8 * 1024 * 1024 });
  app.setReplySerializer((payload) => jsonText(payload));
  app.setErrorHandler((err, request, reply) => {
    if (err instanceof EpochRequestError) {
      ctx.logger.info({ url: request.url, status: err.status, reason: err.reason }, `peer request refused: ${err.message}`);
      void reply.status(err.status).send({ error: { reason: err.reason, message: err.message }, ...(err.body as object | undefined) });
      return;
    }
    const status = (err as { statusCode?: number }).statusCode;
    if (status !== undefined && status >= 400 && status < 500) {
      void reply.status(status).send({ error: { reason: "bad-request", message: (err as Error).message } });
      return;
    }
    ctx.logger.error({ err, url: request.url }, "request failed");
    void reply.status(500).send({ error: { reason: "internal", message: "internal error (logged)" } });
  });

  app.get("/health", async (_request, reply) => {
    let redis = "ok";
    try {
      await ctx.state.redis.ping();
    } catch (err) {
      redis = (err as Error).message;
    }
    const chain = await deps.health();
    const ok = redis === "ok" && chain.ok;
    return reply.status(ok ? 200 : 503).send({ status: ok ? "ok" : "degraded", verifier: ctx.key.address, redis, ...chain.detail });
  });

  app.get("/metrics", async (_request, reply) => {
    await deps.refreshGauges().catch((err: unknown) => ctx.logger.warn({ err }, "cannot read queue depths"));
    return reply.header("content-type", ctx.metrics.registry.contentType).send(await ctx.metrics.registry.metrics());
  });

  app.get<{ Params: { epoch: string } }>("/v1/epochs/:epoch/observation", async (request) => answerObservationRequest(ctx, parseEpoch(request.params.epoch)));

  app.post<{ Params: { epoch: string } }>("/v1/epochs/:epoch/attestations", async (request) => {
    const epoch = parseEpoch(request.params.epoch);
    const body = request.body as { epoch?: unknown } | undefined;
    if (body?.epoch !== epoch.toString()) throw new EpochRequestError(400, "epoch-mismatch", "the body's epoch is not the path's");
    return answerAttestationRequest(ctx, request.body, deps.buildReport);
  });

  app.post("/v1/faults", async (request) => answerFaultRequest(ctx, request.body, deps.checkWrongAnswer));

  app.get<{ Params: { epoch: string } }>("/v1/epochs/:epoch/results", async (request) => {
    const epoch = parseEpoch(request.params.epoch);
    const report = await ctx.state.report(epoch);
    if (report === undefined) throw new EpochRequestError(404, "no-report", `this verifier holds no report of epoch ${epoch}`);
    return { epoch: report.epoch, root: report.root, totalWeight: report.totalWeight, results: report.results };
  });

  return app;
}
