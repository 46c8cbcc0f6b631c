// `npm start`: the whole Tideway network on one machine, until Ctrl-C. The steps of the README,
// each a call into the devnet library (devnet/): compile; start `hardhat node` (a block every
// second); deploy with Ignition; fund the demo accounts, register three verifiers and approve them
// with the operator's allowlisting through a governance proposal; register and start three edges
// (#3 answers half of its chat completions wrongly, and signs them); start one Redis per verifier;
// move the clock to the first epoch the stake earns in; start the verifiers; a dApp pays edge #1,
// then keeps sending paid traffic. Then it prints the network and follows the chain. A crashed
// service is restarted; Ctrl-C stops everything in reverse order (edges redeem their vouchers).
import path from "node:path";
import { fileURLToPath } from "node:url";

import { http } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";

import { readProtocolAddresses } from "../lib/protocol/addresses.ts";
import { ONE_TOKEN as TOKEN } from "../lib/protocol/units.ts";
import { deployWithIgnition, devnetClients, hardhatBin, runCommand, setIntervalMining, startHardhatNode } from "../devnet/chain.ts";
import { createDemoDapp, type DemoDapp } from "../devnet/dapp.ts";
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
  setUpGovernedDemo,
  stakeOf,
  url,
  VERIFIERS,
} from "../devnet/demo.ts";
import { createChainFollower, type ChainFollower } from "../devnet/follower.ts";
import { createLifecycle } from "../devnet/lifecycle.ts";
import { portsInUse, rpcChainId } from "../devnet/readiness.ts";
import { followerLine, hardhatCommand, networkSummary, readRules, redeemedLine, tokens } from "../devnet/report.ts";
import { serviceEnv, startEdge, startRedis, startVerifier } from "../devnet/services.ts";
import { createSupervisor, describeEvent } from "../devnet/supervisor.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const cache = (file: string) => path.join(ROOT, "cache", file);

let step = 0;
const say = (message: string) => console.log(`[start] ${message}`);
const begin = (message: string) => say(`(${++step}/10) ${message}`);
let dapp: DemoDapp | undefined;
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
  },
  // The edges redeem their vouchers as they stop: what they got is on-chain while the node still runs.
  beforeServiceStop: async (service) => {
    if (service.name === "the Hardhat node" && dapp?.sessionId !== undefined)
      say(redeemedLine(dapp.sessionId, edgeIds, await dapp.redeemed(), dapp.signedFor));
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
    }),
  );
  say(
    `  edge #${edgeIds[i]} is serving on ${url(e.port)} (its key checked against the registry)${e.wrongAnswerRate === undefined ? "" : `: it answers ${e.wrongAnswerRate * 100}% of chat completions WRONGLY, and signs them`}`,
  );
}

begin(
  `starting one Redis per verifier on ports ${VERIFIERS.map((v) => v.redisPort).join(", ")} (AOF on, noeviction; data cache/redis-N, logs cache/redis-N.log)`,
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

begin("a dApp deposits, opens a session and pays edge #1 for a chat completion with a voucher; then it keeps sending paid traffic");
const gateway = privateKeyToAccount(generatePrivateKey());
const edgeUrls = EDGES.map((e, i) => ({ edgeId: edgeIds[i]!, url: url(e.port) }));
const demoDapp = createDemoDapp(clients, { chainId, addresses, payer: participants.dapp, gateway, model: MODEL, edges: edgeUrls });
dapp = demoDapp;
const demo = await (async () => {
  try {
    const sessionId = await demoDapp.setup({ escrow: 1_000n * TOKEN, budget: 100n * TOKEN, days: 7n });
    say(
      `  the dApp ${participants.dapp} deposited ${tokens(1_000n * TOKEN)}, authorized the gateway key ${gateway.address} and opened session ${sessionId} (100 EDGE, 7 days)`,
    );
    const first = await demoDapp.firstRequest(0, "Hello, Tideway!");
    say(
      `  POST /v1/chat/completions to edge #${edgeIds[0]}: 402, amount due ${first.due} wei; with a voucher signed by the gateway key: 200, "${first.answer.trim().slice(0, 60)}…" (cost ${first.cost} wei)`,
    );
    return `the dApp's session ${sessionId} paid edge #${edgeIds[0]} ${first.cost} wei for: "${first.answer.trim().slice(0, 50)}…"`;
  } catch (err) {
    // The network is fine without the demo's traffic: it keeps running.
    say(
      `  ✗ the dApp demo failed: ${(err as Error).message.split("\n")[0]}. The network keeps running without demo traffic; rerun \`npm start\` to try the demo again`,
    );
    return "the demo dApp is not running (see above)";
  }
})();
const edgeStatus = new Map<bigint, string>(edgeIds.map((id) => [id, "Active"]));
if (demoDapp.sessionId !== undefined)
  demoDapp.startTraffic(() => edgeIds.flatMap((id, i) => (edgeStatus.get(id) === "Active" ? [i] : [])), QUESTIONS);

const summary = await networkSummary(clients, addresses, {
  rpcUrl: RPC_URL,
  chainId,
  proposalId: governed.proposalId,
  operator: participants.operator,
  model: MODEL,
  edges: EDGES.map((e, i) => ({ ...e, id: edgeIds[i]!, url: url(e.port), delegations: DELEGATIONS.filter((d) => d.edge === i) })),
  demo,
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
    say(followerLine(event, { edgeIds, edgeStatus, traffic: demoDapp.traffic }));
  },
  { onError: (err) => say(`(following the chain: ${err.message.split("\n")[0]}; retrying)`) },
);
