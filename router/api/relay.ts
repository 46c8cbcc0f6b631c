// The relay for edges behind NAT: `/tideway/v1/edges/<id>/<path>` forwards any request to that
// edge over its link, byte for byte (a challenge's receipt signs the exact request body), and
// streams the answer back. Such an edge registers this URL as its endpoint, so verifiers, audits
// and gateways reach it like any other edge. The edge's own payment rules apply; the router adds
// nothing and pays nothing here.
import type { Logger } from "pino";

import { errorEnvelope } from "../../lib/http/errors.ts";
import { protocolPath } from "../../lib/http/routes.ts";
import type { EdgePool } from "../dispatch/pool.ts";
import type { RouterApp } from "./server.ts";

const FORWARDED_HEADERS = ["content-type", "accept", "x-tideway-voucher", "x-tideway-nonce", "authorization"];
const DROP_FROM_RESPONSE = new Set(["connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding"]);

export function registerRelay(app: RouterApp, options: { pool: EdgePool; logger: Logger }): void {
  void app.register(async (scope) => {
    // Raw bodies: the edge must receive exactly the bytes the client sent.
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser("*", { parseAs: "string" }, (_request, body, done) => done(null, body));
    scope.all<{ Params: { edgeId: string; "*": string } }>(protocolPath("edges/:edgeId/*"), async (request, reply) => {
      const { edgeId } = request.params;
      const edge = /^\d{1,78}$/.test(edgeId) ? options.pool.get(BigInt(edgeId)) : undefined;
      if (edge === undefined)
        return reply.code(404).send(errorEnvelope("unknown_edge", `no active edge ${edgeId} is known to this router`));
      if (edge.link === undefined) {
        // Only an edge whose registered endpoint is this relay is expected back on a link.
        if (edge.record.profile?.endpoint?.endsWith(protocolPath(`edges/${edgeId}`)) !== true)
          return reply
            .code(404)
            .send(errorEnvelope("edge_not_relayed", `edge ${edgeId} is reached at its own endpoint, not through this router`));
        return reply.code(503).send(errorEnvelope("edge_not_linked", `edge ${edgeId} is not linked to this router now; retry shortly`));
      }
      const method = request.method === "POST" ? "POST" : "GET";
      const query = request.url.includes("?") ? request.url.slice(request.url.indexOf("?")) : "";
      const headers: Record<string, string> = {};
      for (const name of FORWARDED_HEADERS) {
        const value = request.headers[name];
        if (typeof value === "string") headers[name] = value;
      }
      const controller = new AbortController();
      reply.raw.on("close", () => {
        if (!reply.raw.writableFinished) controller.abort();
      });
      let response: Awaited<ReturnType<typeof edge.link.send>>;
      try {
        response = await edge.link.send({
          method,
          path: `/${request.params["*"]}${query}`,
          headers,
          body: method === "POST" ? (typeof request.body === "string" ? request.body : "") : undefined,
          signal: controller.signal,
        });
      } catch (err) {
        return reply
          .code(502)
          .send(errorEnvelope("edge_unreachable", `edge ${edgeId} did not answer over its link: ${(err as Error).message}`));
      }
      reply.hijack();
      const out: Record<string, string> = {};
      for (const [name, value] of Object.entries(response.headers)) if (!DROP_FROM_RESPONSE.has(name)) out[name] = value;
      reply.raw.writeHead(response.status, out);
      try {
        for await (const chunk of response.body) reply.raw.write(chunk);
        reply.raw.end();
      } catch (err) {
        options.logger.warn({ edgeId, err: (err as Error).message }, "relay: edge link broke mid-answer");
        reply.raw.destroy();
      }
      return reply;
    });
  });
}
