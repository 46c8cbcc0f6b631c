// The demo network `npm start` runs: its shape (three edges, three verifiers, two delegators, the
// questions its dApp asks) and the on-chain steps that set it up. Each step says what it does
// through `say`, so that the output reads like the README's walk-through.
import { encodeFunctionData, type Address, type Hex, type LocalAccount } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";

import { edgeRegistryAbi, edgeStakingAbi, verifierSetAbi } from "../lib/protocol/abis.ts";
import type { ProtocolAddresses } from "../lib/protocol/addresses.ts";
import { ONE_TOKEN as TOKEN } from "../lib/protocol/units.ts";
import { advanceTo, chainTime, type DevnetClients } from "./chain.ts";
import { passProposal } from "./governance.ts";
import { bond, fund, registerEdge, registerVerifier } from "./protocol.ts";
import { tokens } from "./report.ts";

export const HOST = "127.0.0.1";
export const RPC_PORT = 8545;
export const RPC_URL = `http://${HOST}:${RPC_PORT}`;
export const MODEL = "tideway/reference-1";
/**
 * The edges: port, self-bond, the one behind NAT (it registers the router's relay as its endpoint
 * and dials the router; its port only serves its own link on loopback), and the fault injected
 * into the last one.
 */
export const EDGES: ReadonlyArray<{ port: number; selfBond: bigint; nat?: boolean; wrongAnswerRate?: number }> = [
  { port: 8080, selfBond: 1_000n * TOKEN },
  { port: 8081, selfBond: 2_000n * TOKEN, nat: true },
  { port: 8082, selfBond: 1_500n * TOKEN, wrongAnswerRate: 0.5 },
];
/** The router: the dApps' front door, with its own Redis (voucher counters, tenants, conversations). */
export const ROUTER = { port: 8000, redisPort: 6393 } as const;
export const ROUTER_URL = `http://${HOST}:${ROUTER.port}`;
/** The indexer: every protocol event, served over REST, SQL and GraphQL (PGlite under the cache directory). */
export const INDEXER = { port: 42069 } as const;
export const INDEXER_URL = `http://${HOST}:${INDEXER.port}`;
/** Where an edge behind NAT is reached: the router's relay over its link. */
export const relayEndpoint = (edgeId: bigint) => `${ROUTER_URL}/tideway/v1/edges/${edgeId}`;
/** Verifiers (quorum 2), each with its own Redis, as independent operators run them. */
export const VERIFIERS = [
  { port: 9100, redisPort: 6390 },
  { port: 9101, redisPort: 6391 },
  { port: 9102, redisPort: 6392 },
] as const;
/** Alice backs edge #1, bob edge #2 (so the three pools' stakes differ). */
export const DELEGATIONS = [
  { who: "alice", edge: 0, amount: 1_000n * TOKEN },
  { who: "bob", edge: 1, amount: 500n * TOKEN },
] as const;
export const QUESTIONS = [
  "What is an edge network?",
  "Summarize the tides in one line.",
  "Name three rivers.",
  "Why is the sky blue?",
  "Write a haiku about latency.",
  "What is 17 × 3?",
];
export const url = (port: number) => `http://${HOST}:${port}`;

/** The demo's roles among the node's unlocked accounts, in their --from order. */
export function demoAccounts(accounts: readonly Address[]) {
  const [admin, operator, alice, bob, verifierOp1, verifierOp2, dapp, newcomer, verifierOp3] = accounts as [Address, ...Address[]];
  return {
    admin,
    operator: operator!,
    alice: alice!,
    bob: bob!,
    verifierOps: [verifierOp1!, verifierOp2!, verifierOp3!],
    dapp: dapp!,
    newcomer: newcomer!,
  };
}
export type DemoAccounts = ReturnType<typeof demoAccounts>;

/** What each of the first nine accounts is in the demo, for the printed summary. */
export function demoRoles(edgeIds: readonly bigint[]): string[] {
  return [
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
}

/** Every fixed port of the demo, with what listens there. */
export function demoPorts(): Array<[number, string]> {
  return [
    [RPC_PORT, "the node"],
    [ROUTER.port, "the router"],
    [ROUTER.redisPort, "Redis of the router"],
    [INDEXER.port, "the indexer"],
    ...EDGES.map((e, i): [number, string] => [e.port, `edge #${i + 1}`]),
    ...VERIFIERS.flatMap(
      (v, i): Array<[number, string]> => [
        [v.port, `verifier #${i + 1}`],
        [v.redisPort, `Redis of verifier #${i + 1}`],
      ],
    ),
  ];
}

type Say = (message: string) => void;

/**
 * Funds the demo accounts, registers the three verifiers and passes a governance proposal that
 * allowlists the operator and approves them. Returns the proposal id, the verifiers' signing keys
 * and their challenge payers' keys.
 */
export async function setUpGovernedDemo(
  clients: DevnetClients,
  addresses: ProtocolAddresses,
  accounts: DemoAccounts,
  say: Say,
): Promise<{ proposalId: bigint; verifierSecrets: Hex[]; verifierKeys: LocalAccount[]; challengePayers: Hex[] }> {
  const { admin, operator, alice, bob, verifierOps, dapp, newcomer } = accounts;
  // Throwaway keys for this local chain, like the node's well-known accounts.
  const verifierSecrets = VERIFIERS.map(() => generatePrivateKey());
  const verifierKeys = verifierSecrets.map((k) => privateKeyToAccount(k));
  const challengePayers = VERIFIERS.map(() => generatePrivateKey());
  const funds: Array<[Address, string, bigint, bigint]> = [
    [operator, "the operator", 100_000n * TOKEN, 0n],
    [alice, "the delegator alice", 50_000n * TOKEN, 0n],
    [bob, "the delegator bob", 50_000n * TOKEN, 0n],
    ...[...verifierOps, newcomer].map((a): [Address, string, bigint, bigint] => [a, "a verifier operator", 20_000n * TOKEN, 0n]),
    [dapp, "the dApp", 50_000n * TOKEN, 0n],
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
      data: encodeFunctionData({ abi: edgeRegistryAbi, functionName: "setOperatorAllowlisted", args: [operator, true] }),
    },
    ...ids.map((id) => ({
      target: addresses.verifierSet,
      data: encodeFunctionData({ abi: verifierSetAbi, functionName: "approve", args: [id] }),
    })),
  ];
  const description = `Demo: allowlist operator ${operator}; approve verifiers ${ids.map((id) => `#${id}`).join(", ")}`;
  const proposalId = await passProposal(clients, {
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
  return { proposalId, verifierSecrets, verifierKeys, challengePayers };
}

/** Registers the operator's edges (each key gets gas for its redemptions), then the delegations. Returns the edge ids and signing keys. */
export async function registerDemoEdges(
  clients: DevnetClients,
  addresses: ProtocolAddresses,
  accounts: DemoAccounts,
  say: Say,
): Promise<{ edgeIds: bigint[]; edgeKeys: Hex[] }> {
  const edgeKeys = EDGES.map(() => generatePrivateKey());
  const edgeIds = [];
  for (const [i, e] of EDGES.entries()) {
    const key = privateKeyToAccount(edgeKeys[i]!);
    // Ids are sequential: the one this registration gets is the count so far plus one.
    const nextId =
      (await clients.public.readContract({ address: addresses.registry, abi: edgeRegistryAbi, functionName: "edgeCount" })) + 1n;
    const endpoint = e.nat === true ? relayEndpoint(nextId) : url(e.port);
    const profile = { endpoint, region: "local", capacity: 100, models: [MODEL] };
    edgeIds.push(await registerEdge(clients, addresses, accounts.operator, key, profile, e.selfBond));
    if (edgeIds[i] !== nextId) throw new Error(`edge registered as #${edgeIds[i]}, not #${nextId}: its relay endpoint is wrong`);
    await fund(clients, addresses, accounts.admin, key.address, { eth: 10n ** 18n });
    say(
      `  operator registers edge #${edgeIds[i]} (signing key ${key.address}, ${e.nat === true ? `behind NAT: endpoint ${endpoint}, the router's relay` : endpoint}) and bonds ${tokens(e.selfBond)}; its key gets 1 ETH for the gas of its redemptions`,
    );
  }
  for (const d of DELEGATIONS) {
    await bond(clients, addresses, accounts[d.who], edgeIds[d.edge]!, d.amount, "delegate");
    say(`  ${d.who} delegates ${tokens(d.amount)} to edge #${edgeIds[d.edge]}`);
  }
  return { edgeIds, edgeKeys };
}

/** An edge's stake: [active, earning]. */
export const stakeOf = (clients: Pick<DevnetClients, "public">, addresses: ProtocolAddresses, id: bigint) =>
  clients.public.readContract({ address: addresses.staking, abi: edgeStakingAbi, functionName: "edgeStake", args: [id] });

/** Moves the clock epoch by epoch until all of the edges' stake earns; returns that epoch. */
export async function advanceToFirstEarningEpoch(
  clients: DevnetClients,
  addresses: ProtocolAddresses,
  edgeIds: readonly bigint[],
  say: Say,
): Promise<bigint> {
  const staking = { address: addresses.staking, abi: edgeStakingAbi } as const;
  const allEarning = async () =>
    (await Promise.all(edgeIds.map((id) => stakeOf(clients, addresses, id)))).every(
      ([active, earning]) => earning > 0n && earning === active,
    );
  while (!(await allEarning())) {
    const next = (await clients.public.readContract({ ...staking, functionName: "currentEpoch" })) + 1n;
    const start = await clients.public.readContract({ ...staking, functionName: "epochStartTime", args: [next] });
    if (start > (await chainTime(clients)))
      say(
        `  advance the clock to the start of epoch ${next} (+${start - (await chainTime(clients))} s: evm_setNextBlockTimestamp, evm_mine)`,
      );
    await advanceTo(clients, start);
  }
  return clients.public.readContract({ ...staking, functionName: "currentEpoch" });
}
