// One router process: connects to Redis (refusing one that could lose voucher counters) and the
// chain, follows the edges, accepts edge links, and serves the OpenAI-compatible API. Several
// processes with the same configuration (same Redis and prefix, same key) serve the same tenants
// consistently: everything that must agree between them lives in Redis.
import type { AddressInfo } from "node:net";

import type { Redis } from "ioredis";
import type { Logger } from "pino";
import { createPublicClient, createWalletClient, http } from "viem";
import type { Account, Chain, Hex, LocalAccount, PublicClient, Transport, WalletClient } from "viem";

import { componentLogger, limitRepeats } from "../lib/logging.ts";
import { readProtocolAddresses } from "../lib/protocol/addresses.ts";
import { marketDomain } from "../lib/protocol/eip712.ts";
import { edgeDomain } from "../lib/protocol/edgeProofs.ts";
import { connectSafeRedis } from "../lib/redis.ts";
import { createRouterApi } from "./api/server.ts";
import { createEdgeDirectory } from "./chain/directory.ts";
import type { RouterConfig } from "./config.ts";
import { createConversationStore } from "./conversations/store.ts";
import { createDispatcher } from "./dispatch/dispatcher.ts";
import { createEdgePool, schedulerEdgesOf } from "./dispatch/pool.ts";
import { createRetryBudget } from "./dispatch/retryBudget.ts";
import { createLinkServer } from "./link/server.ts";
import { createRouterMetrics } from "./metrics.ts";
import { createEscrowReader } from "./payment/escrow.ts";
import { createVoucherLedger } from "./payment/ledger.ts";
import { createPayer } from "./payment/payer.ts";
import { createChainClock } from "../lib/protocol/chainClock.ts";
import { createSessionManager } from "./payment/sessions.ts";
import { createPolicy } from "./policy/index.ts";
import { systemClock } from "./schedule/clock.ts";
import { createScheduler, edgeLoad } from "./schedule/scheduler.ts";
import { createTenantLimiter } from "./tenants/limits.ts";
import { createTenantStore } from "./tenants/store.ts";

/** How often the queue looks for capacity freed without an event (a breaker half-opening, a probe). */
const PUMP_INTERVAL_MS = 100;
/** An edge's load report older than this is not trusted for its utilization. */
const EDGE_REPORT_MAX_AGE_MS = 2_000;

export interface StartRouterOptions {
  config: RouterConfig;
  /** The voucher key: signs vouchers and opens tenants' sessions (pays their gas). */
  key: { account: LocalAccount; privateKey: Hex };
  logger: Logger;
}

export interface RunningRouter {
  url: string;
  close(): Promise<void>;
}

export async function startRouter(options: StartRouterOptions): Promise<RunningRouter> {
  const { config, logger } = options;
  // An outage repeats errors several times a second: the first, then a count a minute.
  const repeats = limitRepeats(logger);
  // Auto-pipelining: the commands of concurrent requests leave in one write per tick.
  // A Redis outage fails requests after a couple of reconnect attempts (503) rather than holding them.
  const redis: Redis = await connectSafeRedis(
    config.redis.url,
    { enableAutoPipelining: true, maxRetriesPerRequest: 2 },
    { onRetry: (err, delayMs) => repeats.log("warn", "Redis unreachable at start: waiting for it", err, { retryInMs: delayMs }) },
  );
  redis.on("error", (err: Error) => repeats.log("warn", "Redis connection error (reconnecting)", err));
  const prefix = config.redis.prefix;

  const transport = http(config.chain.rpcUrl, { retryCount: 3, timeout: 10_000 });
  const client = createPublicClient({ transport, cacheTime: 0 }) as PublicClient;
  const chainId = await client.getChainId();
  const addresses = config.chain.addresses ?? readProtocolAddresses(chainId, { contracts: ["registry", "staking", "market"] });
  const walletClient = createWalletClient({ account: options.key.account, transport }) as WalletClient<
    Transport,
    Chain | undefined,
    Account
  >;
  const metrics = createRouterMetrics();

  const directory = createEdgeDirectory({
    client,
    addresses,
    pollIntervalMs: config.chain.pollIntervalMs,
    logger: componentLogger(logger, "directory"),
  });
  await directory.start();
  const pool = createEdgePool({
    directory,
    logger: componentLogger(logger, "pool"),
    breakerFailures: config.routing.breakerFailures,
    breakerOpenMs: config.routing.breakerOpenMs,
    selfOrigins: [`http://${config.listen.host}:${config.listen.port}`, ...(config.publicUrl === undefined ? [] : [config.publicUrl])],
  });
  pool.start();
  const scheduler = createScheduler({
    clock: systemClock,
    policy: createPolicy(config.routing.policy, config.routing.affinity ? { affinity: { epsilon: config.routing.affinityEpsilon } } : {}),
    edges: schedulerEdgesOf(pool),
    mode: config.routing.scheduling,
    maxQueue: config.routing.maxQueue,
    observer: {
      dispatched(request, grant) {
        metrics.queueWait.observe({ class: request.priority }, grant.waitedMs / 1000);
        if (grant.waitedMs > 0) metrics.queueWaitPredicted.observe({ class: request.priority }, grant.predictedWaitMs / 1000);
      },
      shed(request, reason) {
        metrics.shed.inc({ class: request.priority, reason });
      },
    },
  });
  metrics.watch({
    depth: () => scheduler.depth(),
    utilization: () =>
      pool
        .all()
        .filter((e) => e.record.status === "Active")
        .map((e) => {
          const view = pool.view(e);
          return { edge: e.key, utilization: edgeLoad(view, EDGE_REPORT_MAX_AGE_MS) / view.concurrency };
        }),
  });
  // Breakers half-open and probes find models on their own clocks: look for free capacity often.
  const pumpTimer = setInterval(() => scheduler.pump(), PUMP_INTERVAL_MS);
  pumpTimer.unref();
  const links = createLinkServer({
    domain: edgeDomain(chainId, addresses.registry),
    edge: (edgeId) => directory.get(edgeId),
    logger: componentLogger(logger, "link"),
    maxFrameBytes: config.limits.linkMaxFrameBytes,
    // A load report or a link change may free capacity for requests waiting in the queue.
    onLoad: (edgeId, load) => {
      pool.loadReport(edgeId, load);
      scheduler.pump();
    },
    onConnect: (edgeId, t) => {
      pool.linkConnected(edgeId, t);
      scheduler.pump();
    },
    onDisconnect: (edgeId, t) => {
      pool.linkDisconnected(edgeId, t);
      scheduler.pump();
    },
  });
  // An edge that leaves the active set loses its link at once.
  directory.onChange((edge) => {
    if (edge.status !== "Active") links.drop(edge.edgeId, `edge is ${edge.status}`);
  });

  // Sessions expire by the chain's clock, which can run ahead of this machine's.
  const chainClock = createChainClock(client, {
    refreshMs: config.chain.pollIntervalMs,
    onError: (err) => logger.warn({ err }, "could not read the chain's time; session expiries use the last reading"),
  });
  await chainClock.refresh();
  const chainNow = async () => chainClock.nowSeconds();
  const payer = createPayer({
    ledger: createVoucherLedger(redis, prefix),
    domain: marketDomain(chainId, addresses.market),
    privateKey: options.key.privateKey,
    address: options.key.account.address,
    // Longer than any request may take (a first-byte wait plus a long stream).
    leaseMs: 30 * 60_000,
  });
  const dispatcher = createDispatcher({
    pool,
    scheduler,
    payer,
    sessions: createSessionManager({
      redis,
      prefix,
      publicClient: client,
      walletClient,
      market: addresses.market,
      budget: config.sessions.budget,
      lifetimeSeconds: config.sessions.lifetimeSeconds,
      renewBeforeSeconds: config.sessions.renewBeforeSeconds,
      now: chainNow,
    }),
    escrow: createEscrowReader({ client, market: addresses.market, signer: options.key.account.address }),
    limiter: createTenantLimiter(redis, prefix),
    retryBudget: createRetryBudget({ ratio: config.routing.retryBudgetRatio }),
    metrics,
    logger: componentLogger(logger, "dispatch"),
    maxAttempts: config.routing.maxAttempts,
    maxMigrations: config.routing.maxMigrations,
    firstByteTimeoutMs: config.routing.firstByteTimeoutMs,
    stallTimeoutMs: config.routing.stallTimeoutMs,
    splitInputs: config.routing.splitInputs,
    decisionLogShare: config.routing.decisionLogShare,
  });

  const app = createRouterApi({
    dispatcher,
    pool,
    tenants: createTenantStore(redis, prefix),
    conversations: createConversationStore(redis, prefix, config.limits.responseTtlSeconds),
    metrics,
    logger,
    limits: config.limits,
    defaultMaxTokens: config.limits.defaultMaxTokens,
    scheduling: { defaultPriority: config.routing.defaultPriority, deadlineMs: config.routing.deadlineMs },
    health: () => {
      const edges = pool.all();
      const active = edges.filter((e) => e.record.status === "Active").length;
      return {
        ok: redis.status === "ready",
        redis: redis.status,
        block: directory.blockNumber().toString(),
        edges: { known: edges.length, active, linked: links.linked().length },
      };
    },
  });
  links.attach(app.server);
  await app.listen({ host: config.listen.host, port: config.listen.port });
  const address = app.server.address() as AddressInfo;
  const url = `http://${config.listen.host}:${address.port}`;
  logger.info(
    {
      url,
      voucherKey: options.key.account.address,
      chainId,
      policy: config.routing.policy,
      scheduling: config.routing.scheduling,
      redis: prefix,
    },
    "router started",
  );

  return {
    url,
    async close() {
      clearInterval(pumpTimer);
      scheduler.close();
      chainClock.stop();
      repeats.close();
      directory.stop();
      pool.stop();
      await links.close();
      await app.close();
      redis.disconnect();
    },
  };
}
