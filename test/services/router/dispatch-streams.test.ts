// The dispatcher reading an edge's streamed answer, over real HTTP (an edge stand-in that counts
// its connections), with a real pool, payer, voucher ledger and limiter on a scratch Redis; the
// tenant's session and escrow are given.
// - It keeps one keep-alive connection per edge across streamed chats: it reads each answer to
//   the end of its body, even when the edge's last bytes come after `data: [DONE]` (leaving early
//   destroys the response and its socket, and dialling the edge for every request would cost the
//   router a connect and a close each time).
// - An edge that dies after sending every token asked for, before its finish chunk, has given the
//   whole answer: the client gets it, ended by max_tokens, with no continuation asked of anyone
//   (there is nothing left to continue: max_tokens would be 0).
import http from "node:http";
import type { AddressInfo } from "node:net";

import { expect } from "chai";
import { Redis } from "ioredis";
import { pino } from "pino";
import { zeroAddress } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";

import { startScratchRedis } from "../../../devnet/redis.ts";
import type { ScratchRedis } from "../../../devnet/redis.ts";
import { marketDomain } from "../../../lib/protocol/eip712.ts";
import type { DirectoryEdge, EdgeDirectory } from "../../../router/chain/directory.ts";
import { createDispatcher } from "../../../router/dispatch/dispatcher.ts";
import type { Dispatcher } from "../../../router/dispatch/dispatcher.ts";
import { createEdgePool, schedulerEdgesOf } from "../../../router/dispatch/pool.ts";
import type { EdgePool } from "../../../router/dispatch/pool.ts";
import { createRetryBudget } from "../../../router/dispatch/retryBudget.ts";
import { createRouterMetrics } from "../../../router/metrics.ts";
import { createPayer } from "../../../router/payment/payer.ts";
import { createVoucherLedger } from "../../../router/payment/ledger.ts";
import { createPolicy } from "../../../router/policy/index.ts";
import { systemClock } from "../../../router/schedule/clock.ts";
import { createScheduler } from "../../../router/schedule/scheduler.ts";
import { createTenantLimiter } from "../../../router/tenants/limits.ts";
import type { Tenant } from "../../../router/tenants/store.ts";

const MODEL = "tideway/reference-1";
const TOKENS = ["Tides", " turn", " twice", " a", " day."];

/**
 * An edge's streamed chat answer, event by event; the body ends a little after `[DONE]`, as over a
 * real network. Asked "cut", it streams max_tokens tokens and dies before its finish chunk.
 */
function startEdgeStandIn(): Promise<{ server: http.Server; url: string; connections: () => number; chats: () => number }> {
  let connections = 0;
  let chats = 0;
  const server = http.createServer((req, res) => {
    if (req.method === "GET" && req.url === "/v1/models") {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ data: [{ id: MODEL, tideway: { price: { input_per_token: "1", output_per_token: "2" } } }] }));
      return;
    }
    let text = "";
    req.setEncoding("utf8");
    req.on("data", (chunk: string) => {
      text += chunk;
    });
    req.on("end", () => {
      chats += 1;
      const body = JSON.parse(text) as { messages: Array<{ content: string }>; max_tokens: number };
      res.writeHead(200, { "content-type": "text/event-stream" });
      const event = (data: unknown) => res.write(`data: ${JSON.stringify(data)}\n\n`);
      if (body.messages[0]!.content === "cut") {
        for (let i = 0; i < body.max_tokens; i++) event({ choices: [{ index: 0, delta: { content: ` t${i}` }, finish_reason: null }] });
        setTimeout(() => res.destroy(), 20);
        return;
      }
      for (const token of TOKENS) event({ choices: [{ index: 0, delta: { content: token }, finish_reason: null }] });
      event({
        choices: [{ index: 0, delta: {}, finish_reason: "stop" }],
        usage: { prompt_tokens: 10, completion_tokens: TOKENS.length },
        tideway: { cost: "20" },
      });
      res.write("data: [DONE]\n\n");
      setTimeout(() => res.end(), 20);
    });
  });
  server.on("connection", () => {
    connections += 1;
  });
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () =>
      resolve({
        server,
        url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        connections: () => connections,
        chats: () => chats,
      }),
    ),
  );
}

describe("router dispatch: reading an edge's stream", function () {
  this.timeout(30_000);
  let redisServer: ScratchRedis;
  let redis: Redis;
  let edge: Awaited<ReturnType<typeof startEdgeStandIn>>;
  let pool: EdgePool;
  let dispatcher: Dispatcher;
  const account = privateKeyToAccount(generatePrivateKey());
  const tenant: Tenant = { id: "tenant-1", name: "dApp", payer: account.address, createdAt: 0, revoked: false };

  before(async function () {
    redisServer = await startScratchRedis();
    redis = new Redis(redisServer.url);
    edge = await startEdgeStandIn();
    const record: DirectoryEdge = {
      edgeId: 1n,
      signingKey: zeroAddress,
      status: "Active",
      profile: { endpoint: edge.url, region: "eu-west", capacity: 400, models: [MODEL], metadataURI: "" },
      profileHash: "0x",
      blockNumber: 1n,
    };
    const directory: EdgeDirectory = {
      async start() {},
      stop() {},
      get: (edgeId) => (edgeId === 1n ? record : undefined),
      all: () => [record],
      blockNumber: () => 1n,
      onChange() {},
      async sync() {},
    };
    const logger = pino({ level: "silent" });
    pool = createEdgePool({ directory, logger, breakerFailures: 3, breakerOpenMs: 5_000 });
    pool.start();
    await pool.probe(pool.get(1n)!);
    const voucherKey = generatePrivateKey();
    dispatcher = createDispatcher({
      pool,
      scheduler: createScheduler({ clock: systemClock, policy: createPolicy("round-robin"), edges: schedulerEdgesOf(pool) }),
      payer: createPayer({
        ledger: createVoucherLedger(redis, "test"),
        domain: marketDomain(31337, zeroAddress),
        privateKey: voucherKey,
        address: privateKeyToAccount(voucherKey).address,
        leaseMs: 60_000,
      }),
      sessions: { sessionFor: async () => ({ id: 7n, expiry: 2n ** 40n, budget: 10n ** 24n }), invalidate: async () => {} },
      escrow: { read: async () => ({ authorized: true, balance: 10n ** 24n }) },
      limiter: createTenantLimiter(redis, "test"),
      retryBudget: createRetryBudget({ ratio: 0.2 }),
      metrics: createRouterMetrics({ defaultMetrics: false }),
      logger,
      maxAttempts: 3,
      maxMigrations: 3,
      firstByteTimeoutMs: 5_000,
      stallTimeoutMs: 5_000,
      splitInputs: 16,
    });
  });

  after(async function () {
    pool?.stop();
    edge?.server.closeAllConnections();
    edge?.server.close();
    redis?.disconnect();
    await redisServer?.destroy();
  });

  const chat = (content: string, maxTokens = 16) =>
    dispatcher.chat(
      {
        tenant,
        requestId: `chat-${Math.random()}`,
        model: MODEL,
        messages: [{ role: "user", content }],
        maxTokens,
        passthrough: {},
        priority: "interactive",
        deadlineMs: 10_000,
        signal: new AbortController().signal,
      },
      { start() {}, delta() {} },
    );

  it("sends consecutive streamed chats over kept-alive connections, not a new one each", async function () {
    const before = edge.connections();
    for (let i = 0; i < 5; i++) {
      const outcome = await chat("Tell me about the tides.");
      expect(outcome.text).to.equal(TOKENS.join(""));
      expect(outcome.finishReason).to.equal("stop");
    }
    expect(edge.connections() - before).to.be.at.most(1);
  });

  it("answers with every token asked for when the edge dies just before its finish chunk", async function () {
    const before = edge.chats();
    const outcome = await chat("cut", 6);
    expect(outcome.text).to.equal(" t0 t1 t2 t3 t4 t5");
    expect(outcome.finishReason).to.equal("length");
    expect(outcome.edges).to.deep.equal(["1"]);
    expect(outcome.migrations).to.equal(0);
    expect(edge.chats() - before).to.equal(1);
  });
});
