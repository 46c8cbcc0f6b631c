// Readiness probes for the supervisor: each resolves true once a service answers, false while it
// does not (never throws), so that `waitUntil` can poll it.
import net from "node:net";

/** Polls `probe` every `intervalMs` until it resolves true (→ true) or `timeoutMs` passes (→ false). */
export async function waitUntil(probe: () => Promise<boolean>, timeoutMs: number, intervalMs = 200): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await probe()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** GET `url` answers with one of `statuses` (a verifier's /health says 503 before its first tick: it is up). */
export function httpReady(url: string, statuses: readonly number[] = [200]): () => Promise<boolean> {
  return async () => {
    try {
      return statuses.includes((await fetch(url, { signal: AbortSignal.timeout(2_000) })).status);
    } catch {
      return false;
    }
  };
}

/** A Redis server on host:port answers PING with PONG (not LOADING while it replays its AOF). */
export function redisReady(host: string, port: number): () => Promise<boolean> {
  return () =>
    new Promise((resolve) => {
      const socket = net.connect({ host, port });
      let reply = "";
      const done = (ok: boolean) => {
        socket.destroy();
        resolve(ok);
      };
      socket.setTimeout(1_000, () => done(false));
      socket.once("error", () => done(false));
      socket.once("connect", () => socket.write("PING\r\n"));
      socket.on("data", (d: Buffer) => {
        reply += d.toString();
        if (reply.includes("\r\n")) done(reply.startsWith("+PONG"));
      });
    });
}

/** The chain id a JSON-RPC node at `url` serves, or undefined when nothing answers. */
export async function rpcChainId(url: string): Promise<bigint | undefined> {
  try {
    const response = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_chainId", params: [] }),
      signal: AbortSignal.timeout(2_000),
    });
    const body = (await response.json()) as { result?: string };
    return body.result === undefined ? undefined : BigInt(body.result);
  } catch {
    return undefined;
  }
}

/** A JSON-RPC node answers eth_chainId at `url`. */
export function rpcReady(url: string): () => Promise<boolean> {
  return async () => (await rpcChainId(url)) !== undefined;
}

/** Resolves true when nothing listens on host:port. */
export function portIsFree(port: number, host = "127.0.0.1"): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once("error", () => resolve(false));
    server.once("listening", () => server.close(() => resolve(true)));
    server.listen(port, host);
  });
}

/** Ports handed out by this process (never twice). */
const handedOut = new Set<number>();
const PORT_RANGE = { from: 20_000, size: 12_000 };

/**
 * A free TCP port on loopback, for a service whose address must be known before it starts. It is
 * drawn at random below the kernel's ephemeral range (32768–60999 on Linux): the port bind(0)
 * gives is an ephemeral one, which any outgoing connection on the machine may take before the
 * service binds it (a test run full of processes saw exactly that, EADDRINUSE).
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = PORT_RANGE.from + Math.floor(Math.random() * PORT_RANGE.size);
    if (handedOut.has(port) || !(await portIsFree(port, "127.0.0.1"))) continue;
    handedOut.add(port);
    return port;
  }
  throw new Error(`no free TCP port found between ${PORT_RANGE.from} and ${PORT_RANGE.from + PORT_RANGE.size} on 127.0.0.1`);
}

/** The ports of `ports` ([port, what listens there]) already in use on `host`, described; a JSON-RPC node on `rpcPort` is named as such. */
export async function portsInUse(ports: ReadonlyArray<[number, string]>, host: string, rpcPort: number): Promise<string[]> {
  const taken = [];
  for (const [port, what] of ports)
    if (!(await portIsFree(port, host)))
      taken.push(
        `${port} (${what}${port === rpcPort && (await rpcChainId(`http://${host}:${port}`)) !== undefined ? ": a JSON-RPC node, probably another `npm start` or `hardhat node`" : ""})`,
      );
  return taken;
}
