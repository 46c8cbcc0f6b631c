// What `npm start` prints about the running network: the rules read from the contracts, the
// summary (contracts, edges, verifiers, accounts, commands to try) and one line per fact the
// chain follower reports. The commands to try are safe on the running demo: each uses an account
// or a session of its own, never the demo dApp's session or the demo edges.
import { execFileSync } from "node:child_process";
import { existsSync, realpathSync } from "node:fs";
import path from "node:path";

import { formatUnits, type Address } from "viem";
import { generatePrivateKey } from "viem/accounts";

import type { TrafficWindow } from "../router/metrics.ts";

import {
  computeMarketAbi,
  edgeGovernorAbi,
  edgeStakingAbi,
  edgeTokenAbi,
  epochSettlementAbi,
  timelockControllerAbi,
  verifierSetAbi,
} from "../lib/protocol/abis.ts";
import type { ProtocolAddresses } from "../lib/protocol/addresses.ts";
import type { DevnetClients } from "./chain.ts";
import type { FollowerEvent } from "./follower.ts";

/** Tokens with at most `decimals` decimals (rounded down), thousands grouped: "12,345.67 EDGE". */
export function tokens(wei: bigint, decimals = 2): string {
  const [whole, fraction = ""] = formatUnits(wei, 18).split(".");
  const cut = fraction.slice(0, decimals).replace(/0+$/, "");
  return `${whole!.replace(/\B(?=(\d{3})+(?!\d))/g, ",")}${cut === "" ? "" : `.${cut}`} EDGE`;
}
/** Seconds as minutes when whole: "1 min", "90 s". */
export const minutes = (seconds: bigint) => (seconds % 60n === 0n ? `${seconds / 60n} min` : `${seconds} s`);
const percent = (rate: bigint) => `${Number((rate * 10_000n) / 10n ** 9n) / 100}%`;
const shortHex = (h: string) => `${h.slice(0, 10)}…`;
const clockOf = (timestamp: bigint) => new Date(Number(timestamp) * 1000).toISOString().slice(11, 19);

export interface NetworkRules {
  epoch: bigint;
  epochLength: bigint;
  warmUp: bigint;
  quorum: bigint;
  disputeWindow: bigint;
  thawingPeriod: bigint;
  lines: string[];
}

/** The protocol's rules as deployed, read from the contracts. */
export async function readRules(clients: Pick<DevnetClients, "public">, a: ProtocolAddresses): Promise<NetworkRules> {
  const read = clients.public;
  const [
    epochLength,
    epoch,
    creditWindow,
    params,
    verifierParams,
    settlementParams,
    [inflation],
    feeBps,
    thawingPeriod,
    votingDelay,
    votingPeriod,
    timelockDelay,
  ] = await Promise.all([
    read.readContract({ address: a.staking, abi: edgeStakingAbi, functionName: "epochLength" }),
    read.readContract({ address: a.staking, abi: edgeStakingAbi, functionName: "currentEpoch" }),
    read.readContract({ address: a.staking, abi: edgeStakingAbi, functionName: "rewardCreditWindow" }),
    read.readContract({ address: a.staking, abi: edgeStakingAbi, functionName: "parameters" }),
    read.readContract({ address: a.verifierSet, abi: verifierSetAbi, functionName: "parameters" }),
    read.readContract({ address: a.settlement, abi: epochSettlementAbi, functionName: "parameters" }),
    read.readContract({ address: a.settlement, abi: epochSettlementAbi, functionName: "inflation" }),
    read.readContract({ address: a.market, abi: computeMarketAbi, functionName: "feeBps" }),
    read.readContract({ address: a.market, abi: computeMarketAbi, functionName: "thawingPeriod" }),
    read.readContract({ address: a.governor, abi: edgeGovernorAbi, functionName: "votingDelay" }),
    read.readContract({ address: a.governor, abi: edgeGovernorAbi, functionName: "votingPeriod" }),
    read.readContract({ address: a.timelock, abi: timelockControllerAbi, functionName: "getMinDelay" }),
  ]);
  const warmUp = BigInt(creditWindow) + 1n;
  const p = params;
  const v = verifierParams;
  const disputeWindow = BigInt(settlementParams.disputeWindow);
  return {
    epoch,
    epochLength: BigInt(epochLength),
    warmUp,
    quorum: BigInt(v.quorum),
    disputeWindow,
    thawingPeriod: BigInt(thawingPeriod),
    lines: [
      `  epochs of ${minutes(BigInt(epochLength))} (now epoch ${epoch}); new stake earns after a warm-up of ${warmUp} epochs (${minutes(warmUp * BigInt(epochLength))})`,
      `  unbonded stake is withdrawable ${minutes(BigInt(p.unbondingDelay))} after the end of the epoch it was unbonded in, slashable until then`,
      `  minimum self-bond ${tokens(p.minSelfBond)}; commission changes apply after ${p.commissionDelay} epochs; jail lasts ${minutes(BigInt(p.jailPeriod))}`,
      `  verifiers bond at least ${tokens(v.minBond)}, leave after ${minutes(BigInt(v.exitDelay))}; attestations need ${v.quorum} signatures and are final after ${minutes(disputeWindow)}`,
      `  inflation ${percent(BigInt(inflation))} a year; the market burns a ${Number(feeBps) / 100}% fee; escrow thaws in ${minutes(BigInt(thawingPeriod))}`,
      `  governance: the registry and verifier set are in their trusted phase; proposals vote ${minutes(BigInt(votingDelay))} after being made, for ${minutes(BigInt(votingPeriod))}, then wait ${minutes(timelockDelay)} in the timelock`,
    ],
  };
}

/**
 * How the user runs Hardhat from a shell: `npx hardhat` when the `node` on their PATH is new
 * enough for Hardhat 3, otherwise through scripts/with-node22.sh (which finds the Node 22 that
 * setup provisioned).
 */
export function hardhatCommand(root: string): { cmd: string; note?: string } {
  const toolsDir = path.join(root, ".tools");
  const tools = existsSync(toolsDir) ? realpathSync(toolsDir) : toolsDir;
  for (const dir of (process.env.PATH ?? "").split(path.delimiter)) {
    if (dir === "" || dir.includes(`${path.sep}node_modules${path.sep}`) || dir.endsWith(`${path.sep}node_modules`)) continue;
    const candidate = path.join(dir, "node");
    if (!existsSync(candidate)) continue;
    const real = realpathSync(candidate);
    if (real.startsWith(tools + path.sep) || real.startsWith(toolsDir + path.sep)) continue;
    try {
      const version = execFileSync(candidate, ["--version"], { encoding: "utf8" }).trim();
      const [major, minor] = version.replace(/^v/, "").split(".").map(Number);
      if (major! > 22 || (major === 22 && minor! >= 18)) return { cmd: "npx hardhat" };
      return {
        cmd: "bash scripts/with-node22.sh npx hardhat",
        note: `Your shell's node is ${version}; Hardhat 3 needs Node >= 22.18, so these commands run through scripts/with-node22.sh.`,
      };
    } catch {}
  }
  return { cmd: "bash scripts/with-node22.sh npx hardhat" };
}

export interface TryCommandsInput {
  hh: { cmd: string; note?: string };
  /** Edge ids of the demo (the last one misbehaves). */
  edgeIds: readonly bigint[];
  /** The spare account's --from index, and a throwaway key for each thing it may register. */
  newcomer: number;
  newVerifierKey: string;
  newEdgeKey: string;
  warmUp: string;
  thaw: string;
  verifierUrl: string;
  /** The router's voucher key (a tenant authorizes it). */
  routerKey: string;
  /** The newcomer's address (the payer of its own tenant). */
  newcomerAddress: string;
}

/** Commands to try on the running network, none of which disturbs the demo (the demo dApp's session, its edges' stake). */
export function tryCommands(i: TryCommandsInput): string[] {
  const hh = `${i.hh.cmd}`;
  const net = "--network localhost";
  const [first, second, bad] = [i.edgeIds[0], i.edgeIds[1], i.edgeIds.at(-1)];
  return [
    "Try it, in another terminal (each command uses its own account or session: the demo keeps running):",
    ...(i.hh.note === undefined ? [] : [`  (${i.hh.note})`]),
    `  ${hh} edge show ${net} ${bad}                      # the misbehaving edge: its stake and status (Jailed once slashed)`,
    `  ${hh} edge position ${net} --from 2 ${first}           # delegator alice's stake and rewards in edge #${first}`,
    `  ${hh} edge claim ${net} --from 1 ${first}              # the operator's rewards and commission, once an epoch is claimed`,
    `  ${hh} edge delegate ${net} --from 2 ${second} 500       # alice also backs edge #${second}`,
    `  ${hh} edge set-commission ${net} --from 1 ${first} 5%  # applies after the commission delay`,
    `  # once the delegation has warmed up (${i.warmUp}), then once the unbonding has matured:`,
    `  ${hh} edge unbond ${net} --from 2 ${second} all`,
    `  ${hh} edge withdraw ${net} --from 2 ${second}`,
    "  # a fourth edge, registered but not staked: it is not Active, so no verifier challenges it (staking an",
    "  # edge nobody runs would get it slashed as Unresponsive)",
    `  TIDEWAY_EDGE_SIGNING_KEY=${i.newEdgeKey} \\`,
    `    ${hh} edge register ${net} --from 1 --endpoint https://edge-4.example.org --region eu-west --capacity 500 --models tideway/reference-1`,
    "",
    "  # verifiers and epochs",
    `  ${hh} verifier show ${net}`,
    `  TIDEWAY_VERIFIER_SIGNING_KEY=${i.newVerifierKey} \\`,
    `    ${hh} verifier register ${net} --from ${i.newcomer} --endpoint http://127.0.0.1:9103   # the newcomer's verifier: Pending until governance approves it`,
    `  ${hh} epoch status ${net}`,
    `  curl -s ${i.verifierUrl}/tideway/v1/epochs/<n>/results   # an attested epoch's leaves (the verifiers claim them themselves)`,
    "",
    `  # a dApp of its own: the newcomer (--from ${i.newcomer}) deposits, opens and closes ITS session (not the demo's)`,
    `  ${hh} dapp deposit ${net} --from ${i.newcomer} 1000`,
    `  ${hh} dapp open-session ${net} --from ${i.newcomer} --model tideway/reference-1 --budget 100 --expiry 1h   # prints the session id`,
    `  ${hh} dapp show ${net} --from ${i.newcomer}`,
    `  ${hh} dapp close-session ${net} --from ${i.newcomer} <the id open-session printed>`,
    `  ${hh} dapp thaw ${net} --from ${i.newcomer} 400   # then, ${i.thaw} later: dapp withdraw ${net} --from ${i.newcomer}`,
    "  # ... and a tenant of the router: authorize its voucher key, get an API key (printed once), use any OpenAI client",
    `  ${hh} dapp authorize-signer ${net} --from ${i.newcomer} ${i.routerKey}`,
    `  npm run router -- tenant add --config cache/router.json --name newcomer --payer ${i.newcomerAddress}`,
    "  npm run router -- tenant list --config cache/router.json",
    "",
    `  All tasks: ${hh} edge --help (also verifier, epoch, dapp)`,
  ];
}

export interface NetworkSummaryInput {
  rpcUrl: string;
  chainId: number;
  proposalId: bigint;
  operator: Address;
  model: string;
  edges: ReadonlyArray<{
    id: bigint;
    url: string;
    selfBond: bigint;
    delegations: ReadonlyArray<{ who: string; amount: bigint }>;
    wrongAnswerRate?: number;
    /** Behind NAT: no public endpoint; it dials the router, which relays to it. */
    nat?: boolean;
  }>;
  /** What the demo dApp did, or why it is not running. */
  demo: string;
  router: { url: string; key: Address; redisPort: number; apiKey: string | undefined };
  verifiers: ReadonlyArray<{ url: string; key: Address; redisPort: number }>;
  /** The node's unlocked accounts (their index is their --from) and what each is in the demo. */
  accounts: ReadonlyArray<{ address: Address; role: string }>;
  /** The --from index of the spare account the commands to try use. */
  newcomer: number;
  hh: { cmd: string; note?: string };
}

/** The network as it runs: contracts, rules, edges, verifiers, accounts and commands to try, read from the chain now. */
export async function networkSummary(
  clients: Pick<DevnetClients, "public">,
  addresses: ProtocolAddresses,
  s: NetworkSummaryInput,
): Promise<string[]> {
  const balances = await Promise.all(
    s.accounts.map((a) =>
      clients.public.readContract({ address: addresses.token, abi: edgeTokenAbi, functionName: "balanceOf", args: [a.address] }),
    ),
  );
  const stakes = await Promise.all(
    s.edges.map((e) =>
      clients.public.readContract({ address: addresses.staking, abi: edgeStakingAbi, functionName: "edgeStake", args: [e.id] }),
    ),
  );
  const rules = await readRules(clients, addresses);
  const edgeIds = s.edges.map((e) => e.id);
  const [firstEdge, firstVerifier] = [s.edges[0]!, s.verifiers[0]!];
  return [
    "",
    `Tideway is running on ${s.rpcUrl} (chain ${s.chainId}).`,
    "",
    "Contracts",
    ...(["token", "registry", "staking", "verifierSet", "settlement", "market", "timelock", "governor"] as const).map(
      (k) => `  ${k.padEnd(12)} ${addresses[k]}`,
    ),
    "",
    "Rules on this network (ignition/parameters/local.json)",
    ...rules.lines,
    "",
    `Set up through governance: proposal ${s.proposalId.toString().slice(0, 12)}… executed (delegate → propose → vote → queue → execute, the clock moved with evm_setNextBlockTimestamp/evm_mine)`,
    "",
    `Edges of operator ${s.operator} (node edge/main.ts --config cache/edge-N.json; logs cache/edge-N.log; see edge/README.md)`,
    ...s.edges.map(
      (e, i) =>
        `  #${e.id} ${e.nat === true ? `behind NAT (reached over its link: ${s.router.url}/tideway/v1/edges/${e.id})` : e.url}  stake ${tokens(stakes[i]![0])} (self-bond ${tokens(e.selfBond)}${e.delegations
          .map((d) => ` + ${d.who} ${tokens(d.amount)}`)
          .join("")})${e.wrongAnswerRate === undefined ? "" : `  ← answers ${e.wrongAnswerRate * 100}% wrongly`}`,
    ),
    `  each serves ${s.model} behind the OpenAI API, paid by vouchers`,
    `  curl -s ${firstEdge.url}/v1/models ; curl -s ${firstEdge.url}/health ; curl -s ${firstEdge.url}/metrics | grep '^tideway_edge'`,
    "",
    `Verifiers (quorum ${rules.quorum} of ${s.verifiers.length}, each with its own Redis; see verifier/README.md)`,
    ...s.verifiers.map(
      (v, i) =>
        `  #${i + 1} ${v.url}  key ${v.key}; Redis ${v.redisPort}; config cache/verifier-${i + 1}.json, log cache/verifier-${i + 1}.log`,
    ),
    `  curl -s ${firstVerifier.url}/health ; curl -s ${firstVerifier.url}/metrics | grep '^tideway_verifier_challenges'`,
    "",
    `The router: ${s.router.url}, the front door for dApps (voucher key ${s.router.key}; Redis ${s.router.redisPort}; config cache/router.json, log cache/router.log; see router/README.md)`,
    `  ${s.demo}`,
    ...(s.router.apiKey === undefined
      ? []
      : [
          "  Point any OpenAI client at it — this is all a dApp writes (the demo dApp's tenant key):",
          '    import OpenAI from "openai";',
          `    const client = new OpenAI({ baseURL: "${s.router.url}/v1", apiKey: "${s.router.apiKey}" });`,
          `    const answer = await client.chat.completions.create({ model: "${s.model}", messages: [{ role: "user", content: "Hello" }] });`,
          `  curl -s ${s.router.url}/v1/models -H "Authorization: Bearer ${s.router.apiKey}"`,
        ]),
    `  curl -s ${s.router.url}/tideway/v1/edges   # the router's view: transport, RTT, load, breaker per edge`,
    "",
    "Demo accounts (the node's unlocked accounts: choose one with --from <n>)",
    ...s.accounts.map((a, i) => `  --from ${i}  ${a.address}  ${a.role}, ${tokens(balances[i]!)}`),
    "",
    ...tryCommands({
      hh: s.hh,
      edgeIds,
      newcomer: s.newcomer,
      newVerifierKey: generatePrivateKey(),
      newEdgeKey: generatePrivateKey(),
      warmUp: minutes(rules.warmUp * rules.epochLength),
      thaw: minutes(rules.thawingPeriod),
      verifierUrl: firstVerifier.url,
      routerKey: s.router.key,
      newcomerAddress: s.accounts[s.newcomer]!.address,
    }),
    "",
    "Logs: cache/hardhat-node.log, cache/edge-{1,2,3}.log, cache/verifier-{1,2,3}.log, cache/redis-{1,2,3,4}.log, cache/router.log. A crashed service is restarted. Press Ctrl-C to stop everything.",
    "",
    `Following the chain: each epoch (${minutes(rules.epochLength)}) is attested a few seconds after its end, final ${minutes(rules.disputeWindow)} later, then claimed ("epoch N settled");`,
    `edge #${edgeIds.at(-1)} should be slashed within the first epoch or two.`,
  ];
}

/** What the edges redeemed on-chain from the dApp's sessions, next to what the router signed for each. */
export function redeemedLine(edgeIds: readonly bigint[], redeemed: readonly bigint[], signed: readonly bigint[]): string {
  return `  redeemed on-chain from the dApp's sessions: ${redeemed.map((r, i) => `#${edgeIds[i]} ${tokens(r, 6)}`).join(", ")} (the router signed: ${signed.map((v, i) => `#${edgeIds[i]} ${tokens(v, 6)}`).join(", ")})`;
}

/** The router's traffic over the last minute (its GET /tideway/v1/traffic). */
export function trafficLine(t: TrafficWindow & { queued?: Record<string, number> }): string {
  const ttft = t.ttftP50Ms === null ? "no first tokens" : `time to first token p50 ${t.ttftP50Ms} ms, p99 ${t.ttftP99Ms} ms`;
  const waiting = Object.values(t.queued ?? {}).reduce((sum, n) => sum + n, 0);
  return `router, last minute: ${t.requests} requests, ${ttft}, ${t.failovers} failovers, ${t.rejected429} answered 429, ${tokens(BigInt(t.spent), 6)} spent; ${waiting} waiting for an edge now`;
}

export interface FollowerLineContext {
  edgeIds: readonly bigint[];
  /** Edge statuses as last seen ("Jailed"…), for edges outside an epoch's tree. */
  edgeStatus: ReadonlyMap<bigint, string>;
  traffic: { paid: number; failed: number; lastError: string };
}

/** One printed line per follower fact. */
export function followerLine(e: FollowerEvent, ctx: FollowerLineContext): string {
  switch (e.type) {
    case "attested":
      return `epoch ${e.epoch} attested: root ${shortHex(e.root)}, final at ${clockOf(e.finalAt)} chain time (${e.finalAt - e.attestedAt} s after the attestation)`;
    case "slashed":
      return `edge #${e.edgeId} slashed ${tokens(e.slashed)} for ${e.kind} in epoch ${e.epoch}, ${e.status === "Jailed" ? "jailed" : `status ${e.status}`}`;
    case "nothing-to-attest":
      return `epoch ${e.epoch}: nothing to attest (no edge had stake × quality > 0)`;
    case "skipped":
      return `epoch ${e.epoch}: skipped (too few verifiers could observe it; no edge is scored for their outage)`;
    case "settled": {
      const inTree = new Set(e.leaves.map((l) => l.edgeId));
      const outside = ctx.edgeIds
        .filter((id) => !inTree.has(id))
        .map((id) => `#${id} ${ctx.edgeStatus.get(id) === "Jailed" ? "jailed" : "absent"}`);
      const quality =
        e.leaves.map((l) => `#${l.edgeId} ${Number(l.quality) / 10_000}%`).join(" ") +
        (outside.length > 0 ? ` (${outside.join(", ")})` : "");
      const rewards = e.leaves
        .map((l) => `#${l.edgeId} ${tokens(l.credited)}${l.credited < l.reward ? ` (declined ${tokens(l.reward - l.credited)})` : ""}`)
        .join(" ");
      const t = ctx.traffic;
      return `epoch ${e.epoch} settled: root ${shortHex(e.root)}, quality ${quality}, rewards claimed ${rewards}; dApp: ${t.paid} paid requests so far${t.failed > 0 ? `, ${t.failed} failed (last: ${t.lastError})` : ""}`;
    }
  }
}
