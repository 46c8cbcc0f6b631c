// The HTTP server every service builds its fastify instance on, with the limits that keep one
// client from holding the service: how long the headers and the whole request may take to arrive
// (a slowloris that trickles either gets 408 and its socket closed; a connection that sends
// nothing is closed when the header time is up), how many connections stay open at once (one
// more is closed as soon as it is accepted, unread, and logged), how long an idle keep-alive
// connection stays, how large a body and a path parameter may be. WebSocket upgrades arrive
// through the same server: a handshake is bound by the same header timeout and its socket counts
// against the same cap; once upgraded, it is no longer a request and no request timeout applies.
//
// `requestTimeout` bounds receiving the request only, never the response: a streamed answer may
// last as long as the work takes.
import { randomUUID } from "node:crypto";
import { createServer } from "node:http";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { Socket } from "node:net";

import type { FastifyServerOptions } from "fastify";
import type { Logger } from "pino";
import { z } from "zod";

const positiveInt = z.number().int().positive();

/**
 * The limits as configuration fields, to spread into a service's `limits` object (with
 * `checkHttpLimits` as its refinement); a service may override a field's default.
 */
export const httpLimitFields = {
  /** Largest request body, in bytes (413 beyond). */
  bodyLimitBytes: positiveInt.default(1_048_576),
  /** Time a client has to send the request's headers (408 and the socket closed after). */
  headersTimeoutMs: positiveInt.default(10_000),
  /** Time a client has to send the whole request, headers and body (408 and closed after). */
  requestTimeoutMs: positiveInt.default(30_000),
  /** How long an idle keep-alive connection is kept (fastify's default: peers such as routers reuse theirs). */
  keepAliveTimeoutMs: positiveInt.default(72_000),
  /** Connections open at once (WebSocket links included); a new one beyond is closed at once. */
  maxConnections: positiveInt.default(1_024),
  /** Longest path parameter (a model id, an epoch); a longer one is an unknown route (404). */
  maxParamLength: positiveInt.max(4_096).default(128),
};

export type HttpLimits = { [K in keyof typeof httpLimitFields]: z.output<(typeof httpLimitFields)[K]> };

/** The refinement of an object holding `httpLimitFields`: the whole request cannot have less time than its headers. */
export function checkHttpLimits(limits: Pick<HttpLimits, "headersTimeoutMs" | "requestTimeoutMs">, ctx: z.RefinementCtx): void {
  if (limits.headersTimeoutMs > limits.requestTimeoutMs)
    ctx.addIssue({
      code: "custom",
      message: `headersTimeoutMs (${limits.headersTimeoutMs}) must not exceed requestTimeoutMs (${limits.requestTimeoutMs})`,
      path: ["headersTimeoutMs"],
    });
}

/** How often, at most, connections closed over the cap are logged (with their count). */
const DROP_LOG_INTERVAL_MS = 10_000;

/**
 * Fastify options for a service: its HTTP server with `limits` (see the header), a random
 * request id per request (`request.id`, what a 500 names), and 503 for requests that arrive
 * while it closes.
 */
export function hardenedServerOptions(limits: HttpLimits, logger: Pick<Logger, "warn">) {
  return {
    bodyLimit: limits.bodyLimitBytes,
    routerOptions: { maxParamLength: limits.maxParamLength },
    genReqId: () => randomUUID(),
    return503OnClosing: true,
    serverFactory: (handler: (request: IncomingMessage, response: ServerResponse) => void): Server => {
      const server = createServer(
        {
          headersTimeout: limits.headersTimeoutMs,
          requestTimeout: limits.requestTimeoutMs,
          keepAliveTimeout: limits.keepAliveTimeoutMs,
          // Node checks both timeouts on this period (30 s by default): a fraction of the
          // shorter one, so a slow client is cut off close to its deadline.
          connectionsCheckingInterval: Math.max(25, Math.min(1_000, Math.floor(limits.headersTimeoutMs / 4))),
        },
        handler,
      );
      server.maxConnections = limits.maxConnections;
      let dropped = 0;
      let loggedAt = -Infinity;
      server.on("drop", () => {
        dropped += 1;
        if (performance.now() - loggedAt < DROP_LOG_INTERVAL_MS) return;
        logger.warn({ dropped, maxConnections: limits.maxConnections }, "connections over the cap closed unread");
        dropped = 0;
        loggedAt = performance.now();
      });
      // Node's header timeout starts with the first byte: a connection that sends none would
      // hold its place under the cap for good.
      server.on("connection", (socket: Socket) => {
        const timer = setTimeout(() => {
          if (socket.bytesRead === 0) socket.destroy();
        }, limits.headersTimeoutMs);
        socket.once("close", () => clearTimeout(timer));
      });
      return server;
    },
  } satisfies FastifyServerOptions;
}
