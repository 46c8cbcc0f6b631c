// A router testbed for the end-to-end tests and the router benchmark: the protocol on Hardhat's
// in-process network served over real HTTP JSON-RPC, staked (so Active) edges as real processes
// serving the reference model — some with a public endpoint, some "behind NAT" that only dial the
// router's link — router processes sharing one scratch Redis (AOF on), and a tenant whose escrow
// pays, with its API key. Importing this file runs nothing.
import { mkdirSync } from "node:fs";
import path from "node:path";

import { Redis } from "ioredis";
import type { Address, Hex, LocalAccount } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";

import type { EdgeConfigInput } from "../edge/config.ts";
import { computeMarketAbi, edgeStakingAbi } from "../lib/protocol/abis.ts";
import type { RouterConfigInput } from "../router/config.ts";
import { createTenantStore } from "../router/tenants/store.ts";
import type { TenantLimits } from "../router/tenants/store.ts";
import { confirmed } from "./chain.ts";
import { freePort } from "./readiness.ts";
import { startScratchRedis } from "./redis.ts";
import type { ScratchRedis } from "./redis.ts";
import { startEdge, startRouter } from "./services.ts";
import type { RouterLaunch } from "./services.ts";
import { createSupervisor } from "./supervisor.ts";
import type { Service, Supervisor } from "./supervisor.ts";
import { deployMarketTestbed, EDGE_MODEL, INPUT_PRICE, OUTPUT_PRICE, startRpcBridge } from "./testbed.ts";
import type { DeployedMarketTestbed, InProcessNetwork } from "./testbed.ts";

export { EDGE_MODEL, INPUT_PRICE, OUTPUT_PRICE } from "./testbed.ts";

const HOST = "127.0.0.1";
const TOKEN = 10n ** 18n;

export interface RouterbedEdgeSpec {
  /** Reachable only over the router link (its registered endpoint is the router's relay). */
  nat?: boolean;
  region?: string;
  /** Declared capacity (output tokens/s). */
  capacity?: number;
  /** Port it listens on (default: a free one). */
  port?: number;
  /** Its registered endpoint, when something stands in front of it (default: its own URL). */
  endpoint?: string;
  overrides?: Partial<EdgeConfigInput>;
}

export interface RouterbedOptions {
  conn: InProcessNetwork;
  /** The repository (edge/main.ts and router/main.ts run from there). */
  root: string;
  /** Where configuration, data and log files go. */
  workDir: string;
  edges: RouterbedEdgeSpec[];
  /** Router processes sharing one Redis (default 1). */
  routers?: number;
  routerOverrides?: Partial<RouterConfigInput>;
  /** Shape of the reference model every edge serves (a wider or deeper one is slower per token). */
  referenceShape?: { hidden?: number; layers?: number };
}

export interface RouterbedEdge {
  edgeId: bigint;
  port: number;
  /** Its own API (loopback), also for a NAT edge. */
  url: string;
  nat: boolean;
  service: Service;
  key: LocalAccount;
}

export interface RouterbedRouter {
  url: string;
  port: number;
  service: Service | undefined;
  launch: RouterLaunch;
}

export interface Routerbed {
  supervisor: Supervisor;
  rpcUrl: string;
  market: DeployedMarketTestbed;
  redis: ScratchRedis;
  redisPrefix: string;
  routerKey: LocalAccount;
  edges: RouterbedEdge[];
  routers: RouterbedRouter[];
  /** The tenant paid by the testbed's payer (account #0). */
  tenant: { id: string; apiKey: string; payer: Address };
  /**
   * A fresh payer account, funded with gas: it deposits `deposit` into its escrow (default
   * nothing) and authorizes the router's key unless `authorize` is false.
   */
  addPayer(options?: { deposit?: bigint; authorize?: boolean }): Promise<LocalAccount>;
  /** Adds a tenant for `payer` (which must have authorized the router's key to be served). */
  addTenant(payer: Address, limits?: TenantLimits & { name?: string }): Promise<{ id: string; apiKey: string }>;
  /** (Re)starts router `index` (after a kill). */
  startRouter(index: number): Promise<void>;
  stop(): Promise<void>;
}

export async function startRouterbed(options: RouterbedOptions): Promise<Routerbed> {
  mkdirSync(options.workDir, { recursive: true });
  const routerCount = options.routers ?? 1;
  const routerPorts = await Promise.all(Array.from({ length: routerCount }, () => freePort()));
  const edgePorts = await Promise.all(options.edges.map((spec) => spec.port ?? freePort()));
  const routerUrl = (i: number) => `http://${HOST}:${routerPorts[i]}`;

  // Edge ids are sequential from 1 on a fresh deployment: a NAT edge's endpoint is the relay for its id.
  const market = await deployMarketTestbed(options.conn, {
    edges: options.edges.length,
    selfBond: 0n,
    profile: (i) => ({
      endpoint:
        options.edges[i]!.nat === true
          ? `${routerUrl(0)}/tideway/v1/edges/${i + 1}`
          : (options.edges[i]!.endpoint ?? `http://${HOST}:${edgePorts[i]}`),
      region: options.edges[i]!.region ?? "eu-west",
      capacity: options.edges[i]!.capacity ?? 400,
      models: [EDGE_MODEL],
      metadataURI: "",
    }),
  });
  const { clients, addresses, admin } = market;
  // Stake each edge's minimum self-bond: Active at once (warm-up only delays earning).
  const params = await clients.public.readContract({ address: addresses.staking, abi: edgeStakingAbi, functionName: "parameters" });
  const { bond, deposit, fund } = await import("./protocol.ts");
  for (const edge of market.edges) {
    await fund(clients, addresses, admin, edge.operator.address, { tokens: params.minSelfBond });
    await bond(clients, addresses, edge.operator, edge.edgeId, params.minSelfBond, "stake");
  }
  const bridge = await startRpcBridge(options.conn.provider);

  const routerPrivateKey = generatePrivateKey();
  const routerKey = privateKeyToAccount(routerPrivateKey);
  await fund(clients, addresses, admin, routerKey.address, { eth: 100n * TOKEN });
  await confirmed(
    clients,
    await clients
      .wallet(admin)
      .writeContract({ address: addresses.market, abi: computeMarketAbi, functionName: "authorizeSigner", args: [routerKey.address] }),
  );

  const redis = await startScratchRedis();
  const redisPrefix = "routerbed";
  const supervisor = createSupervisor();
  const edges: RouterbedEdge[] = [];
  const routers: RouterbedRouter[] = routerPorts.map((port, i) => ({
    url: routerUrl(i),
    port,
    service: undefined,
    launch: {
      name: `router-${i + 1}`,
      root: options.root,
      host: HOST,
      port,
      redisUrl: redis.url,
      redisPrefix,
      rpcUrl: bridge.url,
      addresses,
      key: routerPrivateKey as Hex,
      configFile: path.join(options.workDir, `router-${i + 1}.json`),
      logFile: path.join(options.workDir, `router-${i + 1}.log`),
      overrides: options.routerOverrides,
    },
  }));

  async function startRouterAt(index: number): Promise<void> {
    routers[index]!.service = await startRouter(supervisor, routers[index]!.launch, false);
  }

  try {
    for (let i = 0; i < routerCount; i++) await startRouterAt(i);
    for (const [i, spec] of options.edges.entries()) {
      const edge = market.edges[i]!;
      const port = edgePorts[i]!;
      const nat = spec.nat === true;
      const service = await startEdge(supervisor, {
        name: `edge-${edge.edgeId}`,
        root: options.root,
        edgeId: edge.edgeId,
        host: HOST,
        port,
        rpcUrl: bridge.url,
        addresses,
        signingKey: edge.privateKey,
        model: EDGE_MODEL,
        dataDir: path.join(options.workDir, `edge-${edge.edgeId}-data`),
        configFile: path.join(options.workDir, `edge-${edge.edgeId}.json`),
        logFile: path.join(options.workDir, `edge-${edge.edgeId}.log`),
        overrides: {
          chain: {
            rpcUrl: bridge.url,
            addresses: { registry: addresses.registry, staking: addresses.staking, market: addresses.market },
            pollIntervalMs: 200,
          },
          models: [
            {
              name: EDGE_MODEL,
              backend: { type: "reference", threads: 1, tokensPerSecond: spec.capacity ?? 400, ...options.referenceShape },
              price: { inputPerToken: INPUT_PRICE.toString(), outputPerToken: OUTPUT_PRICE.toString() },
              maxTokens: 1024,
              defaultMaxTokens: 64,
            },
          ],
          payment: {
            required: true,
            minVoucherLifetimeSeconds: 60,
            redeemIntervalSeconds: 3600,
            redeemBatchSize: 50,
            thawMarginSeconds: 120,
          },
          log: { level: "info" },
          // Linked to every replica, as an edge behind NAT would be to each router it serves.
          ...(nat ? { router: { urls: routerPorts.map((p) => `ws://${HOST}:${p}/tideway/v1/link`), reportIntervalMs: 250 } } : {}),
          ...spec.overrides,
        },
      });
      edges.push({ edgeId: edge.edgeId, port, url: `http://${HOST}:${port}`, nat, service, key: edge.key });
    }
  } catch (err) {
    await supervisor.stopAll();
    await redis.destroy();
    await bridge.close();
    throw err;
  }

  const admin_redis = new Redis(redis.url);
  const store = createTenantStore(admin_redis, redisPrefix, { cacheMs: 0 });
  const first = await store.add({ name: "testbed dApp", payer: admin });

  return {
    supervisor,
    rpcUrl: bridge.url,
    market,
    redis,
    redisPrefix,
    routerKey,
    edges,
    routers,
    tenant: { id: first.tenant.id, apiKey: first.apiKey, payer: admin },
    async addPayer({ deposit: amount = 0n, authorize = true } = {}) {
      const account = privateKeyToAccount(generatePrivateKey());
      await fund(clients, addresses, admin, account.address, { eth: 10n * TOKEN, tokens: amount });
      if (amount > 0n) await deposit(clients, addresses, account, amount);
      if (authorize)
        await confirmed(
          clients,
          await clients.wallet(account).writeContract({
            address: addresses.market,
            abi: computeMarketAbi,
            functionName: "authorizeSigner",
            args: [routerKey.address],
          }),
        );
      return account;
    },
    async addTenant(payer, limits = {}) {
      const { tenant, apiKey } = await store.add({ name: limits.name ?? "tenant", payer, ...limits });
      return { id: tenant.id, apiKey };
    },
    startRouter: startRouterAt,
    async stop() {
      admin_redis.disconnect();
      await supervisor.stopAll();
      await redis.destroy();
      await bridge.close();
    },
  };
}
