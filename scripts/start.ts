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

import { encodeFunctionData, http, type Address } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";

import { readProtocolAddresses } from "../lib/protocol/addresses.ts";
import { edgeRegistryAbi, edgeStakingAbi, edgeTokenAbi, verifierSetAbi } from "../lib/protocol/abis.ts";
import {
  advanceTo,
  chainTime,
  deployWithIgnition,
  devnetClients,
  hardhatBin,
  runCommand,
  setIntervalMining,
  startHardhatNode,
} from "../devnet/chain.ts";
import { createDemoDapp, type DemoDapp } from "../devnet/dapp.ts";
import { createChainFollower, type ChainFollower } from "../devnet/follower.ts";
import { passProposal } from "../devnet/governance.ts";
import { bond, fund, registerEdge, registerVerifier } from "../devnet/protocol.ts";
import { portIsFree, rpcChainId } from "../devnet/readiness.ts";
import { followerLine, hardhatCommand, minutes, readRules, tokens, tryCommands } from "../devnet/report.ts";
import { serviceEnv, startEdge, startRedis, startVerifier } from "../devnet/services.ts";
import { createSupervisor, describeEvent } from "../devnet/supervisor.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const HOST = "127.0.0.1";
const RPC_PORT = 8545;
const RPC_URL = `http://${HOST}:${RPC_PORT}`;
const MODEL = "tideway/reference-1";
const TOKEN = 10n ** 18n;
/** The edges: port, self-bond, and the fault injected into the last one. */
const EDGES = [
  { port: 8080, selfBond: 1_000n * TOKEN },
  { port: 8081, selfBond: 2_000n * TOKEN },
  { port: 8082, selfBond: 1_500n * TOKEN, wrongAnswerRate: 0.5 },
];
/** Verifiers (quorum 2), each with its own Redis, as independent operators run them. */
const VERIFIERS = [
  { port: 9100, redisPort: 6390 },
  { port: 9101, redisPort: 6391 },
  { port: 9102, redisPort: 6392 },
];
/** Alice backs edge #1, bob edge #2 (so the three pools' stakes differ). */
const DELEGATIONS = [
  { who: "alice", edge: 0, amount: 1_000n * TOKEN },
  { who: "bob", edge: 1, amount: 500n * TOKEN },
] as const;
const QUESTIONS = [
  "What is an edge network?",
  "Summarize the tides in one line.",
  "Name three rivers.",
  "Why is the sky blue?",
  "Write a haiku about latency.",
  "What is 17 × 3?",
];
const cache = (file: string) => path.join(ROOT, "cache", file);
const url = (port: number) => `http://${HOST}:${port}`;

let step = 0;
const say = (message: string) => console.log(`[start] ${message}`);
const begin = (message: string) => say(`(${++step}/10) ${message}`);
const supervisor = createSupervisor({
  env: serviceEnv(ROOT),
  onEvent: (e) => {
    say(describeEvent(e));
    // Everything runs on the node's chain: without it there is no network left to keep.
    if (e.type === "exited" && e.name === "the Hardhat node") void shutdown("the node exited", 1);
  },
});
let dapp: DemoDapp | undefined;
let follower: ChainFollower | undefined;
let stopping = false;

async function shutdown(reason: string, code = 0): Promise<never> {
  if (!stopping) {
    stopping = true;
    say(`${reason}: stopping the network`);
    dapp?.stopTraffic();
    follower?.stop();
    await supervisor.stopAll(async (service) => {
      if (!service.running()) return;
      say(`  stopping ${service.name}${service.name.startsWith("edge") ? " (it drains its requests and redeems its vouchers)" : ""}`);
      if (service.name === "the Hardhat node" && dapp?.sessionId !== undefined) {
        const redeemed = await dapp.redeemed();
        say(
          `  redeemed on-chain from the dApp's session ${dapp.sessionId}: ${redeemed.map((r, i) => `#${edgeIds[i]} ${tokens(r, 6)}`).join(", ")} (signed: ${edgeIds.map((id) => `#${id} ${tokens(dapp!.signedFor.get(id) ?? 0n, 6)}`).join(", ")})`,
        );
      }
    });
    say("everything stopped; bye");
    process.exit(code);
  }
  return new Promise<never>(() => undefined); // the first shutdown exits
}
// While stopping, what fails in the setup (it runs on until it needs a stopped service) is no news.
const fail = (message: string) => {
  if (!stopping) console.error(`[start] ✗ ${message}`);
  return shutdown("setup failed", 1);
};
process.on("SIGINT", () => void shutdown("SIGINT received"));
process.on("SIGTERM", () => void shutdown("SIGTERM received"));
// `npm start` runs under `sh -c`, which dies on npm's SIGTERM without passing it on.
const parentPid = process.ppid;
setInterval(() => process.ppid !== parentPid && void shutdown("the process that started this one has exited"), 1_000).unref();
process.on("uncaughtException", (err) => void fail(`unexpected error: ${err.stack ?? err.message}`));
process.on("unhandledRejection", (err) => void fail(`unexpected error: ${(err as Error)?.stack ?? String(err)}`));
/** Runs a setup step; on failure, says what failed and stops the network in order. */
async function must<T>(what: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    return fail(`${what} failed: ${(err as Error).message}`);
  }
}

say(`Tideway local network (Node ${process.version}, ${ROOT})`);
const ports: Array<[number, string]> = [
  [RPC_PORT, "the node"],
  ...EDGES.map((e, i): [number, string] => [e.port, `edge #${i + 1}`]),
  ...VERIFIERS.flatMap(
    (v, i): Array<[number, string]> => [
      [v.port, `verifier #${i + 1}`],
      [v.redisPort, `Redis of verifier #${i + 1}`],
    ],
  ),
];
begin(`checking that the ports are free: ${ports.map(([p]) => p).join(", ")}`);
const taken = [];
for (const [port, what] of ports)
  if (!(await portIsFree(port, HOST)))
    taken.push(
      `${port} (${what}${port === RPC_PORT && (await rpcChainId(RPC_URL)) !== undefined ? ": a JSON-RPC node, probably another `npm start` or `hardhat node`" : ""})`,
    );
if (taken.length > 0) await fail(`in use on ${HOST}: ${taken.join(", ")}. Stop whatever listens there, then run \`npm start\` again`);

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
const [admin, operator, alice, bob, verifierOp1, verifierOp2, dappAccount, newcomer, verifierOp3] = accounts as [Address, ...Address[]];
const verifierOps = [verifierOp1!, verifierOp2!, verifierOp3!];
// Throwaway keys for this local chain, like the node's well-known accounts.
const verifierSecrets = VERIFIERS.map(() => generatePrivateKey());
const verifierKeys = verifierSecrets.map((k) => privateKeyToAccount(k));
const challengePayers = VERIFIERS.map(() => generatePrivateKey());
const proposalId = await must("the demo setup", async () => {
  const funds: Array<[Address, string, bigint, bigint]> = [
    [operator!, "the operator", 100_000n * TOKEN, 0n],
    [alice!, "the delegator alice", 50_000n * TOKEN, 0n],
    [bob!, "the delegator bob", 50_000n * TOKEN, 0n],
    ...[...verifierOps, newcomer!].map((a): [Address, string, bigint, bigint] => [a, "a verifier operator", 20_000n * TOKEN, 0n]),
    [dappAccount!, "the dApp", 50_000n * TOKEN, 0n],
    ...verifierKeys.map((k, i): [Address, string, bigint, bigint] => [
      k.address,
      `verifier #${i + 1}'s signing key (it sends attestations, fault reports and claims)`,
      0n,
      10n ** 19n,
    ]),
    ...challengePayers.map((k, i): [Address, string, bigint, bigint] => [
      privateKeyToAccount(k).address,
      `verifier #${i + 1}'s challenge payer`,
      5_000n * TOKEN,
      10n ** 19n,
    ]),
  ];
  for (const [to, who, amount, eth] of funds) {
    say(
      `  send ${[eth > 0n ? `${eth / 10n ** 18n} ETH` : "", amount > 0n ? tokens(amount) : ""].filter(Boolean).join(" and ")} to ${who} ${to}`,
    );
    await fund(clients, addresses, admin, to, { tokens: amount, eth });
  }
  const ids = [];
  for (const [i, op] of verifierOps.entries()) {
    ids.push(await registerVerifier(clients, addresses, op, verifierKeys[i]!, url(VERIFIERS[i]!.port)));
    say(`  verifier operator ${op} registers verifier #${ids[i]} (key ${verifierKeys[i]!.address}, ${url(VERIFIERS[i]!.port)}): Pending`);
  }
  const calls = [
    {
      target: addresses.registry,
      data: encodeFunctionData({ abi: edgeRegistryAbi, functionName: "setOperatorAllowlisted", args: [operator!, true] }),
    },
    ...ids.map((id) => ({
      target: addresses.verifierSet,
      data: encodeFunctionData({ abi: verifierSetAbi, functionName: "approve", args: [id] }),
    })),
  ];
  const description = `Demo: allowlist operator ${operator}; approve verifiers ${ids.map((id) => `#${id}`).join(", ")}`;
  const id = await passProposal(clients, {
    governor: addresses.governor,
    token: addresses.token,
    voter: admin,
    calls,
    description,
    onStep: (s) => say(`  ${s}`),
  });
  say(
    `  ✓ proposal Executed: operator ${operator} allowlisted, ${await clients.public.readContract({ address: addresses.verifierSet, abi: verifierSetAbi, functionName: "activeCount" })} verifiers active — done through governance`,
  );
  return id;
});

begin(
  `registering three edges for the operator and starting them on ${EDGES.map((e) => url(e.port)).join(", ")} (node edge/main.ts --config cache/edge-N.json; logs cache/edge-N.log)`,
);
const edgeKeys = EDGES.map(() => generatePrivateKey());
const edgeIds: bigint[] = await must("registering the edges", async () => {
  const ids = [];
  for (const [i, e] of EDGES.entries()) {
    const key = privateKeyToAccount(edgeKeys[i]!);
    ids.push(
      await registerEdge(
        clients,
        addresses,
        operator!,
        key,
        { endpoint: url(e.port), region: "local", capacity: 100, models: [MODEL] },
        e.selfBond,
      ),
    );
    await fund(clients, addresses, admin, key.address, { eth: 10n ** 18n });
    say(
      `  operator registers edge #${ids[i]} (signing key ${key.address}, ${url(e.port)}) and bonds ${tokens(e.selfBond)}; its key gets 1 ETH for the gas of its redemptions`,
    );
  }
  for (const d of DELEGATIONS) {
    await bond(clients, addresses, d.who === "alice" ? alice! : bob!, ids[d.edge]!, d.amount, "delegate");
    say(`  ${d.who} delegates ${tokens(d.amount)} to edge #${ids[d.edge]}`);
  }
  return ids;
});
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
      signingKey: edgeKeys[i]!,
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
const stakeOf = (id: bigint) =>
  clients.public.readContract({ address: addresses.staking, abi: edgeStakingAbi, functionName: "edgeStake", args: [id] });
const firstEpoch = await must("moving the clock", async () => {
  while (!(await Promise.all(edgeIds.map(stakeOf))).every(([active, earning]) => earning > 0n && earning === active)) {
    const next =
      (await clients.public.readContract({ address: addresses.staking, abi: edgeStakingAbi, functionName: "currentEpoch" })) + 1n;
    const start = await clients.public.readContract({
      address: addresses.staking,
      abi: edgeStakingAbi,
      functionName: "epochStartTime",
      args: [next],
    });
    if (start > (await chainTime(clients)))
      say(
        `  advance the clock to the start of epoch ${next} (+${start - (await chainTime(clients))} s: evm_setNextBlockTimestamp, evm_mine)`,
      );
    await advanceTo(clients, start);
  }
  return clients.public.readContract({ address: addresses.staking, abi: edgeStakingAbi, functionName: "currentEpoch" });
});
say(
  `  epoch ${firstEpoch}: earning stake ${(await Promise.all(edgeIds.map(stakeOf))).map(([, earning], i) => `#${edgeIds[i]} ${tokens(earning)}`).join(", ")}`,
);

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
      key: verifierSecrets[i]!,
      challengePayerKey: challengePayers[i]!,
      configFile: cache(`verifier-${i + 1}.json`),
      logFile: cache(`verifier-${i + 1}.log`),
    }),
  );
  say(`  verifier #${i + 1} is up on ${url(v.port)} (key ${verifierKeys[i]!.address}, Redis ${v.redisPort})`);
}

begin("a dApp deposits, opens a session and pays edge #1 for a chat completion with a voucher; then it keeps sending paid traffic");
const gateway = privateKeyToAccount(generatePrivateKey());
dapp = createDemoDapp(clients, {
  chainId,
  addresses,
  payer: dappAccount!,
  gateway,
  model: MODEL,
  edges: EDGES.map((e, i) => ({ edgeId: edgeIds[i]!, url: url(e.port) })),
});
const demo = await (async () => {
  try {
    const sessionId = await dapp.setup({ escrow: 1_000n * TOKEN, budget: 100n * TOKEN, days: 7n });
    say(
      `  the dApp ${dappAccount} deposited ${tokens(1_000n * TOKEN)}, authorized the gateway key ${gateway.address} and opened session ${sessionId} (100 EDGE, 7 days)`,
    );
    const first = await dapp.firstRequest(0, "Hello, Tideway!");
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
if (dapp.sessionId !== undefined)
  dapp.startTraffic(() => edgeIds.flatMap((id, i) => (edgeStatus.get(id) === "Active" ? [i] : [])), QUESTIONS);

const hh = hardhatCommand(ROOT);
const balances = await Promise.all(
  accounts
    .slice(0, 9)
    .map((a) => clients.public.readContract({ address: addresses.token, abi: edgeTokenAbi, functionName: "balanceOf", args: [a] })),
);
const roles = [
  "treasury, votes with its tokens",
  `operator of edges ${edgeIds.map((id) => `#${id}`).join(", ")} (allowlisted)`,
  `delegator (edge #${edgeIds[0]})`,
  `delegator (edge #${edgeIds[1]})`,
  "operator of verifier #1",
  "operator of verifier #2",
  "the demo dApp (its session is the demo's: leave it open)",
  "the newcomer: a spare account for your own verifier or dApp",
  "operator of verifier #3",
];
const stakes = await Promise.all(edgeIds.map(stakeOf));
console.log(
  [
    "",
    `Tideway is running on ${RPC_URL} (chain ${chainId}).`,
    "",
    "Contracts",
    ...(["token", "registry", "staking", "verifierSet", "settlement", "market", "timelock", "governor"] as const).map(
      (k) => `  ${k.padEnd(12)} ${addresses[k]}`,
    ),
    "",
    "Rules on this network (ignition/parameters/local.json)",
    ...(await readRules(clients, addresses)).lines,
    "",
    `Set up through governance: proposal ${proposalId.toString().slice(0, 12)}… executed (delegate → propose → vote → queue → execute, the clock moved with evm_setNextBlockTimestamp/evm_mine)`,
    "",
    `Edges of operator ${operator} (node edge/main.ts --config cache/edge-N.json; logs cache/edge-N.log; see edge/README.md)`,
    ...edgeIds.map(
      (id, i) =>
        `  #${id} ${url(EDGES[i]!.port)}  stake ${tokens(stakes[i]![0])} (self-bond ${tokens(EDGES[i]!.selfBond)}${DELEGATIONS.filter(
          (d) => d.edge === i,
        )
          .map((d) => ` + ${d.who} ${tokens(d.amount)}`)
          .join("")})${EDGES[i]!.wrongAnswerRate === undefined ? "" : `  ← answers ${EDGES[i]!.wrongAnswerRate! * 100}% wrongly`}`,
    ),
    `  each serves ${MODEL} behind the OpenAI API, paid by vouchers; ${demo}`,
    `  curl -s ${url(EDGES[0]!.port)}/v1/models ; curl -s ${url(EDGES[0]!.port)}/health ; curl -s ${url(EDGES[0]!.port)}/metrics | grep '^tideway_edge'`,
    "",
    `Verifiers (quorum ${rules.quorum} of 3, each with its own Redis; see verifier/README.md)`,
    ...VERIFIERS.map(
      (v, i) =>
        `  #${i + 1} ${url(v.port)}  key ${verifierKeys[i]!.address}; Redis ${v.redisPort}; config cache/verifier-${i + 1}.json, log cache/verifier-${i + 1}.log`,
    ),
    `  curl -s ${url(VERIFIERS[0]!.port)}/health ; curl -s ${url(VERIFIERS[0]!.port)}/metrics | grep '^tideway_verifier_challenges'`,
    "",
    "Demo accounts (the node's unlocked accounts: choose one with --from <n>)",
    ...roles.map((role, i) => `  --from ${i}  ${accounts[i]}  ${role}, ${tokens(balances[i]!)}`),
    "",
    ...tryCommands({
      hh,
      edgeIds,
      newcomer: 7,
      newVerifierKey: generatePrivateKey(),
      newEdgeKey: generatePrivateKey(),
      warmUp: minutes(rules.warmUp * rules.epochLength),
      thaw: minutes(rules.thawingPeriod),
      verifierUrl: url(VERIFIERS[0]!.port),
    }),
    "",
    "Logs: cache/hardhat-node.log, cache/edge-{1,2,3}.log, cache/verifier-{1,2,3}.log, cache/redis-{1,2,3}.log. A crashed service is restarted. Press Ctrl-C to stop everything.",
    "",
    `Following the chain: each epoch (${minutes(rules.epochLength)}) is attested a few seconds after its end, final ${minutes(rules.disputeWindow)} later, then claimed ("epoch N settled");`,
    `edge #${edgeIds[2]} should be slashed within the first epoch or two.`,
  ].join("\n"),
);

follower = createChainFollower(clients, { addresses, verifierUrls: VERIFIERS.map((v) => url(v.port)), fromBlock: followFrom, firstEpoch });
await follower.run(
  (event) => {
    if (event.type === "slashed") edgeStatus.set(event.edgeId, event.status);
    say(followerLine(event, { edgeIds, edgeStatus, traffic: dapp!.traffic }));
  },
  { onError: (err) => say(`(following the chain: ${err.message.split("\n")[0]}; retrying)`) },
);
