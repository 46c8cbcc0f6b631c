// verifier/consensus/report.ts: the epoch report built from a set of signed observations. Checked
// against an independent reference (per edge: look the edge up in every observation, (0, 0) when
// absent, sort, take element ⌊(m-1)/2⌋) and the library Merkle builder; then end to end on the
// chain: the report's attestation, signed natively by a quorum, is accepted by submitEpoch, and a
// claim with a proof from the report's tree is paid the exact reward.
import { expect } from "chai";
import { getAddress } from "viem";
import type { Address, Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";

import { packQuorumSignatures, signEpochAttestation, verifierDomain } from "../../../../lib/protocol/eip712.ts";
import { buildEpochTree, QUALITY_ONE } from "../../../../lib/protocol/merkle.ts";
import type { EdgeResult } from "../../../../lib/protocol/merkle.ts";
import type { EdgeObservation } from "../../../../lib/protocol/verifierMessages.ts";
import { signObservation, type SignedObservation } from "../../../../verifier/consensus/observation.ts";
import { buildReport, medianResults, ReportError, signAttestation, type ReportInput } from "../../../../verifier/consensus/report.ts";
import { DISPUTE_WINDOW, goToEpoch, type Connection, connect } from "../../../helpers/protocol.ts";
import { defaultResults, deploySettlementBase, E, expectedFunding, rewardOf } from "../../../helpers/epochSettlement.ts";

const domain = verifierDomain(31337n, "0x5FbDB2315678afecb367f032d93F642f64180aa3");
const KEYS: Hex[] = Array.from({ length: 6 }, (_, i): Hex => `0x${(0xabc000n + BigInt(i) * 7_777n).toString(16).padStart(64, "0")}`);
const ADDRS: Address[] = KEYS.map((k) => privateKeyToAccount(k).address);
const TOKEN = 10n ** 18n;

const obsOf = (i: number, epoch: bigint, results: EdgeObservation[]): SignedObservation => signObservation(KEYS[i], domain, epoch, results);
const input = (observations: SignedObservation[], over: Partial<ReportInput> = {}): ReportInput => ({
  epoch: 10n,
  observations,
  quorum: 2,
  activeSigners: ADDRS,
  domain,
  ...over,
});
const r = (edgeId: bigint, stake: bigint, quality: bigint): EdgeObservation => ({ edgeId, stake, quality });

/** The reference report: Map lookups per edge (no merge), sort, element ⌊(m-1)/2⌋; leaves with stake × quality > 0. */
function referenceResults(lists: EdgeObservation[][]): EdgeResult[] {
  const ids = [...new Set(lists.flatMap((l) => l.map((x) => x.edgeId)))].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const lookups = lists.map((l) => new Map(l.map((x) => [x.edgeId, x])));
  const lowerMedian = (xs: bigint[]): bigint => [...xs].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))[Math.floor((xs.length - 1) / 2)];
  const out: EdgeResult[] = [];
  for (const id of ids) {
    const stake = lowerMedian(lookups.map((m) => m.get(id)?.stake ?? 0n));
    const quality = lowerMedian(lookups.map((m) => m.get(id)?.quality ?? 0n));
    if (stake * quality > 0n) out.push({ edgeId: id, stake, quality });
  }
  return out;
}

/** Deterministic pseudo-random integers in [0, n) (mulberry32), for reproducible random observations. */
function lcg(seed: number): (n: number) => number {
  let a = seed >>> 0;
  return (n) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((((t ^ (t >>> 14)) >>> 0) / 4_294_967_296) * n) >>> 0;
  };
}

function shuffled<T>(xs: readonly T[], rand: (n: number) => number): T[] {
  const out = [...xs];
  for (let i = out.length - 1; i > 0; i--) {
    const j = rand(i + 1);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

describe("consensus report", () => {
  describe("buildReport: medians", () => {
    it("takes the middle of three for stake and quality independently", () => {
      const report = buildReport(
        input([obsOf(0, 10n, [r(1n, 10n, 900_000n)]), obsOf(1, 10n, [r(1n, 30n, 100_000n)]), obsOf(2, 10n, [r(1n, 20n, 500_000n)])]),
      );
      // Stakes 10, 30, 20 → 20; qualities 900k, 100k, 500k → 500k (not the quality of the stake-20 observation).
      expect(report.results).to.deep.equal([{ edgeId: 1n, stake: 20n, quality: 500_000n }]);
      expect(report.attestation).to.deep.equal({ epoch: 10n, root: report.tree!.root, totalWeight: 20n * 500_000n });
    });

    it("takes the lower of the two middles for an even count (2 and 4 observations)", () => {
      const two = buildReport(input([obsOf(0, 10n, [r(1n, 10n, 800_000n)]), obsOf(1, 10n, [r(1n, 30n, 600_000n)])]));
      expect(two.results).to.deep.equal([{ edgeId: 1n, stake: 10n, quality: 600_000n }]);
      const four = buildReport(
        input([
          obsOf(0, 10n, [r(1n, 4n, 400_000n)]),
          obsOf(1, 10n, [r(1n, 1n, 300_000n)]),
          obsOf(2, 10n, [r(1n, 3n, 200_000n)]),
          obsOf(3, 10n, [r(1n, 2n, 100_000n)]),
        ]),
      );
      // 1, 2, 3, 4 → 2; 100k, 200k, 300k, 400k → 200k.
      expect(four.results).to.deep.equal([{ edgeId: 1n, stake: 2n, quality: 200_000n }]);
    });

    it("counts a missing edge as (0, 0): kept when a majority reports it, left out otherwise", () => {
      const report = buildReport(
        input([
          obsOf(0, 10n, [r(1n, 50n, 1_000_000n), r(2n, 70n, 400_000n), r(3n, 9n, 9n)]),
          obsOf(1, 10n, [r(1n, 40n, 900_000n), r(2n, 60n, 300_000n)]),
          obsOf(2, 10n, [r(2n, 80n, 200_000n)]),
        ]),
      );
      // Edge 1: stakes (50, 40, 0) → 40, qualities (1M, 900k, 0) → 900k. Edge 2 seen by all three:
      // (70, 60, 80) → 70, (400k, 300k, 200k) → 300k. Edge 3 seen by one: (9, 0, 0) → 0, left out.
      expect(report.results).to.deep.equal([
        { edgeId: 1n, stake: 40n, quality: 900_000n },
        { edgeId: 2n, stake: 70n, quality: 300_000n },
      ]);
      expect(report.attestation!.totalWeight).to.equal(40n * 900_000n + 70n * 300_000n);
      expect(() => report.tree!.claim(3n)).to.throw(/edge 3 is not in the tree/);
    });

    it("leaves out edges whose median stake or quality is 0", () => {
      const report = buildReport(
        input([
          obsOf(0, 10n, [r(1n, 0n, 1_000_000n), r(2n, 5n, 0n), r(3n, 5n, 5n)]),
          obsOf(1, 10n, [r(1n, 0n, 1_000_000n), r(2n, 5n, 0n), r(3n, 5n, 5n)]),
        ]),
      );
      expect(report.results).to.deep.equal([{ edgeId: 3n, stake: 5n, quality: 5n }]);
      expect(report.tree!.size).to.equal(1);
    });

    it("has no attestation and no tree when every weight is 0, but still names the signers", () => {
      const report = buildReport(input([obsOf(0, 10n, [r(1n, 0n, 5n)]), obsOf(1, 10n, [r(1n, 7n, 0n)]), obsOf(2, 10n, [])]));
      expect(report.attestation).to.equal(null);
      expect(report.tree).to.equal(undefined);
      expect(report.results).to.deep.equal([]);
      expect(report.signers).to.have.length(3);
    });

    it("equals the reference on random observations (5 verifiers, 300 edges, random gaps and values)", () => {
      const rand = lcg(42);
      const lists: EdgeObservation[][] = Array.from({ length: 5 }, () => {
        const list: EdgeObservation[] = [];
        for (let id = 1; id <= 300; id++) {
          if (rand(4) === 0) continue; // each verifier misses about a quarter of the edges
          list.push(
            r(BigInt(id) * 1_000_003n, BigInt(rand(3)) * (BigInt(rand(1_000_000)) * TOKEN), BigInt(rand(2) === 0 ? 0 : rand(1_000_001))),
          );
        }
        return list;
      });
      const report = buildReport(input(lists.map((l, i) => obsOf(i, 10n, shuffled(l, rand)))));
      const expected = referenceResults(lists);
      expect(expected.length).to.be.greaterThan(20); // not degenerate (about 40 of 300 edges have a majority with non-zero stake and quality)
      expect(report.results).to.deep.equal(expected);
      expect(report.attestation!.totalWeight).to.equal(expected.reduce((s, x) => s + x.stake * x.quality, 0n));
      expect(report.tree!.root).to.equal(buildEpochTree(10n, expected).root);
    });

    it("medianResults alone: merges lists of different lengths, ids far apart", () => {
      const big = 1n << 200n;
      const lists = [
        [r(1n, 1n, 1n), r(big, 3n, 3n)],
        [r(2n, 1n, 1n), r(big, 2n, 2n)],
        [r(1n, 1n, 1n), r(2n, 1n, 1n), r(big, 1n, 1n)],
      ];
      expect(medianResults(lists)).to.deep.equal(referenceResults(lists));
      expect(medianResults(lists).map((x) => x.edgeId)).to.deep.equal([1n, 2n, big]);
      expect(medianResults([])).to.deep.equal([]);
    });
  });

  describe("buildReport: determinism", () => {
    const rand = lcg(7);
    const lists = Array.from({ length: 3 }, (_, j) =>
      Array.from({ length: 100 }, (_, i) =>
        r(BigInt(i + 1), BigInt(1_000 + ((i * 13 + j) % 50)) * TOKEN, BigInt((i * 7_919 + j * 1_000) % 1_000_001)),
      ),
    );
    const observations = lists.map((l, j) => obsOf(j, 10n, l));

    it("gives the same report for any order of the observations and of their results", () => {
      const first = buildReport(input(observations));
      for (let k = 0; k < 5; k++) {
        const permuted = shuffled(observations, rand).map((o) => ({ ...o, results: shuffled(o.results, rand) }));
        const again = buildReport(input(permuted, { activeSigners: shuffled(ADDRS, rand) }));
        expect(again.attestation).to.deep.equal(first.attestation);
        expect(again.results).to.deep.equal(first.results);
        expect(again.signers).to.deep.equal(first.signers);
        expect(again.tree!.proof(50n)).to.deep.equal(first.tree!.proof(50n));
      }
    });

    it("lists the signers ascending by address value, checksummed", () => {
      const { signers } = buildReport(input(observations));
      const expected = ADDRS.slice(0, 3).sort((a, b) => (BigInt(a) < BigInt(b) ? -1 : 1));
      expect(signers).to.deep.equal(expected);
      for (const s of signers) expect(s).to.equal(getAddress(s));
    });

    it("builds the same root and proofs as the library builder", () => {
      const report = buildReport(input(observations));
      const library = buildEpochTree(10n, report.results);
      expect(report.tree!.root).to.equal(library.root);
      for (const id of [1n, 37n, 100n]) expect(report.tree!.proof(id)).to.deep.equal(library.proof(id));
    });
  });

  describe("buildReport: errors", () => {
    const results = [r(1n, 5n, 5n)];
    const good = [obsOf(0, 10n, results), obsOf(1, 10n, results), obsOf(2, 10n, results)];

    function expectError(run: () => unknown, problem: string, signer: Address | undefined, message: RegExp): void {
      try {
        run();
        expect.fail("no error");
      } catch (err) {
        expect(err).to.be.instanceOf(ReportError);
        expect((err as ReportError).problem).to.equal(problem);
        expect((err as ReportError).signer).to.equal(signer);
        expect((err as Error).message).to.match(message);
      }
    }

    it("rejects two observations by one signer, even identical ones", () => {
      expectError(() => buildReport(input([...good, good[1]])), "duplicate_signer", ADDRS[1], /two observations by/);
      const other = obsOf(1, 10n, [r(1n, 6n, 6n)]);
      expectError(() => buildReport(input([...good, other])), "duplicate_signer", ADDRS[1], /two observations by/);
    });

    it("rejects an observation of another epoch", () => {
      expectError(() => buildReport(input([good[0], good[1], obsOf(2, 9n, results)])), "wrong_epoch", ADDRS[2], /of epoch 9, not 10/);
    });

    it("rejects an observation by a key that is not an active verifier", () => {
      expectError(
        () => buildReport(input(good, { activeSigners: [ADDRS[0], ADDRS[1], ADDRS[4]] })),
        "inactive_signer",
        ADDRS[2],
        /not an active verifier/,
      );
    });

    it("rejects a forged or altered observation and one with a signature OZ rejects", () => {
      const forged = { ...obsOf(3, 10n, results), signer: ADDRS[2] }; // key 3 signed, claims key 2
      expectError(() => buildReport(input([good[0], good[1], forged])), "invalid_observation", ADDRS[2], /recovers/);
      const altered = { ...good[2], results: [r(1n, 5n, 6n)] };
      expectError(() => buildReport(input([good[0], good[1], altered])), "invalid_observation", ADDRS[2], /recovers/);
      const v0 = { ...good[2], signature: `${good[2].signature.slice(0, 130)}00` as Hex };
      expectError(() => buildReport(input([good[0], good[1], v0])), "invalid_observation", ADDRS[2], /\(v\)/);
      const malformed = { ...good[2], results: [r(1n, 5n, QUALITY_ONE + 1n)] };
      expectError(() => buildReport(input([good[0], good[1], malformed])), "invalid_observation", ADDRS[2], /above QUALITY_ONE/);
      expectError(
        () => buildReport(input([good[0], { ...good[1], signer: "0x12" as Address }])),
        "invalid_observation",
        undefined,
        /no valid signer/,
      );
    });

    it("rejects fewer distinct observations than the quorum", () => {
      expectError(() => buildReport(input([good[0]])), "below_quorum", undefined, /1 observation\(s\) .* quorum is 2/);
      expectError(() => buildReport(input(good, { quorum: 4 })), "below_quorum", undefined, /3 observation\(s\) .* quorum is 4/);
      expectError(() => buildReport(input([])), "below_quorum", undefined, /0 observation/);
    });

    it("rejects a malformed quorum, epoch or active signer list", () => {
      expectError(() => buildReport(input(good, { quorum: 0 })), "bad_input", undefined, /quorum/);
      expectError(() => buildReport(input(good, { epoch: -1n })), "bad_input", undefined, /epoch/);
      expectError(() => buildReport(input(good, { activeSigners: ["0x1234" as Address] })), "bad_input", undefined, /active signer/);
    });

    it("accepts exactly the quorum", () => {
      expect(buildReport(input(good.slice(0, 2))).signers).to.have.length(2);
    });
  });

  describe("signAttestation", () => {
    it("signs exactly as viem's signEpochAttestation does", async () => {
      const attestation = buildReport(input([obsOf(0, 10n, [r(1n, 5n, 5n)]), obsOf(1, 10n, [r(1n, 5n, 5n)])])).attestation!;
      expect(signAttestation(KEYS[4], domain, attestation)).to.equal(
        await signEpochAttestation(privateKeyToAccount(KEYS[4]), domain, attestation),
      );
    });
  });

  describe("on chain", () => {
    let conn: Connection;
    before(async () => {
      conn = await connect();
    });

    async function settlementFixture() {
      return deploySettlementBase(conn);
    }

    it("a quorum-signed report is accepted by submitEpoch and its tree's proofs are paid by claim", async () => {
      const env = await conn.networkHelpers.loadFixture(settlementFixture);
      const { chainId } = await conn.ethers.provider.getNetwork();
      const chainDomain = verifierDomain(chainId, getAddress(await env.verifierSet.getAddress()));
      const keys = env.keys.map((k) => k.privateKey as Hex);
      await goToEpoch(conn, env.staking, E + 1n);
      // The earning stake, read after the epoch (the design's rule): everything bonded in epoch 0
      // earns from epoch 4 = E (defaultResults' stakes).
      const stakeA = (await env.staking.edgeStake(env.edgeA)).earning;
      const stakeB = (await env.staking.edgeStake(env.edgeB)).earning;
      expect([stakeA, stakeB]).to.deep.equal(defaultResults(env).map((x) => x.stake));
      const observations = [
        signObservation(keys[0], chainDomain, E, [r(env.edgeA, stakeA, QUALITY_ONE), r(env.edgeB, stakeB, 500_000n)]),
        signObservation(keys[1], chainDomain, E, [r(env.edgeA, stakeA, 900_000n), r(env.edgeB, stakeB, 600_000n)]),
        signObservation(keys[2], chainDomain, E, [r(env.edgeA, stakeA, 950_000n), r(99n, 5n, 5n)]),
      ];
      const report = buildReport({
        epoch: E,
        observations,
        quorum: 2,
        activeSigners: env.keys.map((k) => k.address as Address),
        domain: chainDomain,
      });
      // A: quality (1M, 900k, 950k) → 950k. B: (500k, 600k, 0) → 500k, stake (s, s, 0) → s. Edge 99: one report → out.
      const expected = [
        { edgeId: env.edgeA, stake: stakeA, quality: 950_000n },
        { edgeId: env.edgeB, stake: stakeB, quality: 500_000n },
      ];
      expect(report.results).to.deep.equal(expected);
      const attestation = report.attestation!;
      expect(attestation.totalWeight).to.equal(stakeA * 950_000n + stakeB * 500_000n);

      // A quorum of the five (a majority: three) signs the attestation with the native codec; any
      // order in, ascending out.
      const signatures = packQuorumSignatures(
        [2, 0, 1].map((i) => ({ signer: env.keys[i].address as Address, signature: signAttestation(keys[i], chainDomain, attestation) })),
      );
      const at = BigInt(await conn.networkHelpers.time.latest()) + 5n;
      await conn.networkHelpers.time.setNextBlockTimestamp(at);
      await expect(env.settlement.submitEpoch(attestation, signatures))
        .to.emit(env.settlement, "EpochSubmitted")
        .withArgs(E, attestation.root, attestation.totalWeight, at + DISPUTE_WINDOW);

      await conn.networkHelpers.time.increase(DISPUTE_WINDOW);
      const { emission } = await expectedFunding(env, E);
      const rewardA = rewardOf(emission, expected[0], attestation.totalWeight);
      const rewardB = rewardOf(emission, expected[1], attestation.totalWeight);
      expect(rewardA).to.be.greaterThan(0n);
      await expect(env.settlement.claim(attestation, report.tree!.claim(env.edgeA)))
        .to.emit(env.settlement, "RewardClaimed")
        .withArgs(E, env.edgeA, rewardA, rewardA);
      await expect(env.settlement.claimMany(attestation, [report.tree!.claim(env.edgeB)]))
        .to.emit(env.settlement, "RewardClaimed")
        .withArgs(E, env.edgeB, rewardB, rewardB);
      expect((await env.settlement.epochFunds(E)).claimed).to.equal(rewardA + rewardB);
    });
  });
});
