// The whole network in real time (two edges, one of which serves one request at a time while it
// declares 200 tokens/s; three verifier processes, quorum 2; one-minute epochs): attestation rounds
// go on through an RPC outage longer than a round's retries and the sender's patience; an edge that
// serves below its declared capacity is reported CapacityShortfall by the quorum and slashed; an edge
// that lost its usage log fails the audit of the epoch before, reported AuditFailure and slashed.
import { expect } from "chai";
import { network } from "hardhat";

import { FaultKind } from "../../lib/protocol/eip712.ts";
import { chainTime, settledOnce, sleep, waitFor } from "../helpers/e2e.ts";
import { deployNetwork, type Network } from "../helpers/network.ts";

describe("the network through a long RPC outage, an edge below its declared capacity and one that lost its log (2 edges; 3 verifiers, quorum 2; 60 s epochs)", function () {
  this.timeout(20 * 60_000);
  let net: Network;

  before(async function () {
    const conn = await network.create();
    net = await deployNetwork(conn, { edges: [{}, { limits: { maxConcurrent: 1, maxQueue: 0 } }], verifiers: 3, quorum: 2 });
    await net.startEdges();
    await net.startEarningEpoch();
    await Promise.all(net.verifiers.map((v) => v.start()));
  });

  after(async function () {
    await net?.stopAll();
  });

  it("an RPC outage longer than a round's retries and the sender's patience, from the moment every verifier observed an epoch: rounds go on, and the epoch settles once", async function () {
    const { staking } = net.contracts;
    const epoch = (await staking.currentEpoch()) + 1n;
    const end = await staking.epochStartTime(epoch + 1n);
    // Nothing can be submitted from the epoch's end (transactions refused) until the outage starts.
    await waitFor(`the end of epoch ${epoch}`, 3 * 60_000, async () => ((await chainTime(net)) >= end ? true : undefined));
    net.rpc.dropRawTransactions = true;
    const deadline = Date.now() + 2 * 60_000;
    for (;;) {
      const states = await Promise.all(
        net.verifiers.map(
          async (v) => ((await (await fetch(`${v.url}/tideway/v1/epochs/${epoch}/status`)).json()) as { state: string }).state,
        ),
      );
      if (states.every((s) => s !== "unknown")) break;
      if (Date.now() > deadline) throw new Error(`the verifiers did not all observe epoch ${epoch}: ${states.join(", ")}`);
      await sleep(200);
    }
    // Rounds started; the outage outlasts several rounds' attempts and the sender's 120 s of RPC retries.
    net.rpc.failFor(150_000);
    net.rpc.dropRawTransactions = false;
    const failedBefore = net.rpc.failedCalls;
    await sleep(150_000);
    expect(net.rpc.failedCalls).to.be.greaterThan(failedBefore);
    await settledOnce(net, epoch);
  });

  it("an edge that serves one request at a time while declaring 200 tokens/s is reported CapacityShortfall by a quorum, and slashed", async function () {
    const { settlement, staking } = net.contracts;
    const small = net.edges[1]!;
    const reported = await waitFor(`a CapacityShortfall of edge #${small.edgeId}`, 5 * 60_000, async () => {
      const [event] = await settlement.queryFilter(settlement.filters.FaultReported(small.edgeId));
      return event;
    });
    expect(reported.args.kind).to.equal(BigInt(FaultKind.CapacityShortfall));
    expect(reported.args.slashed).to.be.greaterThan(0n);
    expect(await staking.edgeStatus(small.edgeId)).to.equal(4n); // Jailed
    // Co-signed only by verifiers whose own bursts found the shortfall too.
    const cosigned = net.verifiers
      .flatMap((v) => v.logs())
      .filter((l) => l.msg === "co-signed a fault" && l.kind === "CapacityShortfall" && l.edgeId === small.edgeId.toString());
    expect(cosigned.length).to.be.greaterThan(0);
  });

  it("an edge that lost its usage log after an epoch fails the audit of it: AuditFailure reported by a quorum, and slashed", async function () {
    const { settlement, staking } = net.contracts;
    const edge = net.edges[0]!;
    const epoch = (await staking.currentEpoch()) + 1n;
    const start = await staking.epochStartTime(epoch);
    // Restarted on an empty data directory just after `epoch` begins: its commitment to the
    // previous epoch's log, which the verifiers audit in `epoch`, lacks their receipted challenges.
    await waitFor(`the start of epoch ${epoch}`, 3 * 60_000, async () => ((await chainTime(net)) >= start + 1n ? true : undefined));
    await net.restartEdgeWithoutData(edge.index);
    const reported = await waitFor(`the AuditFailure of edge #${edge.edgeId}`, 5 * 60_000, async () => {
      const [event] = await settlement.queryFilter(settlement.filters.FaultReported(edge.edgeId, epoch));
      return event;
    });
    expect(reported.args.kind).to.equal(BigInt(FaultKind.AuditFailure));
    expect(reported.args.slashed).to.be.greaterThan(0n);
    expect(await staking.edgeStatus(edge.edgeId)).to.equal(4n); // Jailed
    const cosigned = net.verifiers
      .flatMap((v) => v.logs())
      .filter((l) => l.msg === "co-signed a fault" && l.kind === "AuditFailure" && l.edgeId === edge.edgeId.toString());
    expect(cosigned.length).to.be.greaterThan(0);
  });
});
