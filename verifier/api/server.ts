// The verifier's HTTP API: the peer protocol (observations, attestation and fault signatures),
// an epoch's status and settled results (for `npm start`, `npx hardhat epoch claim` and
// dashboards) under /tideway/v1, and /health and /metrics. Refusals answer a 4xx with the error
// envelope of lib/http/errors.ts; nothing a peer sends can stop the service.
import Fastify from "fastify";
import type { FastifyInstance } from "fastify";

import { useErrorEnvelope } from "../../lib/http/errors.ts";
import { hardenedServerOptions } from "../../lib/http/server.ts";
import type { HttpLimits } from "../../lib/http/server.ts";
import { protocolPath } from "../../lib/http/routes.ts";
import type { VerifierContext } from "../context.ts";
import { answerAttestationRequest, answerObservationRequest } from "../consensus/epochs.ts";
import type { ReportBuilder } from "../consensus/epochs.ts";
import { epochStatus } from "../consensus/status.ts";
import { PeerRequestError } from "../errors.ts";
import { answerFaultRequest } from "../faults/cosign.ts";
import type { WrongAnswerChecker } from "../faults/cosign.ts";
import type { HealthReport } from "../health.ts";

export interface ApiDeps {
  ctx: VerifierContext;
  buildReport: ReportBuilder;
  checkWrongAnswer: WrongAnswerChecker;
  /** What /health answers, from state kept by the running service (it must not wait on anything). */
  health: () => HealthReport;
  /** Refreshes the queue-depth gauges before /metrics answers. */
  refreshGauges: () => Promise<void>;
  /** Body size, timeouts and connection cap of the server. */
  limits: HttpLimits;
}

function parseEpoch(text: string): bigint {
  if (!/^\d{1,78}$/.test(text)) throw new PeerRequestError(400, "bad_epoch", `"${text}" is not an epoch number: use a decimal integer`);
  return BigInt(text);
}

const jsonText = (value: unknown) => JSON.stringify(value, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v));

type EpochParams = { Params: { epoch: string } };

export function buildApi(deps: ApiDeps): FastifyInstance {
  const { ctx } = deps;
  const app = Fastify({ ...hardenedServerOptions(deps.limits, ctx.logger), logger: false });
  app.setReplySerializer((payload) => jsonText(payload));
  useErrorEnvelope(app, {
    logger: ctx.logger,
    service: "verifier",
    onRefused: (err, url) => ctx.logger.info({ url, status: err.status, code: err.code }, `peer request refused: ${err.message}`),
  });

  app.get("/health", async (_request, reply) => {
    const { ok, reasons, redis, detail } = deps.health();
    return reply
      .status(ok ? 200 : 503)
      .send({ status: ok ? "ok" : "degraded", verifier: ctx.key.address, redis, ...(ok ? {} : { reasons }), ...detail });
  });

  app.get("/metrics", async (_request, reply) => {
    await deps.refreshGauges().catch((err: unknown) => ctx.logger.warn({ err }, "cannot read queue depths"));
    return reply.header("content-type", ctx.metrics.registry.contentType).send(await ctx.metrics.registry.metrics());
  });

  app.get<EpochParams>(protocolPath("epochs/:epoch/observation"), async (request) =>
    answerObservationRequest(ctx, parseEpoch(request.params.epoch)),
  );

  app.post<EpochParams>(protocolPath("epochs/:epoch/attestations"), async (request) => {
    const epoch = parseEpoch(request.params.epoch);
    const body = request.body as { epoch?: unknown } | undefined;
    if (body?.epoch !== epoch.toString())
      throw new PeerRequestError(400, "epoch_mismatch", `the body's epoch (${String(body?.epoch)}) is not the path's (${epoch})`);
    return answerAttestationRequest(ctx, request.body, deps.buildReport);
  });

  app.post(protocolPath("faults"), async (request) => answerFaultRequest(ctx, request.body, deps.checkWrongAnswer));

  app.get<EpochParams>(protocolPath("epochs/:epoch/status"), async (request) => epochStatus(ctx.state, parseEpoch(request.params.epoch)));

  app.get<EpochParams>(protocolPath("epochs/:epoch/results"), async (request) => {
    const epoch = parseEpoch(request.params.epoch);
    const report = await ctx.state.report(epoch);
    if (report === undefined)
      throw new PeerRequestError(
        404,
        "no_report",
        `this verifier holds no report of epoch ${epoch}: see ${protocolPath(`epochs/${epoch}/status`)}`,
      );
    return { epoch: report.epoch, root: report.root, totalWeight: report.totalWeight, results: report.results };
  });

  return app;
}
