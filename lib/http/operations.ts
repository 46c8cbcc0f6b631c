// The operations routes every service serves at its root: `GET /health` (200 when it can do its
// work, 503 otherwise, with the report either way) and `GET /metrics` (Prometheus text).
import type { IncomingMessage, ServerResponse } from "node:http";

import type { FastifyBaseLogger, FastifyInstance, RawServerDefault } from "fastify";
import type { Registry } from "prom-client";

export interface OperationsRoutes {
  health: () => { ok: boolean; [key: string]: unknown };
  registry: Registry;
}

export function registerOperations<Logger extends FastifyBaseLogger>(
  app: FastifyInstance<RawServerDefault, IncomingMessage, ServerResponse, Logger>,
  routes: OperationsRoutes,
): void {
  app.get("/health", async (_request, reply) => {
    const report = routes.health();
    return reply.code(report.ok ? 200 : 503).send(report);
  });
  app.get("/metrics", async (_request, reply) => {
    const text = await routes.registry.metrics();
    return reply.type(routes.registry.contentType).send(text);
  });
}
