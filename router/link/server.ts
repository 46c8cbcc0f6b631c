// The router's end of the edge link (protocol: lib/protocol/routerLink.ts). An edge, typically
// behind NAT, dials in; the router challenges it with a fresh nonce, and welcomes it only if the
// RouterHello signature recovers to the signing key the EdgeRegistry holds for that edge and the
// edge is Active. The nonce is fresh per socket, so a recorded hello replayed on another socket
// fails. A welcomed link is a transport like HTTP (router/dispatch/transport.ts): requests are
// multiplexed over it by id, responses stream back as chunks; its load reports go to `onLoad`.
//
// An edge linked twice (a reconnect racing the old socket's close) keeps only the newer socket.
// A socket that closes fails its requests in flight with a TransportError, so failover takes
// over at once; a peer that stops answering pings is dropped.
import { randomBytes, randomUUID } from "node:crypto";
import type { IncomingMessage, Server } from "node:http";
import type { Duplex } from "node:stream";

import type { Logger } from "pino";
import type { Hex, TypedDataDomain } from "viem";
import { WebSocketServer } from "ws";
import type { RawData, WebSocket } from "ws";

import { recoverRouterHelloSigner } from "../../lib/protocol/edgeProofs.ts";
import { encodeFrame, parseEdgeMessage } from "../../lib/protocol/routerLink.ts";
import type { LoadMessage, RouterMessage } from "../../lib/protocol/routerLink.ts";
import type { DirectoryEdge } from "../chain/directory.ts";
import { TransportError } from "../dispatch/transport.ts";
import type { EdgeTransport, UpstreamResponse } from "../dispatch/transport.ts";

/** Where edges connect. */
export const LINK_PATH = "/tideway/v1/link";

export interface LinkServerOptions {
  /** {edgeDomain}(chainId, registry): the domain hellos are signed in. */
  domain: TypedDataDomain;
  /** The directory's record of an edge (signing key, status). */
  edge: (edgeId: bigint) => DirectoryEdge | undefined;
  logger: Logger;
  onLoad: (edgeId: bigint, load: LoadMessage) => void;
  onConnect: (edgeId: bigint, transport: EdgeTransport) => void;
  onDisconnect: (edgeId: bigint, transport: EdgeTransport) => void;
  handshakeTimeoutMs?: number;
  pingIntervalMs?: number;
  /** Largest frame an edge may send; a larger one closes its socket (1009). Default 1 MiB. */
  maxFrameBytes?: number;
}

export interface LinkServer {
  /** Attaches to `server`'s upgrade requests on LINK_PATH. */
  attach(server: Server): void;
  /** Edges linked now. */
  linked(): bigint[];
  /** Drops the link of `edgeId` (its edge left the active set). */
  drop(edgeId: bigint, reason: string): void;
  close(): Promise<void>;
}

interface Pending {
  push(chunk: string): void;
  end(error?: Error): void;
  head(status: number, headers: Record<string, string>): void;
  fail(error: Error): void;
}

/** An async iterable fed by pushes (the body of one multiplexed response). */
function chunkQueue() {
  const chunks: string[] = [];
  let done = false;
  let error: Error | undefined;
  let wake: (() => void) | undefined;
  return {
    push(chunk: string) {
      chunks.push(chunk);
      wake?.();
    },
    end(err?: Error) {
      done = true;
      error = err;
      wake?.();
    },
    async *iterate(): AsyncGenerator<string> {
      for (;;) {
        if (chunks.length > 0) {
          yield chunks.shift()!;
          continue;
        }
        if (done) {
          if (error !== undefined) throw error;
          return;
        }
        await new Promise<void>((r) => {
          wake = r;
        });
        wake = undefined;
      }
    },
  };
}

export function createLinkServer(options: LinkServerOptions): LinkServer {
  const { logger } = options;
  const wss = new WebSocketServer({ noServer: true, maxPayload: options.maxFrameBytes ?? 1_048_576 });
  const links = new Map<bigint, { socket: WebSocket; transport: EdgeTransport; pending: Map<string, Pending> }>();
  const handshakeTimeoutMs = options.handshakeTimeoutMs ?? 10_000;
  const pingIntervalMs = options.pingIntervalMs ?? 15_000;

  function welcome(socket: WebSocket, edgeId: bigint): void {
    const pending = new Map<string, Pending>();
    const send = (message: RouterMessage) => socket.send(encodeFrame(message));
    const transport: EdgeTransport = {
      kind: "link",
      send(request) {
        return new Promise<UpstreamResponse>((resolve, reject) => {
          if (socket.readyState !== socket.OPEN) {
            reject(new TransportError(`edge ${edgeId}'s link is closed`));
            return;
          }
          const id = randomUUID();
          const body = chunkQueue();
          let headed = false;
          const finish = () => {
            pending.delete(id);
            request.signal.removeEventListener("abort", onAbort);
          };
          const onAbort = () => {
            if (socket.readyState === socket.OPEN) send({ type: "cancel", id });
            const err = new TransportError("request aborted");
            if (!headed) reject(err);
            body.end(err);
            finish();
          };
          pending.set(id, {
            head(status, headers) {
              headed = true;
              resolve({ status, headers, body: body.iterate() });
            },
            push: (chunk) => body.push(chunk),
            end(error) {
              body.end(error);
              finish();
            },
            fail(error) {
              if (!headed) reject(error);
              body.end(error);
              finish();
            },
          });
          request.signal.addEventListener("abort", onAbort, { once: true });
          send({ type: "request", id, method: request.method, path: request.path, headers: request.headers, body: request.body });
        });
      },
    };
    const previous = links.get(edgeId);
    if (previous !== undefined) previous.socket.close(4000, "replaced by a newer link");
    links.set(edgeId, { socket, transport, pending });
    send({ type: "welcome" });
    options.onConnect(edgeId, transport);
    logger.info({ edgeId: edgeId.toString() }, "edge linked");

    let alive = true;
    const ping = setInterval(() => {
      if (!alive) {
        logger.warn({ edgeId: edgeId.toString() }, "edge link did not answer a ping; dropping it");
        socket.terminate();
        return;
      }
      alive = false;
      socket.ping();
    }, pingIntervalMs);
    socket.on("pong", () => {
      alive = true;
    });
    socket.on("message", (raw: RawData) => {
      const parsed = parseEdgeMessage(raw.toString());
      if (!parsed.ok) {
        logger.warn({ edgeId: edgeId.toString(), error: parsed.error }, "bad frame from edge; ignored");
        return;
      }
      const m = parsed.message;
      switch (m.type) {
        case "load":
          options.onLoad(edgeId, m);
          return;
        case "response-head":
          pending.get(m.id)?.head(m.status, m.headers);
          return;
        case "response-chunk":
          pending.get(m.id)?.push(m.data);
          return;
        case "response-end":
          pending.get(m.id)?.end();
          return;
        case "response-error":
          pending.get(m.id)?.fail(new TransportError(`edge ${edgeId} failed the request: ${m.message}`));
          return;
        default:
          logger.warn({ edgeId: edgeId.toString(), type: m.type }, "unexpected frame from a welcomed edge; ignored");
      }
    });
    socket.on("close", () => {
      clearInterval(ping);
      const error = new TransportError(`edge ${edgeId}'s link closed`);
      for (const p of [...pending.values()]) p.fail(error);
      if (links.get(edgeId)?.socket === socket) {
        links.delete(edgeId);
        options.onDisconnect(edgeId, transport);
        logger.info({ edgeId: edgeId.toString() }, "edge link closed");
      }
    });
  }

  function handshake(socket: WebSocket): void {
    // A frame over the size limit, a protocol violation or a reset: ws closes the socket and
    // reports it here (without a listener, the error would take the router down).
    socket.on("error", (err) => logger.warn({ err: err.message }, "edge link failed; closed"));
    const nonce = `0x${randomBytes(32).toString("hex")}` as Hex;
    const timer = setTimeout(() => socket.close(4008, "no hello in time"), handshakeTimeoutMs);
    socket.once("message", async (raw: RawData) => {
      clearTimeout(timer);
      const parsed = parseEdgeMessage(raw.toString());
      if (!parsed.ok || parsed.message.type !== "hello") {
        socket.close(4002, "expected a hello frame");
        return;
      }
      const hello = parsed.message;
      const edgeId = BigInt(hello.edgeId);
      const record = options.edge(edgeId);
      if (hello.nonce.toLowerCase() !== nonce) {
        logger.warn({ edgeId: hello.edgeId }, "edge hello refused: it signs another nonce (a replayed hello?)");
        socket.close(4003, "hello signs another nonce");
        return;
      }
      let signer: string;
      try {
        signer = await recoverRouterHelloSigner(options.domain, { edgeId, nonce }, hello.signature);
      } catch {
        signer = "";
      }
      if (record === undefined || signer.toLowerCase() !== record.signingKey.toLowerCase()) {
        logger.warn({ edgeId: hello.edgeId }, "edge hello refused: not signed by the edge's registered key");
        socket.close(4003, "hello not signed by the edge's registered signing key");
        return;
      }
      if (record.status !== "Active") {
        logger.warn({ edgeId: hello.edgeId, status: record.status }, "edge hello refused: edge is not active");
        socket.close(4004, `edge is ${record.status}, not Active`);
        return;
      }
      welcome(socket, edgeId);
    });
    socket.send(encodeFrame({ type: "hello-challenge", nonce }));
  }

  wss.on("connection", handshake);

  return {
    attach(server) {
      server.on("upgrade", (request: IncomingMessage, socket: Duplex, head: Buffer) => {
        const path = (request.url ?? "").split("?")[0];
        if (path !== LINK_PATH) {
          socket.destroy();
          return;
        }
        wss.handleUpgrade(request, socket, head, (ws) => wss.emit("connection", ws, request));
      });
    },
    linked: () => [...links.keys()],
    drop(edgeId, reason) {
      links.get(edgeId)?.socket.close(4004, reason);
    },
    async close() {
      for (const { socket } of links.values()) socket.close(1001, "router shutting down");
      await new Promise<void>((r) => wss.close(() => r()));
    },
  };
}
