// The whole network, end to end, in real time, while things break: two edges, three verifier
// processes with quorum 2 sharing one Redis, one-minute epochs. A kill -9 of the epoch's leader
// while it attests, a Redis restart mid-epoch, ten seconds of RPC errors and an edge that stops
// answering for a whole epoch: every epoch is still submitted exactly once and never frozen, no
// planned challenge is lost, and the silent edge is reported Unresponsive and slashed.
import { expect } from "chai";
import { Redis } from "ioredis";
import { network } from "hardhat";

import { chainTime, epochWithTimeAhead, leaderOrder, metric, settledOnce, sleep, waitFor } from "../helpers/e2e.ts";
import { deployNetwork, type Network } from "../helpers/network.ts";

describe("the network end to end through failures (2 edges; 3 verifiers, quorum 2; 60 s epochs)", function () {
  this.timeout(20 * 60_000);
  let net: Network;
  let first: bigint;

  before(async function () {
    const conn = await network.create();
    net = await deployNetwork(conn, { edges: [{}, {}], verifiers: 3, quorum: 2 });
    await net.startEdges();
    first = await net.startEarningEpoch();
    await Promise.all(net.verifiers.map((v) => v.start()));
  });

  after(async function () {
    await net?.stopAll();
  });

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
    await settledOnce(net, epoch);
    // The restarted process is healthy and challenging again (its counters start from zero).
    await waitFor("the restarted verifier to run challenges", 2 * 60_000, async () =>
      (await metric(leader.url, "tideway_verifier_challenges_total")) > 0 ? true : undefined,
    );
    // Healthy once its own first tick has read the chain (jobs left in Redis may run before that).
    await waitFor("the restarted verifier to be healthy", 60_000, async () =>
      (await fetch(`${leader.url}/health`)).status === 200 ? true : undefined,
    );
  });

  it("a Redis restart (AOF on) mid-epoch loses no job: every planned challenge runs and the epoch settles once", async function () {
    const { staking } = net.contracts;
    const epoch = await epochWithTimeAhead(net, 20n);
    const start = await staking.epochStartTime(epoch);
    await waitFor("the middle of the epoch", 3 * 60_000, async () => ((await chainTime(net)) >= start + 20n ? true : undefined));
    await net.redis.stop();
    await sleep(3_000);
    await net.redis.start();
    await settledOnce(net, epoch);
    const redis = new Redis(net.redis.url);
    try {
      for (const v of net.verifiers) {
        for (const edge of net.edges.slice(0, 2)) {
          const plan = await redis.get(`v${v.index + 1}:v:plan:${epoch}:${edge.edgeId}`);
          expect(plan, `verifier ${v.index + 1} planned edge #${edge.edgeId}`).to.not.equal(null);
          const planned = (JSON.parse(plan!) as unknown[]).length;
          expect(
            await redis.hlen(`v${v.index + 1}:v:results:${epoch}:${edge.edgeId}`),
            `verifier ${v.index + 1}, edge #${edge.edgeId}: every planned challenge has a result`,
          ).to.equal(planned);
        }
      }
    } finally {
      redis.disconnect();
    }
  });

  it("ten seconds of RPC errors: the verifiers recover, catch up and settle the epoch once", async function () {
    const { staking } = net.contracts;
    const epoch = await epochWithTimeAhead(net, 25n);
    const start = await staking.epochStartTime(epoch);
    await waitFor("the middle of the epoch", 3 * 60_000, async () => ((await chainTime(net)) >= start + 25n ? true : undefined));
    const failedBefore = net.rpc.failedCalls;
    net.rpc.failFor(10_000);
    await sleep(10_000);
    expect(net.rpc.failedCalls).to.be.greaterThan(failedBefore);
    await settledOnce(net, epoch);
    for (const v of net.verifiers) {
      expect(
        await metric(v.url, 'tideway_verifier_ticks_total{result="error"}'),
        `verifier ${v.index + 1} saw the outage`,
      ).to.be.greaterThan(0);
      expect((await fetch(`${v.url}/health`)).status, `verifier ${v.index + 1} healthy again`).to.equal(200);
    }
  });

  it("an edge that stops answering for a whole epoch is reported Unresponsive by a quorum that saw it too, and slashed", async function () {
    const { settlement, staking } = net.contracts;
    const down = net.edges[1]!;
    // Stop it at the start of the next epoch (it redeems on the way out) and leave it down.
    const epoch = (await staking.currentEpoch()) + 1n;
    const start = await staking.epochStartTime(epoch);
    await waitFor("the next epoch", 2 * 60_000, async () => ((await chainTime(net)) >= start ? true : undefined));
    await net.stopEdge(down.index);
    await waitFor(`the Unresponsive fault of edge #${down.edgeId}`, 4 * 60_000, async () =>
      (await settlement.faultReported(down.edgeId, epoch)) ? true : undefined,
    );
    const [event] = await settlement.queryFilter(settlement.filters.FaultReported(down.edgeId, epoch));
    expect(event!.args.kind).to.equal(1n); // Unresponsive
    expect(event!.args.slashed).to.be.greaterThan(0n);
    expect(await staking.edgeStatus(down.edgeId)).to.equal(4n); // Jailed
    // Co-signed only because the others' own challenges found it unresponsive too.
    const cosigned = net.verifiers
      .flatMap((v) => v.logs())
      .filter((l) => l.msg === "co-signed a fault" && l.kind === "Unresponsive" && l.edgeId === down.edgeId.toString());
    expect(cosigned.length).to.be.greaterThan(0);
  });
});
