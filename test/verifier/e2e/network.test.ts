// The whole network, end to end, in real time: three edges (the third answers every chat
// completion wrongly, and signs its wrong answers), three verifier processes with quorum 2 on one
// Redis, a dApp paying for traffic, one-minute epochs. It checks what the protocol promises: each
// epoch is attested once by a quorum and, once final, each honest edge's pool is paid its
// stake × quality share of the epoch's emission; the bad edge is slashed and jailed; the dApp's
// fees are redeemed by the edges. Then it breaks things: kill -9 of a verifier while it attests,
// a Redis restart, ten seconds of RPC errors, a peer that forges signatures and never leads.
import { expect } from "chai";
import { Redis } from "ioredis";
import { network } from "hardhat";

import { QUALITY_ONE } from "../../../lib/protocol/merkle.ts";
import { deployNetwork, type Network } from "../../helpers/network.ts";

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

/** Verifier signing keys in leader order (active verifiers sorted by key, as the verifiers sort them). */
async function leaderOrder(net: Network): Promise<string[]> {
  const { verifierSet } = net.contracts;
  const keys: string[] = [];
  for (let id = 1n; id <= (await verifierSet.verifierCount()); id++) {
    const v = await verifierSet.verifier(id);
    if (v.status === 2n) keys.push(v.signingKey);
  }
  return keys.sort((a, b) => (BigInt(a) < BigInt(b) ? -1 : 1));
}

async function chainTime(net: Network): Promise<bigint> {
  return BigInt((await net.conn.ethers.provider.getBlock("latest"))!.timestamp);
}

async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return text.split("\n").filter((l) => l.startsWith(name)).reduce((acc, l) => acc + Number(l.split(" ").at(-1)), 0);
}

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

  /** The first epoch whose `offset` seconds after its start are still ahead. */
  async function epochWithTimeAhead(offset: bigint): Promise<bigint> {
    const { staking } = net.contracts;
    const current = await staking.currentEpoch();
    return (await chainTime(net)) < (await staking.epochStartTime(current)) + offset ? current : current + 1n;
  }

  /** Waits until `epoch` is submitted; checks it was submitted once and never frozen. */
  async function settledOnce(epoch: bigint): Promise<void> {
    const { settlement } = net.contracts;
    await waitFor(`epoch ${epoch} submitted`, 4 * 60_000, async () => ((await settlement.epochRecord(epoch)).state !== 0n ? true : undefined));
    expect(await settlement.queryFilter(settlement.filters.EpochSubmitted(epoch)), `epoch ${epoch} submitted once`).to.have.length(1);
    expect(await settlement.queryFilter(settlement.filters.EpochFrozen(epoch)), `epoch ${epoch} never frozen`).to.have.length(0);
  }

  it("kill -9 of the leader while it attests: the epoch settles exactly once, and the restarted verifier carries on", async function () {
    const { staking } = net.contracts;
    const order = await leaderOrder(net);
    let epoch = first + 1n;
    while (net.verifiers.every((v) => v.address.toLowerCase() !== order[Number(epoch % BigInt(order.length))]!.toLowerCase())) epoch++;
    const leader = net.verifiers.find((v) => v.address.toLowerCase() === order[Number(epoch % BigInt(order.length))]!.toLowerCase())!;
    const end = await staking.epochStartTime(epoch + 1n);
    // The leader scores the epoch 3 s (graceMs) after its end, then gathers and signs: kill it then.
    await waitFor("the leader's attestation to start", 4 * 60_000, async () => ((await chainTime(net)) >= end + 4n ? true : undefined));
    await leader.stop("SIGKILL");
    await sleep(5_000);
    await leader.start();
    await settledOnce(epoch);
    // The restarted process is healthy and challenging again (its counters start from zero).
    await waitFor("the restarted verifier to run challenges", 2 * 60_000, async () => ((await metric(leader.url, "tideway_verifier_challenges_total")) > 0 ? true : undefined));
    expect((await fetch(`${leader.url}/health`)).status).to.equal(200);
  });

  it("a Redis restart (AOF on) mid-epoch loses no job: every planned challenge runs and the epoch settles once", async function () {
    const { staking } = net.contracts;
    const epoch = await epochWithTimeAhead(20n);
    const start = await staking.epochStartTime(epoch);
    await waitFor("the middle of the epoch", 3 * 60_000, async () => ((await chainTime(net)) >= start + 20n ? true : undefined));
    await net.redis.stop();
    await sleep(3_000);
    await net.redis.start();
    await settledOnce(epoch);
    const redis = new Redis(net.redis.url);
    try {
      for (const v of net.verifiers) {
        for (const edge of net.edges.slice(0, 2)) {
          const plan = await redis.get(`v${v.index + 1}:v:plan:${epoch}:${edge.edgeId}`);
          expect(plan, `verifier ${v.index + 1} planned edge #${edge.edgeId}`).to.not.equal(null);
          const planned = (JSON.parse(plan!) as unknown[]).length;
          expect(await redis.hlen(`v${v.index + 1}:v:results:${epoch}:${edge.edgeId}`), `verifier ${v.index + 1}, edge #${edge.edgeId}: every planned challenge has a result`).to.equal(planned);
        }
      }
    } finally {
      redis.disconnect();
    }
  });

  it("ten seconds of RPC errors: the verifiers recover, catch up and settle the epoch once", async function () {
    const { staking } = net.contracts;
    const epoch = await epochWithTimeAhead(25n);
    const start = await staking.epochStartTime(epoch);
    await waitFor("the middle of the epoch", 3 * 60_000, async () => ((await chainTime(net)) >= start + 25n ? true : undefined));
    const failedBefore = net.rpc.failedCalls;
    net.rpc.failFor(10_000);
    await sleep(10_000);
    expect(net.rpc.failedCalls).to.be.greaterThan(failedBefore);
    await settledOnce(epoch);
    for (const v of net.verifiers) {
      expect(await metric(v.url, "tideway_verifier_ticks_total{result=\"error\"}"), `verifier ${v.index + 1} saw the outage`).to.be.greaterThan(0);
      expect((await fetch(`${v.url}/health`)).status, `verifier ${v.index + 1} healthy again`).to.equal(200);
    }
  });

  it("ignores and logs the forging peer's stale and forged signatures; when it should lead, the next leader settles", async function () {
    const order = await leaderOrder(net);
    const forger = net.forgingPeer!.address.toLowerCase();
    const current = await net.contracts.staking.currentEpoch();
    let silent = first;
    while (order[Number(silent % BigInt(order.length))]!.toLowerCase() !== forger) silent++;
    expect(silent, "the forging peer led round 0 of an epoch already settled").to.be.lessThan(current);
    await settledOnce(silent);
    const submittedBy = net.verifiers.flatMap((v) => v.logs()).filter((l) => l.msg === "epoch submitted" && l.epoch === silent.toString());
    expect(submittedBy).to.have.length.greaterThan(0);
    expect(Number(submittedBy[0]!.round)).to.be.greaterThan(0);
    const rejections = await Promise.all(net.verifiers.map((v) => metric(v.url, "tideway_verifier_peer_rejections_total")));
    expect(rejections.reduce((a, b) => a + b, 0)).to.be.greaterThan(0);
    const logged = net.verifiers.flatMap((v) => v.logs()).filter((l) => typeof l.msg === "string" && l.msg.startsWith("ignored"));
    expect(logged.map((l) => l.msg)).to.include.members(["ignored a signature that is not the peer's key on this attestation (forged or stale)"]);
    expect(net.forgingPeer!.requests.some((r) => r.includes("/attestations"))).to.equal(true);
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
      const results = (await (await fetch(`${net.verifiers[0]!.url}/tideway/v1/epochs/${e}/results`)).json()) as { root: string; totalWeight: string; results: Array<{ edgeId: string; stake: string; quality: string }> };
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

  it("an edge that stops answering for a whole epoch is reported Unresponsive by a quorum that saw it too, and slashed", async function () {
    const { settlement, staking } = net.contracts;
    const down = net.edges[1]!;
    // Stop it at the start of the next epoch (it redeems on the way out) and leave it down.
    const epoch = (await staking.currentEpoch()) + 1n;
    const start = await staking.epochStartTime(epoch);
    await waitFor("the next epoch", 2 * 60_000, async () => ((await chainTime(net)) >= start ? true : undefined));
    await net.stopEdge(down.index);
    await waitFor(`the Unresponsive fault of edge #${down.edgeId}`, 4 * 60_000, async () => ((await settlement.faultReported(down.edgeId, epoch)) ? true : undefined));
    const [event] = await settlement.queryFilter(settlement.filters.FaultReported(down.edgeId, epoch));
    expect(event!.args.kind).to.equal(1n); // Unresponsive
    expect(event!.args.slashed).to.be.greaterThan(0n);
    expect(await staking.edgeStatus(down.edgeId)).to.equal(4n); // Jailed
    // Co-signed only because the others' own challenges found it unresponsive too.
    const cosigned = net.verifiers.flatMap((v) => v.logs()).filter((l) => l.msg === "co-signed a fault" && l.kind === "Unresponsive" && l.edgeId === down.edgeId.toString());
    expect(cosigned.length).to.be.greaterThan(0);
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
