// The whole network, end to end, in real time: three edges (the third answers every chat
// completion wrongly, and signs its wrong answers), three verifier processes with quorum 2 on one
// Redis, a dApp paying for traffic, one-minute epochs. It checks what the protocol promises: each
// epoch is attested once by a quorum and, once final, each honest edge's pool is paid its
// stake × quality share of the epoch's emission; the bad edge is slashed and jailed; the dApp's
// fees are redeemed by the edges. Then it breaks things: kill -9 of a verifier while it attests,
// a Redis restart, ten seconds of RPC errors, a peer that forges signatures and never leads.
import { expect } from "chai";
import { network } from "hardhat";

import { QUALITY_ONE } from "../../../lib/protocol/merkle.ts";
import { deployNetwork, type Network } from "../../helpers/network.ts";
import { goToEpoch } from "../../helpers/protocol.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await sleep(1_000);
  }
}

describe("the network end to end (3 edges, one bad; 3 verifiers, quorum 2; 60 s epochs)", function () {
  this.timeout(20 * 60_000);
  let net: Network;
  let first: bigint;

  before(async function () {
    const conn = await network.create();
    net = await deployNetwork(conn, { edges: [{}, {}, { wrongAnswerRate: 1 }], verifiers: 3, quorum: 2 });
    await net.startEdges();
    // New stake earns only after its warm-up (rewardCreditWindow + 1 epochs): start the verifiers
    // at the start of the first epoch in which the edges' stake earns.
    const { staking } = net.contracts;
    first = await staking.currentEpoch();
    do {
      first += 1n;
      await goToEpoch(conn, staking, first);
    } while ((await staking.edgeStake(net.edges[0]!.edgeId))[1] === 0n);
    await net.followWallClock();
    await Promise.all(net.verifiers.map((v) => v.start()));
  });

  after(async function () {
    await net?.stopAll();
  });

  it("reports the bad edge's wrong answer with a quorum: it is slashed and jailed", async function () {
    const { settlement, staking } = net.contracts;
    const bad = net.edges[2]!.edgeId;
    const stakeBefore = (await staking.edgeStake(bad))[0];
    const faultEpoch = await waitFor("the bad edge's fault report", 150_000, async () => {
      for (let e = first; e <= first + 1n; e++) if (await settlement.faultReported(bad, e)) return e;
      return undefined;
    });
    const events = await settlement.queryFilter(settlement.filters.FaultReported(bad));
    expect(events).to.have.length(1);
    expect(events[0]!.args.epoch).to.equal(faultEpoch);
    expect(events[0]!.args.kind).to.equal(0n); // WrongAnswer
    expect(events[0]!.args.slashed).to.be.greaterThan(0n);
    expect(await staking.edgeStatus(bad)).to.equal(4n); // Jailed
    expect((await staking.edgeStake(bad))[0]).to.equal(stakeBefore - events[0]!.args.slashed);
  });

  it("settles three epochs exactly once and pays each honest pool its stake × quality share", async function () {
    const { settlement, staking } = net.contracts;
    // Paid traffic on the honest edges while the epochs run.
    for (let i = 0; i < 4; i++) {
      for (const index of [0, 1]) expect((await net.dappRequest(index, `question ${i} for edge ${index}`)).status).to.equal(200);
    }
    const last = first + 2n;
    await waitFor(`epochs ${first}–${last} claimed`, 8 * 60_000, async () => {
      for (let e = first; e <= last; e++) {
        const claims = await settlement.queryFilter(settlement.filters.RewardClaimed(e));
        if (claims.length < 2) return undefined;
      }
      return true;
    });
    for (let e = first; e <= last; e++) {
      const submitted = await settlement.queryFilter(settlement.filters.EpochSubmitted(e));
      expect(submitted, `epoch ${e} submitted once`).to.have.length(1);
      expect(await settlement.queryFilter(settlement.filters.EpochFrozen(e)), `epoch ${e} never frozen`).to.have.length(0);
      const { root, totalWeight } = submitted[0]!.args;
      const results = (await (await fetch(`${net.verifiers[0]!.url}/v1/epochs/${e}/results`)).json()) as { root: string; totalWeight: string; results: Array<{ edgeId: string; stake: string; quality: string }> };
      expect(results.root).to.equal(root);
      expect(BigInt(results.totalWeight)).to.equal(totalWeight);
      const sum = results.results.reduce((acc, r) => acc + BigInt(r.stake) * BigInt(r.quality), 0n);
      expect(sum).to.equal(totalWeight);
      const { emission } = await settlement.epochFunds(e);
      expect(emission).to.be.greaterThan(0n);
      for (const edge of net.edges.slice(0, 2)) {
        const leaf = results.results.find((r) => BigInt(r.edgeId) === edge.edgeId);
        expect(leaf, `edge #${edge.edgeId} in epoch ${e}`).to.not.equal(undefined);
        expect(BigInt(leaf!.stake)).to.equal(edge.stake);
        expect(BigInt(leaf!.quality)).to.be.greaterThan((QUALITY_ONE * 8n) / 10n);
        const claimed = await settlement.queryFilter(settlement.filters.RewardClaimed(e, edge.edgeId));
        expect(claimed).to.have.length(1);
        const expected = (emission * BigInt(leaf!.stake) * BigInt(leaf!.quality)) / totalWeight;
        expect(claimed[0]!.args.reward).to.equal(expected);
        expect(claimed[0]!.args.credited).to.equal(expected);
      }
      // The bad edge earns nothing once jailed.
      const badLeaf = results.results.find((r) => BigInt(r.edgeId) === net.edges[2]!.edgeId);
      if (badLeaf !== undefined) {
        const badClaims = await settlement.queryFilter(settlement.filters.RewardClaimed(e, net.edges[2]!.edgeId));
        for (const c of badClaims) expect(c.args.credited).to.equal(0n);
      }
    }
    expect((await staking.position(net.edges[0]!.edgeId, await net.edges[0]!.operator.getAddress()))[3]).to.be.greaterThan(0n);
  });

  it("redeems the dApp's fees when the edges stop", async function () {
    const { market } = net.contracts;
    await net.stopEdges();
    for (const edge of net.edges.slice(0, 2)) {
      const paid = net.paidSoFar.get(edge.edgeId)!;
      expect(paid).to.be.greaterThan(0n);
      expect(await market.redeemed(net.dappSession, edge.edgeId)).to.equal(paid);
    }
  });

});
