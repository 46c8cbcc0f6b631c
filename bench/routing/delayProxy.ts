// A TCP proxy that delays every byte by a fixed one-way time in each direction, so whatever talks
// through it sees a round trip of 2 × `oneWayMs` added: the routing benchmark puts one in front of
// each edge (the edge registers the proxy's URL as its endpoint) to give the loopback network
// regions at different distances from the router, and the router's own RTT probes measure them.
//
// Bytes keep their order per connection and direction (a constant delay cannot reorder them).
// Chunks that arrive while a delivery is pending join a queue; ONE timer per direction fires at
// the head's due time and delivers every chunk due by then, so a fast stream costs a timer per
// batch of chunks, not per chunk. The end of a stream is delivered like a chunk, after the bytes
// before it; a reset (the edge killed) closes the other side after the same delay, as a real
// network would show it. Importing this file runs nothing.
import net from "node:net";
import type { AddressInfo } from "node:net";

export interface DelayProxyOptions {
  /** Where connections go. */
  target: { host: string; port: number };
  /** Added to each direction (ms); 0 forwards at once. */
  oneWayMs: number;
  /** Port to listen on (default: a free one), on 127.0.0.1. */
  port?: number;
}

export interface DelayProxy {
  /** http://127.0.0.1:<port> */
  url: string;
  port: number;
  /** Connections accepted so far. */
  connections(): number;
  close(): Promise<void>;
}

type Delivery = { at: number; chunk: Buffer } | { at: number; end: "end" | "reset" };

/** Forwards `from` to `to` `oneWayMs` later, in order; the end or a reset of `from` follows the bytes. */
function delayedPipe(from: net.Socket, to: net.Socket, oneWayMs: number): void {
  const queue: Delivery[] = [];
  let timer: NodeJS.Timeout | undefined;
  let finished = false;

  const deliver = () => {
    timer = undefined;
    const now = performance.now();
    while (queue.length > 0 && queue[0]!.at <= now) {
      const item = queue.shift()!;
      if ("chunk" in item) {
        if (!to.destroyed) to.write(item.chunk);
      } else if (item.end === "end") to.end();
      else to.resetAndDestroy();
    }
    if (queue.length > 0) timer = setTimeout(deliver, queue[0]!.at - now);
  };
  const push = (item: Delivery) => {
    queue.push(item);
    if (timer === undefined) timer = setTimeout(deliver, Math.max(0, item.at - performance.now()));
  };
  const finish = (end: "end" | "reset") => {
    if (finished) return;
    finished = true;
    push({ at: performance.now() + oneWayMs, end });
  };
  from.on("data", (chunk: Buffer) => push({ at: performance.now() + oneWayMs, chunk }));
  from.on("end", () => finish("end"));
  from.on("error", () => finish("reset"));
  from.on("close", (hadError) => finish(hadError ? "reset" : "end"));
  // The receiving side went away first: nothing more can be delivered to it.
  to.on("close", () => {
    clearTimeout(timer);
    queue.length = 0;
  });
}

/** Starts a delay proxy in front of `options.target`. */
export async function startDelayProxy(options: DelayProxyOptions): Promise<DelayProxy> {
  const sockets = new Set<net.Socket>();
  let accepted = 0;
  const server = net.createServer({ allowHalfOpen: true }, (client) => {
    accepted += 1;
    const upstream = net.connect({ port: options.target.port, host: options.target.host, allowHalfOpen: true });
    for (const socket of [client, upstream]) {
      socket.setNoDelay(true);
      sockets.add(socket);
      socket.on("close", () => sockets.delete(socket));
    }
    delayedPipe(client, upstream, options.oneWayMs);
    delayedPipe(upstream, client, options.oneWayMs);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    connections: () => accepted,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
