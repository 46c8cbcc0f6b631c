// The edge's persistent OUTBOUND WebSocket to the router (protocol in lib/protocol/routerLink.ts).
// Dialling out lets an edge behind NAT serve: the router multiplexes HTTP requests over the
// socket and the link replays each as a REAL HTTP request to the edge's own API on loopback, so
// the same handler, payment checks, metering, receipts and usage log apply as for a direct
// client. Responses stream back chunk by chunk as they arrive (server-sent events pass live).
//
// Robustness: every frame is zod-validated and a bad one is logged and ignored; the link
// reconnects with exponential backoff and full jitter (capped), detects a dead peer by ping/pong,
// and aborts the proxied requests of a socket that closed (their client is gone with it).
import WebSocket from "ws";
import type { RawData } from "ws";
import type { Logger } from "pino";
import type { LocalAccount, TypedDataDomain } from "viem";

import { limitRepeats } from "../../lib/logging.ts";
import { signRouterHello } from "../../lib/protocol/edgeProofs.ts";
import {
  encodeFrame,
  loadReportSchema,
  parseRouterMessage,
  type EdgeMessage,
  type LoadReport,
  type ProxyRequest,
} from "../../lib/protocol/routerLink.ts";
import type { EdgeMetrics } from "../metrics.ts";

export type { LoadReport } from "../../lib/protocol/routerLink.ts";

export interface RouterLinkOptions {
  /** The router's WebSocket URL (ws:// or wss://). */
  url: string;
  /** The edge's registered signing key: signs the handshake. */
  account: LocalAccount;
  /** {edgeDomain}(chainId, registry): the domain the handshake is signed in. */
  domain: TypedDataDomain;
  edgeId: bigint;
  /** Base URL of the edge's own API on loopback, e.g. `http://127.0.0.1:8080`. */
  localApi: string;
  /** Current load, reported every `reportIntervalMs`. */
  load: () => LoadReport;
  reportIntervalMs?: number;
  /** Ping period; a peer that has not answered the previous ping by the next is dropped. */
  pingIntervalMs?: number;
  /** First reconnect delay; doubles per failed attempt up to `maxBackoffMs`, with full jitter. */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  /** How long the router may take from connect to `welcome`. */
  handshakeTimeoutMs?: number;
  /** Repeats of one socket error within this window are logged as one summary line; default 60 s. */
  repeatWindowMs?: number;
  /**
   * Largest frame accepted from the router (default 16 MiB: a relayed request carries a body the
   * router let through, 1 MiB by default, with its envelope). A larger one closes the link (1009),
   * which then dials again, instead of being buffered whole (ws's own limit is 100 MiB).
   */
  maxFrameBytes?: number;
  logger: Logger;
  metrics: Pick<EdgeMetrics, "routerConnected">;
}

export interface RouterLink {
  /** Starts dialling the router (and re-dialling whenever the socket drops). */
  start(): void;
  /** Stops for good: aborts proxied requests, closes the socket, clears timers. */
  close(): Promise<void>;
  /** Whether the router has welcomed this edge on the current socket. */
  connected(): boolean;
}

/** Hop-by-hop headers (RFC 9110 §7.6.1) and ones fetch computes itself: never forwarded. */
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
  "te",
  "trailer",
  "host",
  "content-length",
]);
/** fetch decodes compressed bodies, so the encoding no longer describes what is forwarded. */
const DROP_FROM_RESPONSE = new Set([...HOP_BY_HOP, "content-encoding"]);
/** Pause reading the upstream body while this much is queued on the socket. */
const MAX_BUFFERED = 4 * 1024 * 1024;

function filterHeaders(headers: Iterable<[string, string]>, drop: Set<string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of headers) if (!drop.has(name.toLowerCase())) out[name.toLowerCase()] = value;
  return out;
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message.split("\n")[0] : String(err);
}

/**
 * Creates the router link. Nothing connects until {RouterLink.start}.
 */
export function createRouterLink(options: RouterLinkOptions): RouterLink {
  const { url, account, domain, edgeId, load, logger, metrics } = options;
  const reportIntervalMs = options.reportIntervalMs ?? 1_000;
  const pingIntervalMs = options.pingIntervalMs ?? 15_000;
  const initialBackoffMs = options.initialBackoffMs ?? 500;
  const maxBackoffMs = options.maxBackoffMs ?? 30_000;
  const handshakeTimeoutMs = options.handshakeTimeoutMs ?? 10_000;
  const origin = new URL(options.localApi).origin;
  // While the router is down every reconnect attempt fails the same way: one line per window, not per attempt.
  const repeats = limitRepeats(logger, { windowMs: options.repeatWindowMs });

  let ws: WebSocket | undefined;
  let welcomed = false;
  let closed = false;
  let started = false;
  let attempt = 0;
  let reconnectTimer: NodeJS.Timeout | undefined;
  let reportTimer: NodeJS.Timeout | undefined;
  let pingTimer: NodeJS.Timeout | undefined;
  let handshakeTimer: NodeJS.Timeout | undefined;
  /** Proxied requests in flight on the current socket, by the router's id. */
  const inFlight = new Map<string, AbortController>();

  function send(socket: WebSocket, message: EdgeMessage): boolean {
    if (socket.readyState !== WebSocket.OPEN) return false;
    socket.send(encodeFrame(message));
    return true;
  }

  function clearSocketTimers(): void {
    for (const t of [reportTimer, pingTimer, handshakeTimer]) if (t !== undefined) clearInterval(t);
    reportTimer = pingTimer = handshakeTimer = undefined;
  }

  function scheduleReconnect(): void {
    if (closed) return;
    // Full jitter: a router restart must not be met by every edge at the same instant.
    const cap = Math.min(maxBackoffMs, initialBackoffMs * 2 ** Math.min(attempt, 30));
    const delay = Math.round(cap / 2 + Math.random() * (cap / 2));
    attempt++;
    logger.info({ event: "router-reconnect", attempt, delayMs: delay }, "reconnecting to the router");
    reconnectTimer = setTimeout(() => {
      reconnectTimer = undefined;
      connect();
    }, delay);
  }

  function onWelcome(socket: WebSocket): void {
    welcomed = true;
    attempt = 0;
    if (handshakeTimer !== undefined) clearTimeout(handshakeTimer);
    handshakeTimer = undefined;
    metrics.routerConnected.set({ router: url }, 1);
    logger.info({ event: "router-connected", url }, "router link up");
    const report = () => {
      try {
        const frame = loadReportSchema.safeParse({ type: "load", ...load(), at: Date.now() });
        if (frame.success) send(socket, frame.data);
        else
          logger.warn(
            { event: "router-load-invalid", issue: frame.error.issues[0]?.message },
            "load report refused by its schema; not sent",
          );
      } catch (err) {
        logger.warn({ event: "router-load-failed", err: errorMessage(err) }, "taking the load report failed");
      }
    };
    report();
    reportTimer = setInterval(report, reportIntervalMs);
  }

  async function proxy(socket: WebSocket, request: ProxyRequest): Promise<void> {
    const { id } = request;
    const controller = new AbortController();
    inFlight.set(id, controller);
    try {
      const target = new URL(`${origin}${request.path}`);
      if (target.origin !== origin) throw new Error("path leaves the local API");
      const response = await fetch(target, {
        method: request.method,
        headers: filterHeaders(Object.entries(request.headers), HOP_BY_HOP),
        body: request.method === "GET" || request.method === "HEAD" ? undefined : request.body,
        signal: controller.signal,
      });
      send(socket, {
        type: "response-head",
        id,
        status: response.status,
        headers: filterHeaders(response.headers.entries(), DROP_FROM_RESPONSE),
      });
      if (response.body !== null) {
        const decoder = new TextDecoder();
        for await (const chunk of response.body) {
          const data = decoder.decode(chunk, { stream: true });
          if (data.length > 0) send(socket, { type: "response-chunk", id, data });
          while (socket.bufferedAmount > MAX_BUFFERED && socket.readyState === WebSocket.OPEN && !controller.signal.aborted) {
            await new Promise((resolve) => setTimeout(resolve, 5));
          }
        }
        const tail = decoder.decode();
        if (tail.length > 0) send(socket, { type: "response-chunk", id, data: tail });
      }
      send(socket, { type: "response-end", id });
    } catch (err) {
      // A cancelled request's router already dropped it; anything else is reported.
      if (!controller.signal.aborted) {
        logger.warn({ event: "router-proxy-failed", id, path: request.path, err: errorMessage(err) }, "proxied request failed");
        send(socket, { type: "response-error", id, message: errorMessage(err) });
      }
    } finally {
      if (inFlight.get(id) === controller) inFlight.delete(id);
    }
  }

  async function onMessage(socket: WebSocket, raw: RawData, isBinary: boolean): Promise<void> {
    // Frames still arriving on a socket that close() or a reconnect has let go of must not
    // start timers or requests: nothing would ever stop them.
    if (closed || socket !== ws) return;
    if (isBinary) {
      logger.warn({ event: "router-frame-invalid", error: "binary frame" }, "ignored a frame from the router");
      return;
    }
    const parsed = parseRouterMessage(raw.toString());
    if (!parsed.ok) {
      logger.warn({ event: "router-frame-invalid", error: parsed.error }, "ignored a frame from the router");
      return;
    }
    const message = parsed.message;
    switch (message.type) {
      case "hello-challenge": {
        const signature = await signRouterHello(account, domain, { edgeId, nonce: message.nonce });
        send(socket, { type: "hello", edgeId: edgeId.toString(), nonce: message.nonce, signature });
        return;
      }
      case "welcome":
        if (!welcomed && !closed && socket === ws) onWelcome(socket);
        return;
      case "request":
        if (!welcomed) {
          logger.warn({ event: "router-frame-invalid", error: "request before welcome" }, "ignored a frame from the router");
          return;
        }
        if (inFlight.has(message.id)) {
          logger.warn({ event: "router-frame-invalid", error: "duplicate request id", id: message.id }, "ignored a frame from the router");
          return;
        }
        void proxy(socket, message);
        return;
      case "cancel": {
        const controller = inFlight.get(message.id);
        if (controller !== undefined) {
          controller.abort();
          inFlight.delete(message.id);
          logger.debug({ event: "router-cancel", id: message.id }, "proxied request cancelled");
        }
        return;
      }
    }
  }

  function connect(): void {
    if (closed) return;
    const socket = new WebSocket(url, { handshakeTimeout: handshakeTimeoutMs, maxPayload: options.maxFrameBytes ?? 16 * 1_048_576 });
    ws = socket;
    let alive = true;
    socket.on("open", () => {
      logger.debug({ event: "router-open", url }, "router socket open; awaiting the challenge");
      handshakeTimer = setTimeout(() => {
        logger.warn({ event: "router-handshake-timeout", ms: handshakeTimeoutMs }, "router did not welcome the edge in time");
        socket.terminate();
      }, handshakeTimeoutMs);
      pingTimer = setInterval(() => {
        if (!alive) {
          logger.warn({ event: "router-dead", ms: pingIntervalMs }, "router did not answer a ping; dropping the socket");
          socket.terminate();
          return;
        }
        alive = false;
        socket.ping();
      }, pingIntervalMs);
    });
    socket.on("pong", () => {
      alive = true;
    });
    socket.on("message", (raw, isBinary) => {
      alive = true;
      onMessage(socket, raw, isBinary).catch((err: unknown) =>
        repeats.log("error", "handling a router frame failed", new Error(errorMessage(err)), { event: "router-frame-failed" }),
      );
    });
    socket.on("error", (err) => {
      repeats.log("warn", "router socket error", new Error(errorMessage(err)), { event: "router-socket-error" });
    });
    socket.on("close", (code) => {
      if (ws !== socket) return;
      ws = undefined;
      const wasWelcomed = welcomed;
      welcomed = false;
      clearSocketTimers();
      metrics.routerConnected.set({ router: url }, 0);
      for (const controller of inFlight.values()) controller.abort();
      inFlight.clear();
      if (wasWelcomed) logger.warn({ event: "router-disconnected", code }, "router link down");
      scheduleReconnect();
    });
  }

  return {
    start() {
      if (started) return;
      started = true;
      connect();
    },
    async close() {
      closed = true;
      if (reconnectTimer !== undefined) clearTimeout(reconnectTimer);
      reconnectTimer = undefined;
      clearSocketTimers();
      repeats.close();
      for (const controller of inFlight.values()) controller.abort();
      inFlight.clear();
      const socket = ws;
      ws = undefined;
      welcomed = false;
      metrics.routerConnected.set({ router: url }, 0);
      if (socket === undefined || socket.readyState === WebSocket.CLOSED) return;
      await new Promise<void>((resolve) => {
        socket.once("close", () => resolve());
        if (socket.readyState === WebSocket.CONNECTING) socket.terminate();
        else socket.close(1000, "edge shutting down");
        // A peer that never answers the close frame: do not hang shutdown on it.
        setTimeout(() => socket.terminate(), 1_000).unref();
      });
    },
    connected() {
      return welcomed && ws?.readyState === WebSocket.OPEN;
    },
  };
}
