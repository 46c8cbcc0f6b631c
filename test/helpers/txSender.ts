// Test tools for the verifier's transaction sender (test/services/verifier/sender.test.ts):
// - `startRpcProxy(target)`: an HTTP JSON-RPC proxy in front of the chain bridge that can fail
//   every call for a while, refuse to forward raw transactions, or forward one and lose its answer;
//   it records the hash of every raw transaction it forwarded.
// - `transferAction(...)`: a logical action for the sender (an EdgeToken transfer; done when the
//   recipient holds the amount).
// - `startSenderChild(...)` / `runSenderChild()`: a sender in a child process, to kill -9 mid-send.
// Importing this file runs nothing.
import { type ChildProcess, spawn } from "node:child_process";
import { createServer, request as httpRequest } from "node:http";
import type { AddressInfo } from "node:net";
import { pathToFileURL } from "node:url";

import { Redis } from "ioredis";
import { pino } from "pino";
import { createPublicClient, createWalletClient, encodeFunctionData, http, keccak256 } from "viem";
import type { Account, Address, Chain, Hex, PublicClient, Transport, WalletClient } from "viem";
import { privateKeyToAccount } from "viem/accounts";

import { protocolAbi } from "../../lib/protocol/abis.ts";
import { createTxSender } from "../../verifier/chain/sender/index.ts";
import type { SendParams, TxSenderOptions } from "../../verifier/chain/sender/index.ts";

const TOKEN_ABI = protocolAbi("EdgeToken");

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

/** Starts a JSON-RPC proxy to `targetUrl` (one request per call; viem's http transport does not batch by default). */
export async function startRpcProxy(targetUrl: string): Promise<RpcProxy> {
  const target = new URL(targetUrl);
  let failUntil = 0;
  let loseAnswers = 0;
  let failAfterLost = 0;
  let rawTxCalls = 0;
  let failedCalls = 0;
  const forwardedTxs: Hex[] = [];
  const state = { dropRawTransactions: false };

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      void (async () => {
        const body = Buffer.concat(chunks).toString("utf8");
        const fail = () => {
          failedCalls++;
          res.writeHead(503, { "content-type": "text/plain" }).end("injected outage");
        };
        if (Date.now() < failUntil) return fail();
        let call: { method?: string; params?: unknown[]; id?: unknown } = {};
        try {
          call = JSON.parse(body) as typeof call;
        } catch {
          // forwarded as is
        }
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
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** viem clients on `rpcUrl` for `privateKey`, with viem's own retries off (the sender retries). */
export function senderClients(
  rpcUrl: string,
  privateKey: Hex,
): { publicClient: PublicClient; walletClient: WalletClient<Transport, Chain | undefined, Account> } {
  const transport = http(rpcUrl, { retryCount: 0, timeout: 5_000 });
  return {
    publicClient: createPublicClient({ transport }) as PublicClient,
    walletClient: createWalletClient({ account: privateKeyToAccount(privateKey), transport }) as WalletClient<
      Transport,
      Chain | undefined,
      Account
    >,
  };
}

/** Counts calls of `build` (it must not run when the sender resumes or finds the action done). */
export interface TransferAction extends SendParams {
  builds: number;
}

/** Transfer `amount` EdgeToken to `recipient`; done once the recipient holds at least `amount`. */
export function transferAction(
  publicClient: PublicClient,
  token: Address,
  key: string,
  recipient: Address,
  amount: bigint,
): TransferAction {
  const action: TransferAction = {
    key,
    builds: 0,
    isDone: async () =>
      (await publicClient.readContract({ address: token, abi: TOKEN_ABI, functionName: "balanceOf", args: [recipient] })) >= amount,
    build: async () => {
      action.builds++;
      return { to: token, data: encodeFunctionData({ abi: TOKEN_ABI, functionName: "transfer", args: [recipient, amount] }) };
    },
  };
  return action;
}

/** What `startSenderChild` passes to the child (JSON in TIDEWAY_SENDER_CHILD). */
export interface SenderChildSpec {
  redisUrl: string;
  rpcUrl: string;
  privateKey: Hex;
  token: Address;
  key: string;
  recipient: Address;
  amount: string;
  options: Partial<Pick<TxSenderOptions, "lockTtlMs" | "bumpAfterMs" | "maxBumps" | "receiptPollMs" | "rpcRetryMs" | "confirmations">>;
}

/** Runs a sender for one transfer in a child process (`node -e`), to be killed with SIGKILL. */
export function startSenderChild(spec: SenderChildSpec): { child: ChildProcess; exited: Promise<number | null>; output: () => string } {
  const helper = pathToFileURL(import.meta.filename).href;
  const child = spawn(
    process.execPath,
    ["--input-type=module", "-e", `import(${JSON.stringify(helper)}).then((m) => m.runSenderChild())`],
    {
      env: { ...process.env, TIDEWAY_SENDER_CHILD: JSON.stringify(spec) },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let out = "";
  child.stdout!.on("data", (c: Buffer) => {
    out += c.toString();
  });
  child.stderr!.on("data", (c: Buffer) => {
    out += c.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return { child, exited, output: () => out };
}

/** The child's body (called by `startSenderChild`'s `node -e`). */
export async function runSenderChild(): Promise<void> {
  const spec = JSON.parse(process.env.TIDEWAY_SENDER_CHILD ?? "") as SenderChildSpec;
  const redis = new Redis(spec.redisUrl, { maxRetriesPerRequest: null });
  const { publicClient, walletClient } = senderClients(spec.rpcUrl, spec.privateKey);
  const sender = createTxSender({ redis, publicClient, walletClient, logger: pino({ level: "info" }), ...spec.options });
  const result = await sender.send(transferAction(publicClient, spec.token, spec.key, spec.recipient, BigInt(spec.amount)));
  process.stdout.write(`${JSON.stringify({ result: result.status })}\n`);
  await sender.close();
  redis.disconnect();
}
