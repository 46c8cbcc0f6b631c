// verifier/consensus/pool.ts: reports built on a piscina worker thread equal the direct call
// (attestation, leaves, signers, the tree's root, leaf hashes and proofs), a ReportError comes back
// typed with its problem and signer, and the event loop stays free while a large report is built.
import { expect } from "chai";
import type { Address, Hex } from "viem";

import { verifierDomain } from "../../../../lib/protocol/eip712.ts";
import { syntheticResult } from "../../../../bench/fixtures.ts";
import { verifyEpochClaim } from "../../../../lib/protocol/merkle.ts";
import type { EdgeObservation } from "../../../../lib/protocol/verifierMessages.ts";
import { signObservation } from "../../../../verifier/consensus/observation.ts";
import { createReportPool, type ReportPool } from "../../../../verifier/consensus/pool.ts";
import { buildReport, ReportError, type ReportInput } from "../../../../verifier/consensus/report.ts";

const domain = verifierDomain(31337n, "0x5FbDB2315678afecb367f032d93F642f64180aa3");
const KEYS: Hex[] = [1, 2, 3].map((i): Hex => `0x${(0x5eed00n + BigInt(i)).toString(16).padStart(64, "0")}`);

/** Three observations of `n` synthetic edges: qualities shifted by verifier, verifier 2 missing every 10th edge. */
function inputFor(epoch: bigint, n: number): ReportInput {
  const observations = KEYS.map((key, j) => {
    const results: EdgeObservation[] = [];
    for (let i = 0; i < n; i++) {
      if (j === 2 && i % 10 === 0) continue;
      const r = syntheticResult(i);
      results.push({ ...r, quality: r.quality === 0n ? 0n : r.quality - BigInt(j) });
    }
    return signObservation(key, domain, epoch, results);
  });
  return { epoch, observations, quorum: 2, activeSigners: observations.map((o) => o.signer), domain };
}

describe("consensus report pool", () => {
  let pool: ReportPool;
  before(() => {
    pool = createReportPool();
  });
  after(async () => {
    await pool.close();
  });

  it("gives the same report as a direct buildReport call, tree included", async () => {
    const input = inputFor(21n, 2_000);
    const direct = buildReport(input);
    const pooled = await pool.buildReport(input);
    expect(pooled.attestation).to.deep.equal(direct.attestation);
    expect(pooled.results).to.deep.equal(direct.results);
    expect(pooled.signers).to.deep.equal(direct.signers);
    const [d, p] = [direct.tree!, pooled.tree!];
    expect(p.root).to.equal(d.root);
    expect(p.size).to.equal(d.size);
    expect(p.totalWeight).to.equal(d.totalWeight);
    expect(Buffer.from(p.nodes).equals(Buffer.from(d.nodes))).to.equal(true);
    for (const i of [0, 1, 777, d.size - 1]) {
      const edgeId = direct.results[i].edgeId;
      expect(p.treeIndexOf(i)).to.equal(d.treeIndexOf(i));
      expect(p.proofAt(i)).to.deep.equal(d.proofAt(i));
      expect(p.leafHashAt(i)).to.equal(d.leafHashAt(i));
      expect(p.leafHash(edgeId)).to.equal(d.leafHash(edgeId));
      expect(p.claim(edgeId)).to.deep.equal(d.claim(edgeId));
      expect(verifyEpochClaim(p.root, 21n, p.claim(edgeId))).to.equal(true);
    }
    // Edge 1 (index 0 of the synthetic results) has quality 0 everywhere: not a leaf in either.
    expect(() => p.claim(1n)).to.throw(/not in the tree/);
    expect(() => d.claim(1n)).to.throw(/not in the tree/);
  });

  it("returns a report without a tree when nothing has weight", async () => {
    const input = inputFor(3n, 1); // the only synthetic edge has quality 0
    const pooled = await pool.buildReport(input);
    expect(pooled).to.deep.equal({ attestation: null, results: [], tree: undefined, signers: buildReport(input).signers });
  });

  it("rethrows a ReportError with its problem and signer", async () => {
    const input = inputFor(21n, 10);
    const stranger = input.observations[1].signer;
    const active = input.activeSigners.filter((s) => s !== stranger) as Address[];
    try {
      await pool.buildReport({ ...input, activeSigners: active });
      expect.fail("no error");
    } catch (err) {
      expect(err).to.be.instanceOf(ReportError);
      expect((err as ReportError).problem).to.equal("inactive_signer");
      expect((err as ReportError).signer).to.equal(stranger);
    }
    try {
      await pool.buildReport({ ...input, observations: input.observations.slice(0, 1) });
      expect.fail("no error");
    } catch (err) {
      expect(err).to.be.instanceOf(ReportError);
      expect((err as ReportError).problem).to.equal("below_quorum");
    }
  });

  it("keeps the event loop free while it builds a 20,000-edge report", async () => {
    const input = inputFor(22n, 20_000);
    let ticks = 0;
    let longestGap = 0;
    let last = performance.now();
    const timer = setInterval(() => {
      const now = performance.now();
      longestGap = Math.max(longestGap, now - last);
      last = now;
      ticks++;
    }, 5);
    const started = performance.now();
    const report = await pool.buildReport(input);
    const elapsed = performance.now() - started;
    clearInterval(timer);
    console.log(
      `      built in ${elapsed.toFixed(0)} ms on the worker; longest event-loop gap ${longestGap.toFixed(0)} ms, ${ticks} ticks`,
    );
    expect(report.results.length).to.be.greaterThan(19_000);
    // The build takes hundreds of ms; a direct call would have blocked every tick for all of it.
    expect(elapsed).to.be.greaterThan(100);
    expect(ticks).to.be.greaterThan(5);
    expect(longestGap).to.be.lessThan(elapsed / 2);
  });
});
