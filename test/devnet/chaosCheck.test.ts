// The fault campaign's on-chain checker against real contracts on the in-process Hardhat network:
// an ended epoch nobody submitted and a final epoch with a leaf left unclaimed are missed, a fully
// claimed one is settled; a claim or a fault report seen twice is counted; served work the edge
// did not redeem (per the router's ledger in a real Redis) is a lost voucher.
import { expect } from "chai";
import { Redis } from "ioredis";
import { network } from "hardhat";
import { custom, keccak256, type Address } from "viem";

import { devnetClients } from "../../devnet/chain.ts";
import { type ChainFacts, judgeCampaign, readChainFacts, readPayments } from "../../devnet/chaos/check.ts";
import { startScratchRedis, type ScratchRedis } from "../../devnet/redis.ts";
import { createVoucherLedger } from "../../router/payment/ledger.ts";
import { defaultResults, deploySettlementBase, E, settleFinal, submitTree } from "../helpers/epochSettlement.ts";
import { deployMarketWithSession, signVoucherIn, voucherFor } from "../helpers/market.ts";
import { goToEpoch, TOKEN } from "../helpers/protocol.ts";
import { signFault } from "../helpers/settlement.ts";

async function clientsOf(conn: Awaited<ReturnType<typeof network.create>>) {
  return devnetClients(custom(conn.provider), Number(await conn.provider.request({ method: "eth_chainId" })));
}

/** A chain without epochs: the payments are judged alone. */
const NO_FACTS: ChainFacts = {
  currentEpoch: 0n,
  endedAt: new Map(),
  now: 0n,
  submissions: [],
  frozen: [],
  claims: [],
  faults: [],
  redemptions: [],
};

describe("fault campaign checker", function () {
  this.timeout(180_000);
  let redis: ScratchRedis | undefined;
  after(async () => redis?.destroy());

  it("judges a claimed epoch settled, and an unsubmitted epoch and a half-claimed final epoch missed", async function () {
    const conn = await network.create();
    const env = await deploySettlementBase(conn);
    const clients = await clientsOf(conn);
    const addresses = {
      settlement: (await env.settlement.getAddress()) as Address,
      staking: (await env.staking.getAddress()) as Address,
      market: (await env.market.getAddress()) as Address,
    };
    const first = await settleFinal(conn, env, E, defaultResults(env));
    await env.settlement.claimMany(first.attestation, [first.claimOf(env.edgeA), first.claimOf(env.edgeB)]);
    // E + 1 ends without a submission; E + 2 is submitted, final, and only one of its leaves claimed.
    const third = await settleFinal(conn, env, E + 2n, defaultResults(env));
    await env.settlement.claim(third.attestation, third.claimOf(env.edgeA));
    await goToEpoch(conn, env.staking, E + 4n);

    const facts = await readChainFacts(clients, { addresses, fromBlock: 0n, firstEpoch: E });
    const verdict = judgeCampaign(facts, { firstEpoch: E, lastEpoch: E + 2n, payments: [] });
    expect(verdict.epochs.map((e) => [e.epoch, e.submitted, e.settled, e.leavesClaimed])).to.deep.equal([
      [E, 1, true, 2],
      [E + 1n, 0, false, 0],
      [E + 2n, 1, false, 1],
    ]);
    expect(verdict.epochsSettled).to.equal(1);
    expect(verdict.epochsMissed).to.deep.equal([E + 1n, E + 2n]);
    expect(verdict.ok).to.equal(false);

    // Claiming the last leaf settles E + 2; E + 1 stays missed.
    await env.settlement.claim(third.attestation, third.claimOf(env.edgeB));
    const later = judgeCampaign(await readChainFacts(clients, { addresses, fromBlock: 0n, firstEpoch: E }), {
      firstEpoch: E,
      lastEpoch: E + 2n,
      payments: [],
    });
    expect(later.epochsMissed).to.deep.equal([E + 1n]);
    expect(
      judgeCampaign(await readChainFacts(clients, { addresses, fromBlock: 0n, firstEpoch: E }), {
        firstEpoch: E + 2n,
        lastEpoch: E + 2n,
        payments: [],
      }).ok,
    ).to.equal(true);
  });

  it("counts a claim and a fault report seen twice, and an epoch awaiting its submission or in its dispute window as under way, not missed", async function () {
    const conn = await network.create();
    const env = await deploySettlementBase(conn);
    const clients = await clientsOf(conn);
    const addresses = {
      settlement: (await env.settlement.getAddress()) as Address,
      staking: (await env.staking.getAddress()) as Address,
      market: (await env.market.getAddress()) as Address,
    };
    const settled = await settleFinal(conn, env, E, defaultResults(env));
    await env.settlement.claimMany(settled.attestation, [settled.claimOf(env.edgeA), settled.claimOf(env.edgeB)]);
    const fault = { edgeId: env.edgeB, epoch: E + 1n, kind: 0, evidenceHash: keccak256("0x0b"), reporter: env.admin.address };
    await goToEpoch(conn, env.staking, E + 2n);
    await env.settlement.reportFault(fault, await signFault(env.domain, env.keys.slice(0, 3), fault));

    const facts = await readChainFacts(clients, { addresses, fromBlock: 0n, firstEpoch: E });
    expect(facts.claims).to.have.length(2);
    expect(facts.faults.map((f) => [f.edgeId, f.epoch])).to.deep.equal([[env.edgeB, E + 1n]]);
    const clean = judgeCampaign(facts, { firstEpoch: E, lastEpoch: E, payments: [] });
    expect([clean.doubleClaims, clean.doubleFaultReports, clean.faultsReported, clean.ok]).to.deep.equal([0, 0, 1, true]);

    // The contracts refuse a second claim or report: these are the facts a chain that let one through would show.
    const replayed = { ...facts, claims: [...facts.claims, facts.claims[0]!], faults: [...facts.faults, facts.faults[0]!] };
    const doubled = judgeCampaign(replayed, { firstEpoch: E, lastEpoch: E, payments: [] });
    expect([doubled.doubleClaims, doubled.doubleFaultReports, doubled.ok]).to.deep.equal([1, 1, false]);

    // An epoch that has just ended awaits its submission; submitted but not yet final, it is in its dispute window: neither is missed.
    await goToEpoch(conn, env.staking, E + 3n);
    const justEnded = judgeCampaign(await readChainFacts(clients, { addresses, fromBlock: 0n, firstEpoch: E }), {
      firstEpoch: E + 2n,
      lastEpoch: E + 2n,
      payments: [],
    });
    expect(justEnded.epochs[0]).to.include({ submitted: 0, pending: "awaiting its submission" });
    expect(justEnded.epochsMissed).to.deep.equal([]);
    const { attestation } = await submitTree(env, E + 2n, defaultResults(env));
    expect(attestation.epoch).to.equal(E + 2n);
    const pending = judgeCampaign(await readChainFacts(clients, { addresses, fromBlock: 0n, firstEpoch: E }), {
      firstEpoch: E + 2n,
      lastEpoch: E + 2n,
      payments: [],
    });
    expect(pending.epochs[0]).to.include({ submitted: 1, settled: false, pending: "in its dispute window" });
    expect(pending.epochsMissed).to.deep.equal([]);
  });

  it("reports served work the edge did not redeem as a lost voucher, and none once it redeems the latest voucher", async function () {
    const conn = await network.create();
    const env = await deployMarketWithSession(conn);
    const clients = await clientsOf(conn);
    const market = (await env.market.getAddress()) as Address;
    redis = await startScratchRedis();
    const client = new Redis(redis.url);
    try {
      const ledger = createVoucherLedger(client, "chaos-test");
      // The router served 3 tokens' worth on (session 1, edge 1), in two requests.
      for (const [request, cost] of [
        ["r1", TOKEN],
        ["r2", 2n * TOKEN],
      ] as const) {
        await ledger.reserve(env.sessionId, env.edgeId, request, cost, 60_000);
        await ledger.settle(env.sessionId, env.edgeId, request, cost, cost);
      }
      const redeem = async (amount: bigint) => {
        const voucher = await voucherFor(conn, env, amount);
        await env.market.connect(env.relayer).redeem(voucher, await signVoucherIn(env.domain, env.gateway, voucher));
      };
      await redeem(TOKEN);
      const payer = env.payer.address as Address;
      const partly = await readPayments(clients, market, ledger, payer, [env.edgeId, env.edge2]);
      const lost = judgeCampaign(NO_FACTS, { firstEpoch: 1n, lastEpoch: 0n, payments: partly }).lostVouchers;
      expect(lost.map((l) => [l.sessionId, l.edgeId, l.served, l.redeemed, l.missing])).to.deep.equal([
        [env.sessionId, env.edgeId, 3n * TOKEN, TOKEN, 2n * TOKEN],
      ]);

      await redeem(3n * TOKEN);
      const paid = await readPayments(clients, market, ledger, payer, [env.edgeId, env.edge2]);
      expect(paid.find((p) => p.edgeId === env.edgeId)).to.include({ served: 3n * TOKEN, redeemed: 3n * TOKEN });
      expect(judgeCampaign(NO_FACTS, { firstEpoch: 1n, lastEpoch: 0n, payments: paid }).lostVouchers).to.deep.equal([]);
    } finally {
      client.disconnect();
    }
  });
});
