// What one edge's market view downloads while the rest of the market trades. On Hardhat's in-process
// network, edge A serves one payer (the testbed's, through its gateway key) while
// BENCH_MARKET_OTHER_EDGES other edges (default 50) each serve a payer of their own; every round,
// every edge redeems a voucher. After each round the view of edge A polls once, and the benchmark
// counts the eth_getLogs requests it sent and the logs they returned, beside what one unfiltered
// query over the same blocks returns (every market event: what a view that does not filter by
// topic downloads). Writes bench/results/market-view.json.
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";

import { network } from "hardhat";
import { pino } from "pino";
import { type Address, createPublicClient, custom, type EIP1193Provider, type LocalAccount, numberToHex, type PublicClient } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";

import { chainTime, confirmed } from "../devnet/chain.ts";
import { deposit, fund, openSession } from "../devnet/protocol.ts";
import { deployMarketTestbed, EDGE_MODEL, ESCROW, SESSION_BUDGET } from "../devnet/testbed.ts";
import { createMarketView } from "../edge/payment/market.ts";
import { computeMarketAbi } from "../lib/protocol/abis.ts";
import { signVoucher, type Voucher } from "../lib/protocol/eip712.ts";

const OTHERS = Number(process.env.BENCH_MARKET_OTHER_EDGES ?? 50);
const ROUNDS = Number(process.env.BENCH_MARKET_ROUNDS ?? 5);
const TOKEN = 10n ** 18n;
/** The view's default re-scan depth: an unfiltered poll asks for these blocks again too. */
const REORG_DEPTH = 5n;

const started = Date.now();
const conn = await network.create();
const bed = await deployMarketTestbed(conn, { edges: OTHERS + 1 });
const { clients, addresses, admin } = bed;
const [own, ...others] = bed.edges;
if (own === undefined) throw new Error("the testbed registered no edge");
const expiry = (await chainTime(clients)) + 30n * 86_400n;
const trades: { edge: typeof own; signer: LocalAccount; payer: Address; sessionId: bigint }[] = [
  { edge: own, signer: bed.gateway, payer: bed.payer, sessionId: bed.sessionId },
];
for (const edge of others) {
  const payer = privateKeyToAccount(generatePrivateKey());
  await fund(clients, addresses, admin, payer.address, { eth: TOKEN, tokens: ESCROW });
  await deposit(clients, addresses, payer, ESCROW);
  const sessionId = await openSession(clients, addresses, payer, EDGE_MODEL, SESSION_BUDGET, expiry);
  trades.push({ edge, signer: payer, payer: payer.address, sessionId });
}
const setupSeconds = (Date.now() - started) / 1000;

const counted = { requests: 0, logs: 0 };
const provider = conn.provider as EIP1193Provider;
const publicClient = createPublicClient({
  transport: custom({
    async request(args: { method: string; params?: unknown }) {
      const result = await provider.request(args as Parameters<typeof provider.request>[0]);
      if (args.method === "eth_getLogs") {
        counted.requests++;
        counted.logs += (result as unknown[]).length;
      }
      return result;
    },
  }),
}) as PublicClient;
const view = createMarketView({
  publicClient,
  market: addresses.market,
  edgeId: own.edgeId,
  pollIntervalMs: 3_600_000,
  reorgDepth: REORG_DEPTH,
  logger: pino({ level: "silent" }),
});
await view.refresh();
// What the gate asks when edge A admits its payer's first request.
await view.session(bed.sessionId);
await view.escrow(bed.payer);
await view.isAuthorizedSigner(bed.payer, bed.gateway.address);
let scannedTo = await clients.public.getBlockNumber();
await view.refresh();

const polls: { blocks: number; unfiltered_logs: number; requests: number; logs: number }[] = [];
for (let round = 1; round <= ROUNDS; round++) {
  for (const t of trades) {
    const voucher: Voucher = {
      payer: t.payer,
      edgeId: t.edge.edgeId,
      sessionId: t.sessionId,
      cumulativeAmount: BigInt(round) * TOKEN,
      expiry,
    };
    const signature = await signVoucher(t.signer, bed.domain, voucher);
    await confirmed(
      clients,
      await clients
        .wallet(t.edge.key)
        .writeContract({ address: addresses.market, abi: computeMarketAbi, functionName: "redeem", args: [voucher, signature] }),
    );
  }
  const head = await clients.public.getBlockNumber();
  counted.requests = 0;
  counted.logs = 0;
  await view.refresh();
  const unfiltered = await clients.public.request({
    method: "eth_getLogs",
    params: [{ address: addresses.market, fromBlock: numberToHex(scannedTo + 1n - REORG_DEPTH), toBlock: numberToHex(head) }],
  });
  polls.push({ blocks: Number(head - scannedTo), unfiltered_logs: unfiltered.length, requests: counted.requests, logs: counted.logs });
  scannedTo = head;
}
await view.close();

const result = {
  other_edges: OTHERS,
  rounds: ROUNDS,
  setup_seconds: setupSeconds,
  polls,
  mean_logs_per_poll: polls.reduce((s, p) => s + p.logs, 0) / polls.length,
  mean_unfiltered_logs_per_poll: polls.reduce((s, p) => s + p.unfiltered_logs, 0) / polls.length,
  requests_per_poll: polls.map((p) => p.requests),
};
console.table(polls);
console.log(
  `edge A's poll: ${result.mean_logs_per_poll} logs in ${polls[0]?.requests} requests; the whole market's: ${result.mean_unfiltered_logs_per_poll} logs (setup ${setupSeconds.toFixed(1)} s)`,
);
const out = path.join(import.meta.dirname, "results", "market-view.json");
mkdirSync(path.dirname(out), { recursive: true });
writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
console.log(`wrote ${out}`);
