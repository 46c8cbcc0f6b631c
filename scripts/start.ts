// `npm start`: the whole Tideway network on one machine, until Ctrl-C. The steps of the README,
// each a call into the devnet library (devnet/): compile; start `hardhat node` (a block every
// second); deploy with Ignition; start the indexer; fund the demo accounts, register three
// verifiers and approve them with the operator's allowlisting through a governance proposal;
// register and start three edges (#2 behind NAT, reached only over its link to the router; #3
// answers half of its chat completions wrongly, and signs them); start one Redis per verifier and
// one for the router; start the router; move the clock to the first epoch the stake earns in; start
// the verifiers; a dApp using the official openai client asks through the router, then keeps
// sending traffic, and one streamed answer survives the kill of the edge serving it. Then it prints
// the network and follows the chain. A crashed service is restarted; Ctrl-C stops everything in
// reverse order (edges redeem their vouchers).
import { fileURLToPath } from "node:url";

import type { Redis } from "ioredis";

import { ONE_TOKEN as TOKEN } from "../lib/protocol/units.ts";
import { redeemedByEdge, type DemoDapp } from "../devnet/dapp.ts";
import { DELEGATIONS, demoRoles, EDGES, MODEL, QUESTIONS, ROUTER, ROUTER_URL, RPC_URL, url, VERIFIERS } from "../devnet/demo.ts";
import { createChainFollower, type ChainFollower } from "../devnet/follower.ts";
import { createLifecycle } from "../devnet/lifecycle.ts";
import { openDemoTenant, ROUTER_PREFIX, startDemoNetwork } from "../devnet/network.ts";
import { followerLine, hardhatCommand, networkSummary, redeemedLine, tokens } from "../devnet/report.ts";
import { followRouterTraffic, showFailover, signedByRouter } from "../devnet/routerDemo.ts";
import { serviceEnv } from "../devnet/services.ts";
import { createSupervisor, describeEvent } from "../devnet/supervisor.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

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
const network = await startDemoNetwork({
  root: ROOT,
  cacheDir: "cache",
  command: "npm start",
  supervisor,
  must,
  fail: lifecycle.fail,
  begin,
  say,
  indexer: true,
});
const { clients, addresses, chainId, participants, governed, routerKey, firstEpoch, followFrom, accounts } = network;
edgeIds = network.edgeIds;

begin("a dApp (the official openai client, baseURL and apiKey only) asks through the router; then it keeps sending traffic");
let apiKey: string | undefined;
const demo = await (async () => {
  try {
    const tenant = await openDemoTenant(network);
    routerRedis = tenant.routerRedis;
    apiKey = tenant.apiKey;
    say(
      `  the dApp ${participants.dapp} deposited ${tokens(1_000n * TOKEN)} and authorized the router's key; \`npm run router -- tenant add\` gave it an API key (tenant ${tenant.tenantId})`,
    );
    dapp = tenant.dapp;
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
