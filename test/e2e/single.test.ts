// A network with one verifier and quorum 1: the same path as a committee (observe, lead round 0,
// sign, submit once), with no peer to ask. The verifier runs as two processes sharing its Redis
// queues (scale-out): the challenges are shared between them, each runs once.
import { expect } from "chai";
import { Redis } from "ioredis";
import { network } from "hardhat";

import { waitFor } from "../helpers/e2e.ts";
import { deployNetwork, type Network } from "../helpers/network.ts";

describe("the network with a single verifier (quorum 1) in two processes", function () {
  this.timeout(6 * 60_000);
  let net: Network;
  let first: bigint;
  let second: string;

  before(async function () {
    const conn = await network.create();
    net = await deployNetwork(conn, { edges: [{}], verifiers: 1, quorum: 1 });
    await net.startEdges();
    first = await net.startEarningEpoch();
    await net.verifiers[0]!.start();
    second = await net.verifiers[0]!.startAnotherProcess();
  });

  after(async function () {
    await net?.stopAll();
  });

  it("observes, leads and submits the epoch alone, with its one signature", async function () {
    const { settlement } = net.contracts;
    const deadline = Date.now() + 4 * 60_000;
    while ((await settlement.epochRecord(first)).state === 0n) {
      if (Date.now() > deadline) throw new Error(`epoch ${first} was not submitted`);
      await new Promise((r) => setTimeout(r, 1_000));
    }
    const submitted = await settlement.queryFilter(settlement.filters.EpochSubmitted(first));
    expect(submitted).to.have.length(1);
    const tx = await net.conn.ethers.provider.getTransaction(submitted[0]!.transactionHash);
    const decoded = settlement.interface.parseTransaction({ data: tx!.data })!;
    expect(decoded.name).to.equal("submitEpoch");
    expect((decoded.args[1] as string).length).to.equal(2 + 130); // one 65-byte signature
    expect(tx!.from).to.equal(net.verifiers[0]!.address);
    const results = (await (await fetch(`${net.verifiers[0]!.url}/tideway/v1/epochs/${first}/results`)).json()) as {
      root: string;
      results: Array<{ edgeId: string; stake: string }>;
    };
    expect(results.root).to.equal(submitted[0]!.args.root);
    expect(results.results.map((r) => [r.edgeId, r.stake])).to.deep.equal([
      [net.edges[0]!.edgeId.toString(), net.edges[0]!.stake.toString()],
    ]);
    const status = (await (await fetch(`${net.verifiers[0]!.url}/tideway/v1/epochs/${first}/status`)).json()) as {
      state: string;
      root: string;
    };
    expect(status).to.include({ state: "attested", root: submitted[0]!.args.root });
    // The chain can show the submission before the verifier has written its log line about it.
    const logDeadline = Date.now() + 15_000;
    let submittedLog = net.verifiers[0]!.logs().find((l) => l.msg === "epoch submitted" && l.epoch === first.toString());
    while (submittedLog === undefined && Date.now() < logDeadline) {
      await new Promise((r) => setTimeout(r, 250));
      submittedLog = net.verifiers[0]!.logs().find((l) => l.msg === "epoch submitted" && l.epoch === first.toString());
    }
    expect(submittedLog?.round).to.equal(0);
    expect(submittedLog?.signers).to.equal(1);
  });

  it("shares the epoch's planned challenges between its two processes, recording results only for planned ones", async function () {
    const counted = async (url: string) => {
      const text = await (await fetch(`${url}/metrics`)).text();
      return text
        .split("\n")
        .filter((l) => l.startsWith("tideway_verifier_challenges_total{"))
        .reduce((a, l) => a + Number(l.split(" ").at(-1)), 0);
    };
    const redis = new Redis(net.redis.url);
    try {
      const plan = JSON.parse((await redis.get(`v1:v:plan:${first}:${net.edges[0]!.edgeId}`))!) as Array<{ id: string }>;
      const planned = plan.map((p) => p.id).sort();
      const resultsNow = async () => (await redis.hkeys(`v1:v:results:${first}:${net.edges[0]!.edgeId}`)).sort();
      // A challenge the edge stalled on is retried with backoff, so its result can land after the
      // epoch was submitted (or never, when its epoch ended first: it is then dropped, not run).
      await waitFor("a result for every planned challenge", 60_000, async () =>
        (await resultsNow()).length === planned.length ? true : undefined,
      ).catch(() => undefined);
      const results = await resultsNow();
      expect(planned, "every result is of a planned challenge").to.include.members(results);
      expect(results.length, "the challenges of the epoch ran").to.be.greaterThan((planned.length * 3) / 4);
      const [a, b] = [await counted(net.verifiers[0]!.url), await counted(second)];
      expect(a, "first process ran challenges").to.be.greaterThan(0);
      expect(b, "second process ran challenges").to.be.greaterThan(0);
    } finally {
      redis.disconnect();
    }
  });
});
