// The local network `npm start` and `npm run chaos` run, brought up step by step under one
// supervisor: free ports, compile, `hardhat node` (a block every second), Ignition deployment, the
// indexer (when asked), the governed demo setup (funded accounts, three approved verifiers), three
// edges (#2 behind NAT, #3 answering half of its chat completions wrongly), one Redis per verifier
// and one for the router, the router, the clock moved to the first epoch the stake earns in, the
// three verifiers; then the demo dApp's tenant. Each step is announced through `begin` and run
// through `must` (the caller's lifecycle decides what a failed step does).
import { rmSync } from "node:fs";
import path from "node:path";

import { Redis } from "ioredis";
import { http, type Address, type LocalAccount } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";

import { readProtocolAddresses, type ProtocolAddresses } from "../lib/protocol/addresses.ts";
import { ONE_TOKEN as TOKEN } from "../lib/protocol/units.ts";
import { indexerService } from "../indexer/service.ts";
import { createTenantStore } from "../router/tenants/store.ts";
import {
  deployWithIgnition,
  devnetClients,
  hardhatBin,
  runCommand,
  setIntervalMining,
  startHardhatNode,
  type DevnetClients,
} from "./chain.ts";
import { createDemoDapp, setUpDemoTenant, type DemoDapp } from "./dapp.ts";
import {
  advanceToFirstEarningEpoch,
  type DemoAccounts,
  demoAccounts,
  demoPorts,
  EDGES,
  HOST,
  INDEXER,
  INDEXER_URL,
  MODEL,
  registerDemoEdges,
  ROUTER,
  ROUTER_URL,
  RPC_PORT,
  RPC_URL,
  setUpGovernedDemo,
  stakeOf,
  url,
  VERIFIERS,
} from "./demo.ts";
import { fund } from "./protocol.ts";
import { portsInUse, rpcChainId } from "./readiness.ts";
import { readRules, tokens } from "./report.ts";
import { serviceEnv, startEdge, startRedis, startRouter, startVerifier } from "./services.ts";
import type { Supervisor } from "./supervisor.ts";

/** The prefix of the router's keys in its Redis. */
export const ROUTER_PREFIX = "router";

export interface DemoNetworkOptions {
  /** The repository (hardhat.config.ts, the services' entry points). */
  root: string;
  /** The command that runs the network, for messages (`npm start`). */
  command: string;
  /** Where configurations, logs and data go, below `root` (e.g. `cache`). */
  cacheDir: string;
  supervisor: Supervisor;
  /** Runs a step; on failure it does not return (the caller stops the network). */
  must: <T>(what: string, run: () => Promise<T>) => Promise<T>;
  /** Says `message` as a failure and stops the network; does not return. */
  fail: (message: string) => Promise<never>;
  /** Announces a numbered step. */
  begin: (message: string) => void;
  say: (message: string) => void;
  /** Runs the indexer from the deployment on (default: not). */
  indexer?: boolean;
}

export interface DemoNetwork {
  chainId: number;
  clients: DevnetClients;
  addresses: ProtocolAddresses;
  accounts: Address[];
  participants: DemoAccounts;
  governed: Awaited<ReturnType<typeof setUpGovernedDemo>>;
  edgeIds: bigint[];
  routerKey: LocalAccount;
  /** The first epoch in which every edge's stake earns (the verifiers started in it). */
  firstEpoch: bigint;
  /** The block before the verifiers started. */
  followFrom: bigint;
}

/** Brings the network up to running verifiers (steps 1–10 of `npm start`). */
export async function startDemoNetwork(o: DemoNetworkOptions): Promise<DemoNetwork> {
  const { root, supervisor, must, begin, say } = o;
  const cache = (file: string) => path.join(root, o.cacheDir, file);

  const ports = demoPorts();
  begin(`checking that the ports are free: ${ports.map(([p]) => p).join(", ")}`);
  const taken = await portsInUse(ports, HOST, RPC_PORT);
  if (taken.length > 0)
    await o.fail(`in use on ${HOST}: ${taken.join(", ")}. Stop whatever listens there, then run \`${o.command}\` again`);

  begin("compiling the contracts (hardhat build --build-profile production --no-tests)");
  await must("compilation", () =>
    runCommand(hardhatBin(root), ["build", "--build-profile", "production", "--no-tests"], { cwd: root, env: serviceEnv(root) }),
  );

  begin(`starting a Hardhat node on ${RPC_URL} (its log: ${o.cacheDir}/hardhat-node.log), mining a block every second`);
  await must("starting the node", () =>
    startHardhatNode(supervisor, { root, host: HOST, port: RPC_PORT, logFile: cache("hardhat-node.log") }),
  );
  const chainId = Number(await rpcChainId(RPC_URL));
  const clients = devnetClients(http(RPC_URL), chainId);
  await setIntervalMining(clients, 1_000);
  say(`node is up (chain ${chainId}); interval mining 1 s, automine on`);

  begin(
    "deploying the protocol: hardhat ignition deploy ignition/modules/Protocol.ts --network localhost --parameters ignition/parameters/local.json --reset",
  );
  await must("deployment", () =>
    deployWithIgnition({
      root,
      module: "ignition/modules/Protocol.ts",
      parameters: "ignition/parameters/local.json",
      network: "localhost",
      env: serviceEnv(root),
    }),
  );
  const addresses = readProtocolAddresses(chainId);
  say(`deployed (addresses below; Ignition keeps its record in ignition/deployments/chain-${chainId}/)`);
  if (o.indexer === true) {
    // Each run deploys on a new chain: the previous run's rows belong to another history.
    const dataDir = cache("indexer");
    rmSync(dataDir, { recursive: true, force: true });
    await must("starting the indexer", () =>
      supervisor.start(
        indexerService({
          host: HOST,
          port: INDEXER.port,
          rpcUrl: RPC_URL,
          chainId,
          dataDir,
          schema: "tideway",
          logFile: cache("indexer.log"),
          restart: {},
        }),
      ),
    );
    say(
      `  the indexer is up on ${INDEXER_URL} (/network, /edges, /epochs, GraphQL /graphql, SQL /sql; PGlite in ${o.cacheDir}/indexer, log ${o.cacheDir}/indexer.log)`,
    );
  }

  begin(
    "setting up the demo: funding accounts, registering three verifiers, a governance proposal to allowlist the operator and approve them",
  );
  const accounts = await clients.accounts();
  const participants = demoAccounts(accounts);
  const governed = await must("the demo setup", () => setUpGovernedDemo(clients, addresses, participants, say));

  begin(
    `registering three edges for the operator and starting them on ${EDGES.map((e) => url(e.port)).join(", ")} (node edge/main.ts --config ${o.cacheDir}/edge-N.json; logs ${o.cacheDir}/edge-N.log)`,
  );
  const edges = await must("registering the edges", () => registerDemoEdges(clients, addresses, participants, say));
  const { edgeIds } = edges;
  for (const [i, e] of EDGES.entries()) {
    await must(`starting edge #${edgeIds[i]}`, () =>
      startEdge(supervisor, {
        name: `edge #${edgeIds[i]}`,
        root,
        edgeId: edgeIds[i]!,
        host: HOST,
        port: e.port,
        rpcUrl: RPC_URL,
        addresses,
        signingKey: edges.edgeKeys[i]!,
        model: MODEL,
        dataDir: path.join(o.cacheDir, `edge-${i + 1}`),
        configFile: cache(`edge-${i + 1}.json`),
        logFile: cache(`edge-${i + 1}.log`),
        wrongAnswerRate: e.wrongAnswerRate,
        // Behind NAT: it dials the router, which multiplexes requests over that one socket.
        overrides: e.nat === true ? { router: { url: `ws://${HOST}:${ROUTER.port}/tideway/v1/link`, reportIntervalMs: 1_000 } } : undefined,
      }),
    );
    say(
      `  edge #${edgeIds[i]} is serving ${e.nat === true ? `behind NAT: it dials the router (${ROUTER_URL}) and serves over that link` : `on ${url(e.port)}`} (its key checked against the registry)${e.wrongAnswerRate === undefined ? "" : `: it answers ${e.wrongAnswerRate * 100}% of chat completions WRONGLY, and signs them`}`,
    );
  }

  begin(
    `starting one Redis per verifier on ports ${VERIFIERS.map((v) => v.redisPort).join(", ")} and one for the router on ${ROUTER.redisPort} (AOF on, noeviction; data ${o.cacheDir}/redis-N, logs ${o.cacheDir}/redis-N.log)`,
  );
  const redisPorts = [...VERIFIERS.map((v) => v.redisPort), ROUTER.redisPort];
  for (const [i, port] of redisPorts.entries())
    await must("starting Redis", () =>
      startRedis(supervisor, {
        name: i < VERIFIERS.length ? `Redis of verifier #${i + 1}` : "Redis of the router",
        host: HOST,
        port,
        dir: cache(`redis-${i + 1}`),
        logFile: cache(`redis-${i + 1}.log`),
      }),
    );

  const routerSecret = generatePrivateKey();
  const routerKey = privateKeyToAccount(routerSecret);
  begin(
    `starting the router on ${ROUTER_URL} (node router/main.ts --config ${o.cacheDir}/router.json; log ${o.cacheDir}/router.log): OpenAI-compatible front door, edges from the chain, edge #${edgeIds[EDGES.findIndex((e) => e.nat === true)]} linked over WebSocket`,
  );
  await must("funding the router's key", () => fund(clients, addresses, participants.admin, routerKey.address, { eth: 10n ** 19n }));
  await must("starting the router", () =>
    startRouter(supervisor, {
      name: "the router",
      root,
      host: HOST,
      port: ROUTER.port,
      redisUrl: `redis://${HOST}:${ROUTER.redisPort}`,
      redisPrefix: ROUTER_PREFIX,
      rpcUrl: RPC_URL,
      addresses,
      key: routerSecret,
      configFile: cache("router.json"),
      logFile: cache("router.log"),
    }),
  );
  say(`  the router is up on ${ROUTER_URL} (voucher key ${routerKey.address}, 10 ETH for the gas of the sessions it opens for tenants)`);

  const rules = await readRules(clients, addresses);
  begin(`moving the clock to the first epoch in which the edges' stake earns (new stake warms up for ${rules.warmUp} epochs)`);
  const firstEpoch = await must("moving the clock", () => advanceToFirstEarningEpoch(clients, addresses, edgeIds, say));
  const earning = await Promise.all(edgeIds.map((id) => stakeOf(clients, addresses, id)));
  say(`  epoch ${firstEpoch}: earning stake ${earning.map(([, e], i) => `#${edgeIds[i]} ${tokens(e)}`).join(", ")}`);

  begin(
    `starting three verifiers on ${VERIFIERS.map((v) => url(v.port)).join(", ")} (node verifier/main.ts --config ${o.cacheDir}/verifier-N.json; logs ${o.cacheDir}/verifier-N.log)`,
  );
  const followFrom = await clients.public.getBlockNumber();
  for (const [i, v] of VERIFIERS.entries()) {
    await must(`starting verifier #${i + 1}`, () =>
      startVerifier(supervisor, {
        name: `verifier #${i + 1}`,
        root,
        host: HOST,
        port: v.port,
        redisUrl: `redis://${HOST}:${v.redisPort}`,
        redisPrefix: `v${i + 1}`,
        rpcUrl: RPC_URL,
        addresses,
        key: governed.verifierSecrets[i]!,
        challengePayerKey: governed.challengePayers[i]!,
        configFile: cache(`verifier-${i + 1}.json`),
        logFile: cache(`verifier-${i + 1}.log`),
      }),
    );
    say(`  verifier #${i + 1} is up on ${url(v.port)} (key ${governed.verifierKeys[i]!.address}, Redis ${v.redisPort})`);
  }
  return { chainId, clients, addresses, accounts, participants, governed, edgeIds, routerKey, firstEpoch, followFrom };
}

export interface DemoTenant {
  dapp: DemoDapp;
  apiKey: string;
  tenantId: string;
  /** The router's Redis (the tenant store, the voucher ledger); the caller disconnects it. */
  routerRedis: Redis;
}

/** The demo dApp becomes a tenant of the router: it deposits `escrow`, authorizes the router's key and gets an API key. */
export async function openDemoTenant(network: DemoNetwork, escrow: bigint = 1_000n * TOKEN): Promise<DemoTenant> {
  const routerRedis = new Redis(`redis://${HOST}:${ROUTER.redisPort}`);
  // Its errors surface where it is used; a Redis that stops at the end is no news.
  routerRedis.on("error", () => undefined);
  await setUpDemoTenant(network.clients, network.addresses, {
    payer: network.participants.dapp,
    router: network.routerKey.address,
    escrow,
  });
  const tenant = await createTenantStore(routerRedis, ROUTER_PREFIX).add({ name: "demo dApp", payer: network.participants.dapp });
  const dapp = createDemoDapp({ baseURL: `${ROUTER_URL}/v1`, apiKey: tenant.apiKey, model: MODEL });
  return { dapp, apiKey: tenant.apiKey, tenantId: String(tenant.tenant.id), routerRedis };
}
