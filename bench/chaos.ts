// `npm run chaos`: the standing fault campaign. It brings up the network `npm start` runs (same
// devnet steps, logs under cache/chaos/), keeps the demo dApp's paid traffic going, injects a
// seeded plan of faults (devnet/chaos/faults.ts: kill -9 of verifiers, of the leader during
// attestation and of the submitter between signing and inclusion, of edges mid-stream, of Redis
// for short and long outages, of the router; pauses of the node; clock jumps), waits for the
// epochs the faults touched to settle, stops the edges (they redeem as they stop) and checks on
// the chain that every ended epoch was submitted once, none froze, every leaf was claimed once,
// every fault reported once, every voucher redeemed once and no served work left unpaid. It prints
// the ledger and writes bench/results/chaos.json; the exit code says whether the goal was met.
//
//   npm run chaos                                 10 faults of each kind, a fresh seed (printed)
//   npm run chaos -- --seed 1234                  replays a campaign's plan
//   npm run chaos -- --faults-per-kind 3
//   npm run chaos -- --short                      a smoke run: 1 fault of each kind, shorter gaps
//                                                 (writes cache/chaos/chaos.json unless --out)
import { randomInt } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

import { edgeStakingAbi } from "../lib/protocol/abis.ts";
import { createVoucherLedger } from "../router/payment/ledger.ts";
import { awaitSettlement, runFaults } from "../devnet/chaos/campaign.ts";
import { judgeCampaign, readChainFacts, readPayments } from "../devnet/chaos/check.ts";
import { type ChaosTarget, createReviver } from "../devnet/chaos/faults.ts";
import { campaignJson, goalMet, ledgerLines } from "../devnet/chaos/ledger.ts";
import { EDGES, HOST, QUESTIONS, ROUTER, ROUTER_URL, url, VERIFIERS } from "../devnet/demo.ts";
import { createLifecycle } from "../devnet/lifecycle.ts";
import { openDemoTenant, ROUTER_PREFIX, startDemoNetwork } from "../devnet/network.ts";
import { serviceEnv } from "../devnet/services.ts";
import { createSupervisor, describeEvent } from "../devnet/supervisor.ts";
import { mulberry32 } from "./routing/workload.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const CACHE = path.join("cache", "chaos");

const { values: args } = parseArgs({
  options: {
    seed: { type: "string" },
    "faults-per-kind": { type: "string" },
    short: { type: "boolean", default: false },
    out: { type: "string" },
  },
});
const seed = args.seed === undefined ? randomInt(2 ** 31) : Number(args.seed);
const faultsPerKind = Number(args["faults-per-kind"] ?? (args.short ? 1 : 10));
if (!Number.isInteger(seed) || seed < 0 || !Number.isInteger(faultsPerKind) || faultsPerKind < 1) {
  console.error("usage: npm run chaos -- [--seed <non-negative integer>] [--faults-per-kind <n ≥ 1>] [--short] [--out <file>]");
  process.exit(2);
}
const out = path.resolve(ROOT, args.out ?? (args.short ? path.join(CACHE, "chaos.json") : "bench/results/chaos.json"));
const timing = args.short
  ? { minGapS: 3, maxGapS: 8, longOutageS: 70, minOutageGapS: 5, maxOutageGapS: 10, settleTimeoutS: 420 }
  : { minGapS: 3, maxGapS: 10, longOutageS: 75, minOutageGapS: 30, maxOutageGapS: 90, settleTimeoutS: 600 };

const began = Date.now();
let step = 0;
const say = (message: string) => console.log(`[chaos ${new Date().toISOString().slice(11, 19)}] ${message}`);
const begin = (message: string) => say(`(${++step}/10) ${message}`);
const supervisor = createSupervisor({
  env: serviceEnv(ROOT),
  onEvent: (e) => {
    say(describeEvent(e));
    if (e.type === "gave-up") reviver.gaveUp(e.name);
    if (e.type === "exited" && e.name === "the Hardhat node") void lifecycle.shutdown("the node exited", 1);
  },
});
const reviver = createReviver(supervisor, say);
let stopTraffic: (() => void) | undefined;
const lifecycle = createLifecycle({ supervisor, say, beforeStop: () => stopTraffic?.() });
const { must } = lifecycle;

say(
  `fault campaign, seed ${seed}, ${faultsPerKind} fault(s) of each kind (replay: npm run chaos -- --seed ${seed} --faults-per-kind ${faultsPerKind})`,
);
const network = await startDemoNetwork({
  root: ROOT,
  cacheDir: CACHE,
  command: "npm run chaos",
  supervisor,
  must,
  fail: lifecycle.fail,
  begin,
  say,
});
const { clients, addresses, edgeIds, governed } = network;

const tenant = await must("the demo dApp's tenant", () => openDemoTenant(network, 5_000n * 10n ** 18n));
await must("the dApp's first request", () => tenant.dapp.firstRequest("Hello, Tideway!"));
tenant.dapp.startTraffic(QUESTIONS);
stopTraffic = () => tenant.dapp.stopTraffic();
say("the demo dApp sends paid traffic through the router every 3 s");

const target: ChaosTarget = {
  clients,
  addresses,
  supervisor,
  verifiers: VERIFIERS.map((v, i) => ({ name: `verifier #${i + 1}`, url: url(v.port), key: governed.verifierKeys[i]!.address })),
  redis: [
    ...VERIFIERS.map((v, i) => ({ name: `Redis of verifier #${i + 1}`, host: HOST, port: v.redisPort, ofVerifier: true })),
    { name: "Redis of the router", host: HOST, port: ROUTER.redisPort, ofVerifier: false },
  ],
  router: { name: "the router", url: ROUTER_URL },
  edges: EDGES.map((e, i) => ({ name: `edge #${edgeIds[i]}`, edgeId: edgeIds[i]!, url: url(e.port) })),
  skipEdges: new Set(EDGES.flatMap((e, i) => (e.wrongAnswerRate === undefined ? [] : [edgeIds[i]!.toString()]))),
  dapp: tenant.dapp,
  nodeName: "the Hardhat node",
  say,
};

const faults = await must("the faults", () =>
  runFaults(target, mulberry32(seed), mulberry32(seed ^ 0x5eed1a9e), { faultsPerKind, ...timing }),
);
const lastEpoch = await clients.public.readContract({ address: addresses.staking, abi: edgeStakingAbi, functionName: "currentEpoch" });
say(
  `faults done in epoch ${lastEpoch}; waiting for epochs ${network.firstEpoch}–${lastEpoch} to settle (at most ${timing.settleTimeoutS} s)`,
);
await awaitSettlement({
  clients,
  addresses,
  fromBlock: network.followFrom,
  firstEpoch: network.firstEpoch,
  lastEpoch,
  timeoutS: timing.settleTimeoutS,
  say,
});

say("stopping the traffic and the edges (they redeem their vouchers as they stop)");
tenant.dapp.stopTraffic();
for (const service of supervisor.services().filter((s) => s.name.startsWith("edge #") && s.running())) await service.stop();
const payments = await readPayments(
  clients,
  addresses.market,
  createVoucherLedger(tenant.routerRedis, ROUTER_PREFIX),
  network.participants.dapp,
  edgeIds,
);
tenant.routerRedis.disconnect();
const facts = await readChainFacts(clients, { addresses, fromBlock: network.followFrom, firstEpoch: network.firstEpoch });
const verdict = judgeCampaign(facts, { firstEpoch: network.firstEpoch, lastEpoch, payments });
const summary = { seed, durationS: (Date.now() - began) / 1000, faultsPerKind, faults, verdict, payments, revived: reviver.revived };
console.log(ledgerLines(summary).join("\n"));
mkdirSync(path.dirname(out), { recursive: true });
writeFileSync(out, `${JSON.stringify(campaignJson(summary), null, 2)}\n`);
say(`wrote ${path.relative(ROOT, out)}`);
await lifecycle.shutdown("campaign over", goalMet(summary) ? 0 : 1);
