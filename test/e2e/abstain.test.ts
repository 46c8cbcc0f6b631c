// Verifiers that could not observe an epoch abstain instead of scoring its edges zero. The whole
// network in real time (two edges; three verifier processes, quorum 2, each on its own Redis; one-
// minute epochs): a verifier whose Redis is down through most of an epoch signs no observation of
// it, and the two that observed settle it with non-zero qualities; when every verifier's Redis is
// down through an epoch, all abstain and the epoch is skipped, never attested with zeros.
import { expect } from "chai";
import { network } from "hardhat";

import type { ScratchRedis } from "../../devnet/redis.ts";
import { chainTime, metric, settledOnce, waitFor } from "../helpers/e2e.ts";
import { deployNetwork, type Network, type VerifierProcess } from "../helpers/network.ts";

async function getJson(url: string): Promise<{ status: number; json: any }> {
  const response = await fetch(url);
  return { status: response.status, json: await response.json() };
}

describe("verifiers that could not observe an epoch abstain (2 edges; 3 verifiers, quorum 2, a Redis each; 60 s epochs)", function () {
  this.timeout(20 * 60_000);
  let net: Network;

  before(async function () {
    const conn = await network.create();
    net = await deployNetwork(conn, { edges: [{}, {}], verifiers: 3, quorum: 2, redisPerVerifier: true });
    await net.startEdges();
    await net.startEarningEpoch();
    await Promise.all(net.verifiers.map((v) => v.start()));
  });

  after(async function () {
    await net?.stopAll();
  });

  /** Stops `redises` from 8 s into the next epoch until 6 s after its end (its challenges expire unrun); returns that epoch. */
  async function redisDownThroughNextEpoch(redises: ScratchRedis[]): Promise<bigint> {
    const { staking } = net.contracts;
    const epoch = (await staking.currentEpoch()) + 1n;
    const start = await staking.epochStartTime(epoch);
    const end = await staking.epochStartTime(epoch + 1n);
    await waitFor(`8 s into epoch ${epoch}`, 3 * 60_000, async () => ((await chainTime(net)) >= start + 8n ? true : undefined));
    await Promise.all(redises.map((r) => r.stop()));
    await waitFor(`6 s after epoch ${epoch}`, 3 * 60_000, async () => ((await chainTime(net)) >= end + 6n ? true : undefined));
    await Promise.all(redises.map((r) => r.start()));
    return epoch;
  }

  /** What `v` says of its observation of `epoch`, once it scored it (not 425). */
  async function observationOf(v: VerifierProcess, epoch: bigint) {
    return waitFor(`verifier ${v.index + 1} to score epoch ${epoch}`, 2 * 60_000, async () => {
      const r = await getJson(`${v.url}/tideway/v1/epochs/${epoch}/observation`).catch(() => undefined);
      return r === undefined || r.status === 425 || r.status >= 500 ? undefined : r;
    });
  }

  async function expectAbstained(v: VerifierProcess, epoch: bigint): Promise<void> {
    const answer = await observationOf(v, epoch);
    expect(answer.status, `verifier ${v.index + 1} signs no observation of epoch ${epoch}`).to.equal(409);
    expect(answer.json.error.code).to.equal("abstained");
    const { coverage } = answer.json.error;
    expect(coverage.planned).to.be.greaterThan(0);
    expect(coverage.ran / coverage.planned, "most of its planned challenges never ran").to.be.lessThan(0.5);
    const status = (await getJson(`${v.url}/tideway/v1/epochs/${epoch}/status`)).json;
    expect(status.coverage).to.deep.equal(coverage);
    expect(await metric(v.url, "tideway_verifier_epochs_abstained_total")).to.be.greaterThan(0);
  }

  it("one verifier's Redis down through most of an epoch: it abstains, and the two that observed settle it with non-zero qualities", async function () {
    const { settlement } = net.contracts;
    const [blind, ...seeing] = net.verifiers;
    const epoch = await redisDownThroughNextEpoch([net.verifierRedis[0]!]);
    await settledOnce(net, epoch);
    const [submitted] = await settlement.queryFilter(settlement.filters.EpochSubmitted(epoch));
    expect(submitted!.args.totalWeight).to.be.greaterThan(0n);

    await expectAbstained(blind!, epoch);
    for (const v of seeing) {
      const answer = await observationOf(v, epoch);
      expect(answer.status, `verifier ${v.index + 1} observed epoch ${epoch}`).to.equal(200);
      const { coverage } = (await getJson(`${v.url}/tideway/v1/epochs/${epoch}/status`)).json;
      expect(coverage.ran / coverage.planned, `verifier ${v.index + 1} ran most of its challenges`).to.be.at.least(0.5);
    }
    // The report the others signed was computed from their observations only, and scores every edge.
    const signed = await waitFor("a report signed by an observing verifier", 60_000, async () => {
      for (const v of seeing) {
        const r = await getJson(`${v.url}/tideway/v1/epochs/${epoch}/results`);
        if (r.status === 200) return { v, results: r.json };
      }
      return undefined;
    });
    expect(signed.results.root).to.equal(submitted!.args.root);
    expect(signed.results.results.map((r: { edgeId: string }) => r.edgeId)).to.deep.equal(net.edges.map((e) => e.edgeId.toString()));
    for (const leaf of signed.results.results) expect(BigInt(leaf.quality), `edge #${leaf.edgeId}`).to.be.greaterThan(0n);
    const { lock } = (await observationOf(signed.v, epoch)).json;
    const observers = (lock.observations as Array<{ signer: string }>).map((o) => o.signer.toLowerCase());
    expect(observers).to.not.include(blind!.address.toLowerCase());
  });

  it("every verifier's Redis down through an epoch: all abstain and the epoch is skipped, no edge scored zero for it", async function () {
    const { settlement } = net.contracts;
    const epoch = await redisDownThroughNextEpoch(net.verifierRedis);
    for (const v of net.verifiers) await expectAbstained(v, epoch);
    // A leader that hears the abstentions finds no quorum of observations can exist: it skips the epoch.
    await waitFor(`a verifier to skip epoch ${epoch}`, 3 * 60_000, async () => {
      for (const v of net.verifiers)
        if ((await getJson(`${v.url}/tideway/v1/epochs/${epoch}/status`)).json.state === "skipped") return true;
      return undefined;
    });
    let skipped = 0;
    for (const v of net.verifiers) {
      const { state } = (await getJson(`${v.url}/tideway/v1/epochs/${epoch}/status`)).json;
      expect(state, `verifier ${v.index + 1}`).to.be.oneOf(["abstained", "skipped"]);
      skipped += await metric(v.url, "tideway_verifier_epochs_skipped_total");
    }
    expect(skipped).to.be.greaterThan(0);
    expect((await settlement.epochRecord(epoch)).state).to.equal(0n);
    expect(await settlement.queryFilter(settlement.filters.EpochSubmitted(epoch))).to.have.length(0);
    // The next epoch, observed again, settles as usual.
    await settledOnce(net, epoch + 1n);
  });
});
