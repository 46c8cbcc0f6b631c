// Wiring of one edge: chain access, storage, backends, payment, the GPoW responder, the API and
// the router link, started in dependency order and stopped in reverse. `main.ts` calls this from
// the command line; tests and the benchmark call it in-process.
import { availableParallelism } from "node:os";

import pino from "pino";
import type { Logger } from "pino";
import { createPublicClient, createWalletClient, http } from "viem";
import type { Account, Chain, Hex, LocalAccount, PublicClient, Transport, WalletClient } from "viem";

import { edgeDomain } from "../lib/protocol/edgeProofs.ts";
import { DEFAULT_MODEL_CONFIG } from "../lib/reference-model/index.ts";
import { marketDomain } from "../lib/protocol/eip712.ts";
import { protocolAbi } from "../lib/protocol/abis.ts";
import { readProtocolAddresses } from "../lib/protocol/addresses.ts";
import { createVoucherVerifier } from "../lib/protocol/fastVoucher.ts";
import { createApi } from "./api/server.ts";
import { createLimiter } from "./api/limiter.ts";
import { createOpenAIBackend } from "./backends/openai.ts";
import { createReferenceBackend } from "./backends/reference.ts";
import type { Backend } from "./backends/types.ts";
import type { ContractAddresses, EdgeConfig } from "./config.ts";
import { createEpochTracker } from "./gpow/epochs.ts";
import { createReceiptSigner } from "./gpow/receipts.ts";
import { createUsageLog } from "./gpow/usageLog.ts";
import { createEdgeMetrics } from "./metrics.ts";
import type { EdgeMetrics } from "./metrics.ts";
import { createChainClock } from "../lib/protocol/chainClock.ts";
import { createPaymentGate } from "./payment/gate.ts";
import type { PaymentGate } from "./payment/gate.ts";
import { createMarketView } from "./payment/market.ts";
import { createRedeemer } from "./payment/redeemer.ts";
import { createVoucherStore } from "./payment/store.ts";
import { createRouterLink } from "./router/link.ts";
import type { ServedModel } from "./serving/ports.ts";
import { openEdgeDatabase } from "./store/database.ts";

/** The configured key is not the edge's registered signing key, or the edge does not exist. */
export class EdgeIdentityError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "EdgeIdentityError";
  }
}

export interface StartEdgeOptions {
  config: EdgeConfig;
  /** The edge's registered signing key (signs receipts and usage roots; sends redemptions). */
  account: LocalAccount;
  /**
   * `account`'s private key, when the caller has it (`loadKey` in main.ts): challenge receipts are
   * then signed with the native codec (tens of microseconds) instead of viem's signTypedData
   * (1–2 ms of CPU each). Must be `account`'s key (checked at start).
   */
  privateKey?: Hex;
  logger?: Logger;
  /** Overrides the HTTP transport to `config.chain.rpcUrl` (tests use the in-process network). */
  transport?: Transport;
}

export interface RunningEdge {
  /** Base URL of the API, e.g. http://127.0.0.1:8080 */
  readonly url: string;
  readonly port: number;
  readonly metrics: EdgeMetrics;
  readonly addresses: ContractAddresses;
  /** Stops accepting, drains in-flight requests, redeems every stored voucher, closes everything. */
  close(): Promise<void>;
}

/** Exponentially weighted service time and token rate, for Retry-After and load reports. */
function createLoadMeter() {
  let serviceMs = 50;
  let tokens = 0;
  let windowStart = Date.now();
  let tokensPerSecond = 0;
  return {
    served(ms: number, n: number) {
      serviceMs = 0.9 * serviceMs + 0.1 * ms;
      tokens += n;
      const elapsed = Date.now() - windowStart;
      if (elapsed >= 1000) {
        tokensPerSecond = (tokens * 1000) / elapsed;
        tokens = 0;
        windowStart = Date.now();
      }
    },
    averageServiceMs: () => serviceMs,
    tokensPerSecond: () => (Date.now() - windowStart > 5000 ? 0 : tokensPerSecond),
  };
}

function backendFor(model: EdgeConfig["models"][number], logger: Logger, env: NodeJS.ProcessEnv): Backend {
  const b = model.backend;
  if (b.type === "reference") {
    return createReferenceBackend({
      hidden: b.hidden ?? DEFAULT_MODEL_CONFIG.hidden,
      layers: b.layers ?? DEFAULT_MODEL_CONFIG.layers,
      threads: b.threads ?? Math.max(1, availableParallelism() - 1),
      tokensPerSecond: b.tokensPerSecond,
      logger: logger.child({ model: model.name }),
    });
  }
  return createOpenAIBackend({
    baseUrl: b.baseUrl,
    apiKey: b.apiKeyEnv === undefined ? undefined : env[b.apiKeyEnv],
    upstreamModel: b.upstreamModel ?? model.name,
    timeoutMs: b.timeoutMs,
    tokensPerSecond: b.tokensPerSecond,
    logger: logger.child({ model: model.name }),
  });
}

/** Starts an edge; resolves once it listens (and its key is checked against the registry). */
export async function startEdge(options: StartEdgeOptions): Promise<RunningEdge> {
  const { config, account } = options;
  const logger = options.logger ?? pino({ level: config.log.level, base: { service: "edge", edgeId: config.edgeId.toString() } });
  const metrics = createEdgeMetrics();
  const transport = options.transport ?? http(config.chain.rpcUrl, { retryCount: 3, timeout: 10_000 });
  const publicClient = createPublicClient({ transport }) as PublicClient;
  const walletClient = createWalletClient({ account, transport }) as WalletClient<Transport, Chain | undefined, Account>;
  const chainId = await publicClient.getChainId();
  const addresses: ContractAddresses =
    config.chain.addresses ?? readProtocolAddresses(chainId, { contracts: ["registry", "staking", "market"] });

  const registered = await publicClient.readContract({
    address: addresses.registry,
    abi: protocolAbi("EdgeRegistry"),
    functionName: "edge",
    args: [config.edgeId],
  });
  if (registered.operator === "0x0000000000000000000000000000000000000000") {
    throw new EdgeIdentityError(
      `edge ${config.edgeId} is not registered in the EdgeRegistry at ${addresses.registry} (chain ${chainId}); register it with \`npx hardhat edge register\``,
    );
  }
  if (registered.signingKey.toLowerCase() !== account.address.toLowerCase()) {
    throw new EdgeIdentityError(
      `the configured key is ${account.address}, but edge ${config.edgeId} is registered with signing key ${registered.signingKey}: set the right key, or have the operator rotate the edge's key (EdgeRegistry.rotateSigningKey)`,
    );
  }

  const stack: { name: string; close: () => Promise<void> | void }[] = [];
  const closeAll = async () => {
    for (const { name, close } of stack.reverse()) {
      try {
        const started = performance.now();
        await close();
        logger.debug({ component: name, ms: Math.round(performance.now() - started) }, "stopped");
      } catch (err) {
        logger.error({ err, component: name }, "failed to stop cleanly");
      }
    }
    stack.length = 0;
  };
  try {
    // Vouchers are the edge's most valuable writes: their durability decides how the database flushes.
    const db = openEdgeDatabase(config.dataDir, { deferFlush: config.payment.required && config.payment.voucherDurability === "interval" });
    stack.push({ name: "database", close: () => db.close() });

    const epochs = createEpochTracker({ publicClient, staking: addresses.staking, pollIntervalMs: config.chain.pollIntervalMs, logger });
    await epochs.start();
    stack.push({ name: "epochs", close: () => epochs.close() });

    const domain = edgeDomain(chainId, addresses.registry);
    const usageLog = createUsageLog({
      db,
      dataDir: config.dataDir,
      retainEpochs: config.usage.retainEpochs,
      account,
      domain,
      edgeId: config.edgeId,
      epochs,
      logger,
      metrics,
    });
    stack.push({ name: "usage log", close: () => usageLog.close() });
    const receipts = createReceiptSigner({ account, privateKey: options.privateKey, domain, edgeId: config.edgeId });

    const models = new Map<string, ServedModel>();
    for (const model of config.models) {
      const backend = backendFor(model, logger, process.env);
      stack.push({ name: `backend ${model.name}`, close: () => backend.close() });
      models.set(model.name, { config: model, backend });
    }

    let payment: PaymentGate | undefined;
    if (config.payment.required) {
      const market = createMarketView({
        publicClient,
        market: addresses.market,
        edgeId: config.edgeId,
        pollIntervalMs: config.chain.pollIntervalMs,
        logger,
      });
      await market.start();
      stack.push({ name: "market view", close: () => market.close() });
      const store = createVoucherStore(db);
      const verifier = createVoucherVerifier(marketDomain(chainId, addresses.market));
      // Expiries are judged by the chain's clock, as redeemMany will judge them.
      const chainClock = createChainClock(publicClient, {
        refreshMs: config.chain.pollIntervalMs,
        onError: (err) => logger.warn({ err }, "could not read the chain's time; expiries use the last reading"),
      });
      await chainClock.refresh();
      stack.push({ name: "chain clock", close: async () => chainClock.stop() });
      const gate = createPaymentGate({
        now: chainClock.nowSeconds,
        db: store,
        market,
        verifier,
        edgeId: config.edgeId,
        logger,
        metrics,
        minVoucherLifetimeSeconds: config.payment.minVoucherLifetimeSeconds,
        durability:
          config.payment.voucherDurability === "sync"
            ? { mode: "sync" }
            : { mode: "interval", flushIntervalMs: config.payment.flushIntervalMs },
      });
      payment = gate;
      stack.push({ name: "payment gate", close: () => gate.close() });
      const redeemer = createRedeemer({
        store,
        market,
        publicClient,
        walletClient,
        marketAddress: addresses.market,
        edgeId: config.edgeId,
        intervalMs: config.payment.redeemIntervalSeconds * 1000,
        batchSize: config.payment.redeemBatchSize,
        thawMarginSeconds: config.payment.thawMarginSeconds,
        now: chainClock.nowSeconds,
        logger,
        metrics,
      });
      redeemer.start();
      // Closed after the API has drained (the stack unwinds in reverse): the last redemption
      // then covers every request served.
      stack.push({
        name: "redeemer",
        close: async () => {
          await redeemer.close();
        },
      });
    }

    if (config.faultInjection !== undefined && config.faultInjection.wrongAnswerRate > 0) {
      logger.warn(
        { wrongAnswerRate: config.faultInjection.wrongAnswerRate },
        "fault injection is ON: this edge serves and signs wrong answers on purpose (demos and tests only); verifiers will fault and slash it",
      );
    }
    const load = createLoadMeter();
    const limiter = createLimiter({ ...config.limits, averageServiceMs: load.averageServiceMs });
    let routerConnected = (): boolean => false;
    const api = createApi({
      serving: {
        edgeId: config.edgeId,
        models,
        payment,
        limiter,
        epochs,
        usageLog,
        receipts,
        metrics,
        logger,
        onServed: load.served,
        faultInjection: config.faultInjection,
      },
      audit: usageLog,
      metrics,
      logger,
      limits: config.limits,
      info: () => ({
        edge_id: config.edgeId.toString(),
        signing_key: account.address,
        chain_id: chainId,
        contracts: addresses,
        payment_required: config.payment.required,
        voucher_header: "x-tideway-voucher",
        epoch: epochs.current().toString(),
      }),
      health: () => ({
        ok: true,
        edge_id: config.edgeId.toString(),
        epoch: epochs.current().toString(),
        in_flight: limiter.inFlight,
        queued: limiter.queued,
        router_connected: config.router === undefined ? null : routerConnected(),
      }),
    });
    const sample = setInterval(() => {
      metrics.inFlight.set(limiter.inFlight);
      metrics.queued.set(limiter.queued);
    }, 1000);
    sample.unref();
    stack.push({ name: "sampler", close: () => clearInterval(sample) });
    await api.listen({ host: config.listen.host, port: config.listen.port });
    stack.push({
      name: "api",
      close: async () => {
        const closing = api.close();
        // Drain: requests in flight (streams included) may finish, up to drainTimeoutMs. Then
        // every connection goes, so an idle keep-alive (fastify keeps them 72 s) or a client that
        // stopped mid-request cannot hold the shutdown, and the redemption after it, hostage.
        const deadline = Date.now() + config.limits.drainTimeoutMs;
        while (limiter.inFlight + limiter.queued > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
        api.server.closeAllConnections();
        await closing;
      },
    });
    const address = api.server.address();
    const port = typeof address === "object" && address !== null ? address.port : config.listen.port;
    const host = config.listen.host === "0.0.0.0" || config.listen.host === "::" ? "127.0.0.1" : config.listen.host;
    const url = `http://${host.includes(":") ? `[${host}]` : host}:${port}`;

    if (config.router !== undefined) {
      const urls = [...new Set([...(config.router.url === undefined ? [] : [config.router.url]), ...(config.router.urls ?? [])])];
      const links = urls.map((routerUrl) =>
        createRouterLink({
          url: routerUrl,
          account,
          domain,
          edgeId: config.edgeId,
          localApi: url,
          reportIntervalMs: config.router!.reportIntervalMs,
          load: () => ({
            inFlight: limiter.inFlight,
            queued: limiter.queued,
            tokensPerSecond: load.tokensPerSecond(),
            saturation: limiter.saturation(),
            maxConcurrent: config.limits.maxConcurrent,
          }),
          logger,
          metrics,
        }),
      );
      for (const link of links) link.start();
      routerConnected = () => links.some((link) => link.connected());
      // Closed before the API (stack order): the routers stop sending before the drain.
      stack.push({ name: "router links", close: async () => void (await Promise.all(links.map((link) => link.close()))) });
    }
    logger.info(
      {
        url,
        edgeId: config.edgeId.toString(),
        signingKey: account.address,
        chainId,
        models: [...models.keys()],
        paymentRequired: config.payment.required,
      },
      "edge serving",
    );

    let closing: Promise<void> | undefined;
    return {
      url,
      port,
      metrics,
      addresses,
      close: () => (closing ??= closeAll()),
    };
  } catch (err) {
    await closeAll();
    throw err;
  }
}
