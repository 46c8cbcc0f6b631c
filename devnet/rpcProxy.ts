// A JSON-RPC proxy in front of a node, for tests and benchmarks: it counts what passes (HTTP
// requests, and JSON-RPC calls by method, each element of a batch counted as one call), and it
// can fail every call for a while, refuse to forward raw transactions, or forward one and lose its
// answer; it records the hash of every raw transaction it forwarded. Importing this file runs
// nothing.
import { createServer, request as httpRequest } from "node:http";
import type { AddressInfo } from "node:net";

import { keccak256 } from "viem";
import type { Hex } from "viem";

/** What a proxy has forwarded so far. */
export interface RpcCounts {
  /** HTTP requests received (a batch is one). */
  httpRequests: number;
  /** JSON-RPC calls received (each element of a batch is one). */
  calls: number;
  /** Calls by method. */
  byMethod: Record<string, number>;
}

export interface RpcProxy {
  url: string;
  /** Answers HTTP 503 to every call until `Date.now() + ms` (Infinity: until `heal()`). */
  failFor(ms: number): void;
  heal(): void;
  /** Answers an error to eth_sendRawTransaction without forwarding it. */
  dropRawTransactions: boolean;
  /** Forwards the next `n` raw transactions but answers 503 (the answer is lost), then fails everything for `thenFailMs`. */
  loseRawTransactionAnswers(n: number, thenFailMs: number): void;
  /** Hashes of the raw transactions forwarded to the chain, in order. */
  readonly forwardedTxs: Hex[];
  /** eth_sendRawTransaction calls received (forwarded or not). */
  readonly rawTxCalls: number;
  /** Calls answered with an injected failure. */
  readonly failedCalls: number;
  /** A copy of the counts so far (take two and subtract for a window). */
  counts(): RpcCounts;
  close(): Promise<void>;
}

function forward(target: URL, body: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(target, { method: "POST", headers: { "content-type": "application/json" } }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 500, body: Buffer.concat(chunks).toString("utf8") }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(body);
  });
}

/** The counts of `later` minus those of `earlier`: what passed between the two. */
export function countsBetween(earlier: RpcCounts, later: RpcCounts): RpcCounts {
  const byMethod: Record<string, number> = {};
  for (const [method, n] of Object.entries(later.byMethod)) {
    const d = n - (earlier.byMethod[method] ?? 0);
    if (d > 0) byMethod[method] = d;
  }
  return { httpRequests: later.httpRequests - earlier.httpRequests, calls: later.calls - earlier.calls, byMethod };
}

type Call = { method?: unknown; params?: unknown[]; id?: unknown };

/** Starts a JSON-RPC proxy to `targetUrl`. */
export async function startRpcProxy(targetUrl: string): Promise<RpcProxy> {
  const target = new URL(targetUrl);
  let failUntil = 0;
  let loseAnswers = 0;
  let failAfterLost = 0;
  let rawTxCalls = 0;
  let failedCalls = 0;
  const forwardedTxs: Hex[] = [];
  const state = { dropRawTransactions: false };
  const tally: RpcCounts = { httpRequests: 0, calls: 0, byMethod: {} };

  function count(parsed: unknown): void {
    tally.httpRequests++;
    for (const call of Array.isArray(parsed) ? parsed : [parsed]) {
      tally.calls++;
      const method = typeof (call as Call | null)?.method === "string" ? ((call as Call).method as string) : "(invalid)";
      tally.byMethod[method] = (tally.byMethod[method] ?? 0) + 1;
    }
  }

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      void (async () => {
        const body = Buffer.concat(chunks).toString("utf8");
        let parsed: unknown;
        try {
          parsed = JSON.parse(body);
        } catch {
          // forwarded as is: the node answers the parse error
        }
        count(parsed);
        const fail = () => {
          failedCalls++;
          res.writeHead(503, { "content-type": "text/plain" }).end("injected outage");
        };
        if (Date.now() < failUntil) return fail();
        const call = (Array.isArray(parsed) ? {} : (parsed ?? {})) as Call;
        if (call.method === "eth_sendRawTransaction") {
          rawTxCalls++;
          if (state.dropRawTransactions) return fail();
          const raw = (call.params?.[0] ?? "0x") as Hex;
          const answer = await forward(target, body);
          forwardedTxs.push(keccak256(raw));
          if (loseAnswers > 0) {
            loseAnswers--;
            failUntil = Date.now() + failAfterLost;
            return fail();
          }
          res.writeHead(answer.status, { "content-type": "application/json" }).end(answer.body);
          return;
        }
        try {
          const answer = await forward(target, body);
          res.writeHead(answer.status, { "content-type": "application/json" }).end(answer.body);
        } catch {
          fail();
        }
      })();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    failFor(ms: number) {
      failUntil = Date.now() + ms;
    },
    heal() {
      failUntil = 0;
    },
    get dropRawTransactions() {
      return state.dropRawTransactions;
    },
    set dropRawTransactions(v: boolean) {
      state.dropRawTransactions = v;
    },
    loseRawTransactionAnswers(n: number, thenFailMs: number) {
      loseAnswers = n;
      failAfterLost = thenFailMs;
    },
    forwardedTxs,
    get rawTxCalls() {
      return rawTxCalls;
    },
    get failedCalls() {
      return failedCalls;
    },
    counts: () => ({ ...tally, byMethod: { ...tally.byMethod } }),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
