// `npm start`: the whole Tideway network on one machine, until Ctrl-C. The steps of the README,
// each a call into the devnet library (devnet/): compile; start `hardhat node` (a block every
// second); deploy with Ignition; fund the demo accounts, register three verifiers and approve them
// with the operator's allowlisting through a governance proposal; register and start three edges
// (#2 behind NAT, reached only over its link to the router; #3 answers half of its chat
// completions wrongly, and signs them); start one Redis per verifier and one for the router; start
// the router; move the clock to the first epoch the stake earns in; start the verifiers; a dApp
// using the official openai client asks through the router, then keeps sending traffic, and one
// streamed answer survives the kill of the edge serving it. Then it prints the network and follows
// the chain. A crashed service is restarted; Ctrl-C stops everything in reverse order (edges
// redeem their vouchers).
import path from "node:path";
import { fileURLToPath } from "node:url";

import { Redis } from "ioredis";
import { http } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";

import { readProtocolAddresses } from "../lib/protocol/addresses.ts";
import { ONE_TOKEN as TOKEN } from "../lib/protocol/units.ts";
import { deployWithIgnition, devnetClients, hardhatBin, runCommand, setIntervalMining, startHardhatNode } from "../devnet/chain.ts";
import { createDemoDapp, redeemedByEdge, setUpDemoTenant, type DemoDapp } from "../devnet/dapp.ts";
import {
  advanceToFirstEarningEpoch,
  DELEGATIONS,
  demoAccounts,
  demoPorts,
  demoRoles,
  EDGES,
  HOST,
  MODEL,
  QUESTIONS,
  RPC_PORT,
  RPC_URL,
  registerDemoEdges,
  ROUTER,
  ROUTER_URL,
  setUpGovernedDemo,
  stakeOf,
  url,
  VERIFIERS,
} from "../devnet/demo.ts";
import { createChainFollower, type ChainFollower } from "../devnet/follower.ts";
import { createLifecycle } from "../devnet/lifecycle.ts";
import { fund } from "../devnet/protocol.ts";
import { portsInUse, rpcChainId } from "../devnet/readiness.ts";
import { followerLine, hardhatCommand, networkSummary, readRules, redeemedLine, tokens } from "../devnet/report.ts";
import { followRouterTraffic, showFailover, signedByRouter } from "../devnet/routerDemo.ts";
import { serviceEnv, startEdge, startRedis, startRouter, startVerifier } from "../devnet/services.ts";
import { createTenantStore } from "../router/tenants/store.ts";
import { createSupervisor, describeEvent } from "../devnet/supervisor.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const ROUTER_PREFIX = "router";
const cache = (file: string) => path.join(ROOT, "cache", file);

let step = 0;
const say = (message: string) => console.log(`[start] ${message}`);
const begin = (message: string) => say(`(${++step}/11) ${message}`);
let dapp: DemoDapp | undefined;
let stopTrafficLines: (() => void) | undefined;
let routerRedis: Redis | undefined;
let signedByEdge: bigint[] | undefined;
let follower: ChainFollower | undefined;
let edgeIds: bigint[] = [];
const supervisor = createSupervisor({
  env: serviceEnv(ROOT),
  onEvent: (e) => {
    say(describeEvent(e));
    // Everything runs on the node's chain: without it there is no network left to keep.
    if (e.type === "exited" && e.name === "the Hardhat node") void lifecycle.shutdown("the node exited", 1);
  },
});
const lifecycle = createLifecycle({
  supervisor,
  say,
  beforeStop: () => {
    dapp?.stopTraffic();
    follower?.stop();
    stopTrafficLines?.();
  },
  // The edges redeem their vouchers as they stop: what they got is on-chain while the node still runs.
  beforeServiceStop: async (service) => {
    // What the router signed is read before its Redis stops; what the edges redeemed (they redeem
    // as they stop) is read while the node still runs.
    if (service.name === "Redis of the router" && dapp !== undefined && routerRedis !== undefined) {
      const { sessions } = await redeemedByEdge(clients, addresses, participants.dapp, edgeIds);
      signedByEdge = await signedByRouter(routerRedis, ROUTER_PREFIX, sessions, edgeIds);
      routerRedis.disconnect();
    }
    if (service.name === "the Hardhat node" && signedByEdge !== undefined) {
      const { redeemed } = await redeemedByEdge(clients, addresses, participants.dapp, edgeIds);
      say(redeemedLine(edgeIds, redeemed, signedByEdge));
    }
  },
});
const { must } = lifecycle;

say(`Tideway local network (Node ${process.version}, ${ROOT})`);
const ports = demoPorts();
begin(`checking that the ports are free: ${ports.map(([p]) => p).join(", ")}`);
const taken = await portsInUse(ports, HOST, RPC_PORT);
if (taken.length > 0)
  await lifecycle.fail(`in use on ${HOST}: ${taken.join(", ")}. Stop whatever listens there, then run \`npm start\` again`);

begin("compiling the contracts (hardhat build --build-profile production --no-tests)");
await must("compilation", () =>
  runCommand(hardhatBin(ROOT), ["build", "--build-profile", "production", "--no-tests"], { cwd: ROOT, env: serviceEnv(ROOT) }),
);

begin(`starting a Hardhat node on ${RPC_URL} (its log: cache/hardhat-node.log), mining a block every second`);
await must("starting the node", () =>
  startHardhatNode(supervisor, { root: ROOT, host: HOST, port: RPC_PORT, logFile: cache("hardhat-node.log") }),
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
    root: ROOT,
    module: "ignition/modules/Protocol.ts",
    parameters: "ignition/parameters/local.json",
    network: "localhost",
    env: serviceEnv(ROOT),
  }),
);
const addresses = readProtocolAddresses(chainId);
say(`deployed (addresses below; Ignition keeps its record in ignition/deployments/chain-${chainId}/)`);

begin(
  "setting up the demo: funding accounts, registering three verifiers, a governance proposal to allowlist the operator and approve them",
);
const accounts = await clients.accounts();
const participants = demoAccounts(accounts);
const governed = await must("the demo setup", () => setUpGovernedDemo(clients, addresses, participants, say));

begin(
  `registering three edges for the operator and starting them on ${EDGES.map((e) => url(e.port)).join(", ")} (node edge/main.ts --config cache/edge-N.json; logs cache/edge-N.log)`,
);
const edges = await must("registering the edges", () => registerDemoEdges(clients, addresses, participants, say));
edgeIds = edges.edgeIds;
for (const [i, e] of EDGES.entries()) {
  await must(`starting edge #${edgeIds[i]}`, () =>
    startEdge(supervisor, {
      name: `edge #${edgeIds[i]}`,
      root: ROOT,
      edgeId: edgeIds[i]!,
      host: HOST,
      port: e.port,
      rpcUrl: RPC_URL,
      addresses,
      signingKey: edges.edgeKeys[i]!,
      model: MODEL,
      dataDir: `cache/edge-${i + 1}`,
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
  `starting one Redis per verifier on ports ${VERIFIERS.map((v) => v.redisPort).join(", ")} and one for the router on ${ROUTER.redisPort} (AOF on, noeviction; data cache/redis-N, logs cache/redis-N.log)`,
);
for (const [i, v] of VERIFIERS.entries())
  await must("starting Redis", () =>
    startRedis(supervisor, {
      name: `Redis of verifier #${i + 1}`,
      host: HOST,
      port: v.redisPort,
      dir: cache(`redis-${i + 1}`),
      logFile: cache(`redis-${i + 1}.log`),
    }),
  );
await must("starting Redis", () =>
  startRedis(supervisor, {
    name: "Redis of the router",
    host: HOST,
    port: ROUTER.redisPort,
    dir: cache(`redis-${VERIFIERS.length + 1}`),
    logFile: cache(`redis-${VERIFIERS.length + 1}.log`),
  }),
);

const routerSecret = generatePrivateKey();
const routerKey = privateKeyToAccount(routerSecret);
begin(
  `starting the router on ${ROUTER_URL} (node router/main.ts --config cache/router.json; log cache/router.log): OpenAI-compatible front door, edges from the chain, edge #${edgeIds[EDGES.findIndex((e) => e.nat === true)]} linked over WebSocket`,
);
await must("funding the router's key", () => fund(clients, addresses, participants.admin, routerKey.address, { eth: 10n ** 19n }));
await must("starting the router", () =>
  startRouter(supervisor, {
    name: "the router",
    root: ROOT,
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
  `starting three verifiers on ${VERIFIERS.map((v) => url(v.port)).join(", ")} (node verifier/main.ts --config cache/verifier-N.json; logs cache/verifier-N.log)`,
);
const followFrom = await clients.public.getBlockNumber();
for (const [i, v] of VERIFIERS.entries()) {
  await must(`starting verifier #${i + 1}`, () =>
    startVerifier(supervisor, {
      name: `verifier #${i + 1}`,
      root: ROOT,
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

begin("a dApp (the official openai client, baseURL and apiKey only) asks through the router; then it keeps sending traffic");
routerRedis = new Redis(`redis://${HOST}:${ROUTER.redisPort}`);
// Its errors surface where it is used; a Redis that stops at Ctrl-C is no news.
routerRedis.on("error", () => undefined);
let apiKey: string | undefined;
const demo = await (async () => {
  try {
    await setUpDemoTenant(clients, addresses, { payer: participants.dapp, router: routerKey.address, escrow: 1_000n * TOKEN });
    const tenant = await createTenantStore(routerRedis!, ROUTER_PREFIX).add({ name: "demo dApp", payer: participants.dapp });
    apiKey = tenant.apiKey;
    say(
      `  the dApp ${participants.dapp} deposited ${tokens(1_000n * TOKEN)} and authorized the router's key; \`npm run router -- tenant add\` gave it an API key (tenant ${tenant.tenant.id})`,
    );
    dapp = createDemoDapp({ baseURL: `${ROUTER_URL}/v1`, apiKey, model: MODEL });
    const first = await dapp.firstRequest("Hello, Tideway!");
    say(
      `  client.chat.completions.create(...) → "${first.answer.trim().slice(0, 60)}…" from edge #${first.edge} (cost ${first.cost} wei; the router opened the dApp's session and signed the voucher)`,
    );
    return `the demo dApp (an OpenAI client) was answered by edge #${first.edge} through the router and keeps asking every 3 s`;
  } catch (err) {
    // The network is fine without the demo's traffic: it keeps running.
    say(
      `  ✗ the dApp demo failed: ${(err as Error).message.split("\n")[0]}. The network keeps running without demo traffic; rerun \`npm start\` to try the demo again`,
    );
    return "the demo dApp is not running (see above)";
  }
})();
const edgeStatus = new Map<bigint, string>(edgeIds.map((id) => [id, "Active"]));
if (dapp !== undefined) {
  const demoDapp = dapp;
  demoDapp.startTraffic(QUESTIONS);
  stopTrafficLines = followRouterTraffic(ROUTER_URL, say);
  // Once per run: kill -9 the edge serving a streamed answer, mid-stream; the router resumes it elsewhere.
  const misbehaving = new Set(EDGES.flatMap((e, i) => (e.wrongAnswerRate === undefined ? [] : [edgeIds[i]!.toString()])));
  setTimeout(() => void showFailover(demoDapp, supervisor, misbehaving, say), 5_000);
}

const summary = await networkSummary(clients, addresses, {
  rpcUrl: RPC_URL,
  chainId,
  proposalId: governed.proposalId,
  operator: participants.operator,
  model: MODEL,
  edges: EDGES.map((e, i) => ({ ...e, id: edgeIds[i]!, url: url(e.port), delegations: DELEGATIONS.filter((d) => d.edge === i) })),
  demo,
  router: { url: ROUTER_URL, key: routerKey.address, redisPort: ROUTER.redisPort, apiKey },
  verifiers: VERIFIERS.map((v, i) => ({ url: url(v.port), key: governed.verifierKeys[i]!.address, redisPort: v.redisPort })),
  accounts: demoRoles(edgeIds).map((role, i) => ({ address: accounts[i]!, role })),
  newcomer: 7,
  hh: hardhatCommand(ROOT),
});
console.log(summary.join("\n"));

follower = createChainFollower(clients, { addresses, verifierUrls: VERIFIERS.map((v) => url(v.port)), fromBlock: followFrom, firstEpoch });
await follower.run(
  (event) => {
    if (event.type === "slashed") edgeStatus.set(event.edgeId, event.status);
    say(followerLine(event, { edgeIds, edgeStatus, traffic: dapp?.traffic ?? { paid: 0, failed: 0, lastError: "" } }));
  },
  { onError: (err) => say(`(following the chain: ${err.message.split("\n")[0]}; retrying)`) },
);
