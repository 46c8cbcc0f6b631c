// The whole network, end to end, in real time, doing its job: three edges (the third answers
// every chat completion wrongly, and signs its wrong answers), three verifier processes with
// quorum 2, a peer that forges signatures, a dApp paying for traffic, one-minute epochs. Each epoch
// is attested once by a quorum and, once final, each honest edge's pool is paid its stake × quality
// share of the epoch's emission; the bad edge is slashed and jailed; the forging peer changes
// nothing; the dApp's fees are redeemed by the edges. (test/e2e/failures.test.ts breaks things.)
import { expect } from "chai";
import { network } from "hardhat";

import { QUALITY_ONE } from "../../lib/protocol/merkle.ts";
import { metric, leaderOrder, settledOnce, waitFor } from "../helpers/e2e.ts";
import { deployNetwork, type Network } from "../helpers/network.ts";

describe("the network end to end (3 edges, one bad; 3 verifiers and a forging peer, quorum 2; 60 s epochs)", function () {
  this.timeout(20 * 60_000);
  let net: Network;
  let first: bigint;

  before(async function () {
    const conn = await network.create();
    net = await deployNetwork(conn, { edges: [{}, {}, { wrongAnswerRate: 1 }], verifiers: 3, quorum: 2, forgingPeer: true });
    await net.startEdges();
    first = await net.startEarningEpoch();
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
      const results = (await (await fetch(`${net.verifiers[0]!.url}/tideway/v1/epochs/${e}/results`)).json()) as {
        root: string;
        totalWeight: string;
        results: Array<{ edgeId: string; stake: string; quality: string }>;
      };
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

  it("ignores and logs the forging peer's stale and forged signatures; when it should lead, the next leader settles", async function () {
    const order = await leaderOrder(net);
    const forger = net.forgingPeer!.address.toLowerCase();
    const current = await net.contracts.staking.currentEpoch();
    let silent = first;
    while (order[Number(silent % BigInt(order.length))]!.toLowerCase() !== forger) silent++;
    expect(silent, "the forging peer led round 0 of an epoch already settled").to.be.lessThan(current);
    await settledOnce(net, silent);
    // The chain can show the submission before the verifier has written its log line about it.
    const submittedBy = await waitFor("the submitting verifier's log line", 15_000, async () => {
      const lines = net.verifiers.flatMap((v) => v.logs()).filter((l) => l.msg === "epoch submitted" && l.epoch === silent.toString());
      return lines.length > 0 ? lines : undefined;
    });
    expect(Number(submittedBy[0]!.round)).to.be.greaterThan(0);
    const rejections = await Promise.all(net.verifiers.map((v) => metric(v.url, "tideway_verifier_peer_rejections_total")));
    expect(rejections.reduce((a, b) => a + b, 0)).to.be.greaterThan(0);
    const logged = net.verifiers.flatMap((v) => v.logs()).filter((l) => typeof l.msg === "string" && l.msg.startsWith("ignored"));
    expect(logged.map((l) => l.msg)).to.include.members([
      "ignored a signature that is not the peer's key on this attestation (forged or stale)",
    ]);
    expect(net.forgingPeer!.requests.some((r) => r.includes("/attestations"))).to.equal(true);
  });

  it("redeems the dApp's fees when the edges stop", async function () {
    const { market } = net.contracts;
    await net.stopEdges();
    // Edge #2 stopped (and redeemed) in the previous test; #1 now.
    for (const edge of net.edges.slice(0, 2)) {
      const paid = net.paidSoFar.get(edge.edgeId)!;
      expect(paid).to.be.greaterThan(0n);
      expect(await market.redeemed(net.dappSession, edge.edgeId)).to.equal(paid);
    }
  });
});
