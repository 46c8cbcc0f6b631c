// verifier/consensus/observation.ts and lib/protocol/verifierMessages.ts: the results hash a
// verifier's observation commits to (checked against an independent viem abi.encode + keccak), the
// signed observation (native signing checked against viem's signTypedData), its verification, and
// the JSON wire format.
import { expect } from "chai";
import { concat, encodeAbiParameters, keccak256 } from "viem";
import type { Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { ZodError } from "zod";

import { verifierDomain } from "../../../../lib/protocol/eip712.ts";
import { QUALITY_ONE } from "../../../../lib/protocol/merkle.ts";
import {
  attestationRequestDigest,
  epochObservation,
  epochObservationDigest,
  observationResultsHash,
  recoverAttestationRequestSigner,
  recoverEpochObservationSigner,
  signAttestationRequest,
  signEpochObservation,
  type EdgeObservation,
} from "../../../../lib/protocol/index.ts";
import { createTypedDataCodec } from "../../../../lib/protocol/fastTypedData.ts";
import { ATTESTATION_REQUEST_TYPES } from "../../../../lib/protocol/verifierMessages.ts";
import {
  edgeObservationJson,
  InvalidObservationError,
  observationCodec,
  observationFromJson,
  observationToJson,
  signObservation,
  verifyObservation,
  type SignedObservation,
} from "../../../../verifier/consensus/observation.ts";

const KEY_A: Hex = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
const KEY_B: Hex = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a";
const domain = verifierDomain(31337n, "0x5FbDB2315678afecb367f032d93F642f64180aa3");
const TOKEN = 10n ** 18n;

/** The reference: keccak256 of the concatenated abi.encode(uint256,uint256,uint256), sorted by edge id. */
function referenceHash(results: EdgeObservation[]): Hex {
  const sorted = [...results].sort((a, b) => (a.edgeId < b.edgeId ? -1 : a.edgeId > b.edgeId ? 1 : 0));
  const words = sorted.map((r) =>
    encodeAbiParameters([{ type: "uint256" }, { type: "uint256" }, { type: "uint256" }], [r.edgeId, r.stake, r.quality]),
  );
  return keccak256(words.length === 0 ? "0x" : concat(words));
}

/** A varied observation: ids not contiguous, stakes above 2^64, qualities 0..QUALITY_ONE. */
function results(n: number, salt = 0n): EdgeObservation[] {
  return Array.from({ length: n }, (_, i) => {
    const k = BigInt(i);
    return {
      edgeId: 3n * k + 1n + (k > 5n ? 1n << 70n : 0n),
      stake: (1_000n + ((k * 37n + salt) % 500n)) * TOKEN,
      quality: (k * 271_829n + salt) % (QUALITY_ONE + 1n),
    };
  });
}

function shuffled<T>(xs: readonly T[], seed: number): T[] {
  const out = [...xs];
  let s = seed;
  for (let i = out.length - 1; i > 0; i--) {
    s = (s * 1_103_515_245 + 12_345) & 0x7fffffff;
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

describe("verifier messages", () => {
  describe("observationResultsHash", () => {
    it("is keccak256 of the abi.encode words sorted by edge id, whatever the input order", () => {
      const rs = results(40);
      const expected = referenceHash(rs);
      expect(observationResultsHash(rs)).to.equal(expected);
      expect(observationResultsHash(shuffled(rs, 1))).to.equal(expected);
      expect(observationResultsHash([...rs].reverse())).to.equal(expected);
    });

    it("spans several internal chunks (2,500 results) like the reference", () => {
      const rs = shuffled(results(2_500, 3n), 5);
      expect(observationResultsHash(rs)).to.equal(referenceHash(rs));
    });

    it("is keccak256 of nothing for no results", () => {
      expect(observationResultsHash([])).to.equal(keccak256("0x"));
    });

    it("changes when any stake, quality or id changes", () => {
      const rs = results(5);
      const base = observationResultsHash(rs);
      for (const field of ["edgeId", "stake", "quality"] as const) {
        const altered = rs.map((r, i) => (i === 2 ? { ...r, [field]: r[field] + 1n } : r));
        expect(observationResultsHash(altered), field).to.not.equal(base);
        expect(observationResultsHash(altered), field).to.equal(referenceHash(altered));
      }
    });

    it("does not reorder its input", () => {
      const rs = shuffled(results(10), 2);
      const before = rs.map((r) => r.edgeId);
      observationResultsHash(rs);
      expect(rs.map((r) => r.edgeId)).to.deep.equal(before);
    });

    it("throws on a duplicate edge id, sorted or not", () => {
      const rs = results(6);
      expect(() => observationResultsHash([...rs, { ...rs[3], stake: 1n }])).to.throw(/duplicate edge id 10/);
      expect(() => observationResultsHash([rs[0], rs[0]])).to.throw(/duplicate edge id 1/);
    });

    it("accepts quality QUALITY_ONE and throws above it", () => {
      expect(observationResultsHash([{ edgeId: 1n, stake: 1n, quality: QUALITY_ONE }])).to.equal(
        referenceHash([{ edgeId: 1n, stake: 1n, quality: QUALITY_ONE }]),
      );
      expect(() => observationResultsHash([{ edgeId: 1n, stake: 1n, quality: QUALITY_ONE + 1n }])).to.throw(
        RangeError,
        /above QUALITY_ONE/,
      );
    });

    it("throws on a value that is not a uint256 bigint", () => {
      expect(() => observationResultsHash([{ edgeId: -1n, stake: 1n, quality: 1n }])).to.throw(RangeError, /edgeId -1/);
      expect(() => observationResultsHash([{ edgeId: 1n, stake: 1n << 256n, quality: 1n }])).to.throw(RangeError, /stake/);
      expect(() => observationResultsHash([{ edgeId: 1n, stake: 5 as unknown as bigint, quality: 1n }])).to.throw(RangeError, /stake 5/);
    });
  });

  describe("viem signing of EpochObservation and AttestationRequest", () => {
    it("signEpochObservation is recovered by recoverEpochObservationSigner and the native codec", async () => {
      const account = privateKeyToAccount(KEY_A);
      const message = epochObservation(9n, results(4));
      const sig = await signEpochObservation(account, domain, message);
      expect(await recoverEpochObservationSigner(domain, message, sig)).to.equal(account.address);
      expect(observationCodec(domain).recover(message, sig)).to.equal(account.address);
      expect(`0x${Buffer.from(observationCodec(domain).digest(message)).toString("hex")}`).to.equal(
        epochObservationDigest(domain, message),
      );
    });

    it("signAttestationRequest is recovered by viem and the native codec, and binds the round", async () => {
      const account = privateKeyToAccount(KEY_B);
      const request = { epoch: 9n, round: 2n, root: `0x${"cd".repeat(32)}` as Hex, totalWeight: 77n };
      const sig = await signAttestationRequest(account, domain, request);
      expect(await recoverAttestationRequestSigner(domain, request, sig)).to.equal(account.address);
      const codec = createTypedDataCodec({ domain, types: ATTESTATION_REQUEST_TYPES, primaryType: "AttestationRequest" });
      expect(codec.recover(request, sig)).to.equal(account.address);
      expect(codec.sign(KEY_B, request)).to.equal(sig);
      expect(`0x${Buffer.from(codec.digest(request)).toString("hex")}`).to.equal(attestationRequestDigest(domain, request));
      expect(codec.recover({ ...request, round: 3n }, sig)).to.not.equal(account.address);
    });
  });
});

describe("consensus observation", () => {
  const codec = observationCodec(domain);

  describe("signObservation", () => {
    it("signs EpochObservation(epoch, resultsHash, count) exactly as viem's signTypedData does", async () => {
      const rs = results(12);
      const obs = signObservation(KEY_A, domain, 5n, rs);
      const expected = await signEpochObservation(privateKeyToAccount(KEY_A), domain, {
        epoch: 5n,
        resultsHash: referenceHash(rs),
        count: 12n,
      });
      expect(obs.signature).to.equal(expected);
      expect(obs.signer).to.equal(privateKeyToAccount(KEY_A).address);
      expect(obs.epoch).to.equal(5n);
    });

    it("stores the results sorted by edge id without reordering the caller's array", () => {
      const rs = shuffled(results(12), 4);
      const before = rs.map((r) => r.edgeId);
      const obs = signObservation(KEY_A, codec, 5n, rs);
      expect(obs.results.map((r) => r.edgeId)).to.deep.equal([...before].sort((a, b) => (a < b ? -1 : 1)));
      expect(rs.map((r) => r.edgeId)).to.deep.equal(before);
    });

    it("refuses malformed results before signing", () => {
      expect(() => signObservation(KEY_A, domain, 5n, [{ edgeId: 1n, stake: 1n, quality: QUALITY_ONE + 1n }])).to.throw(
        RangeError,
        /QUALITY_ONE/,
      );
      expect(() => signObservation(KEY_A, domain, 5n, [results(1)[0], results(1)[0]])).to.throw(/duplicate/);
    });
  });

  describe("verifyObservation", () => {
    const obs = signObservation(KEY_A, domain, 5n, results(12));

    it("returns the signer of a genuine observation, also with its results shuffled", () => {
      expect(verifyObservation(codec, obs)).to.equal(privateKeyToAccount(KEY_A).address);
      expect(verifyObservation(codec, { ...obs, results: shuffled(obs.results, 9) })).to.equal(obs.signer);
    });

    function expectProblem(o: SignedObservation, problem: string, message: RegExp): void {
      expect(() => verifyObservation(codec, o))
        .to.throw(InvalidObservationError, message)
        .with.property("problem", problem);
    }

    it("rejects results, epoch or count changed after signing (the signature recovers another key)", () => {
      expectProblem(
        { ...obs, results: obs.results.map((r, i) => (i === 0 ? { ...r, quality: r.quality + 1n } : r)) },
        "signer",
        /recovers/,
      );
      expectProblem({ ...obs, epoch: 6n }, "signer", /recovers/);
      expectProblem({ ...obs, results: obs.results.slice(1) }, "signer", /recovers/);
    });

    it("rejects an observation claimed for another signer, or signed in another domain", () => {
      expectProblem(
        { ...obs, signer: privateKeyToAccount(KEY_B).address },
        "signer",
        new RegExp(`claims signer ${privateKeyToAccount(KEY_B).address}`),
      );
      const elsewhere = signObservation(KEY_A, verifierDomain(1n, "0x5FbDB2315678afecb367f032d93F642f64180aa3"), 5n, results(12));
      expectProblem(elsewhere, "signer", /recovers/);
    });

    it("rejects a signature OZ would reject (high s, v 0/1) and malformed results", () => {
      const N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
      const s = BigInt(`0x${obs.signature.slice(66, 130)}`);
      const twin =
        `0x${obs.signature.slice(2, 66)}${(N - s).toString(16).padStart(64, "0")}${obs.signature.endsWith("1b") ? "1c" : "1b"}` as Hex;
      expectProblem({ ...obs, signature: twin }, "signature", /s-malleable/);
      expectProblem({ ...obs, signature: `${obs.signature.slice(0, 130)}00` as Hex }, "signature", /\(v\)/);
      expectProblem({ ...obs, results: [...obs.results, obs.results[0]] }, "results", /duplicate edge id/);
    });
  });

  describe("JSON wire format", () => {
    const obs = signObservation(KEY_B, domain, 123n, results(8));

    it("round-trips through JSON text to an equal observation that still verifies", () => {
      const text = JSON.stringify(observationToJson(obs));
      const back = observationFromJson(JSON.parse(text));
      expect(back).to.deep.equal(obs);
      expect(verifyObservation(codec, back)).to.equal(obs.signer);
    });

    it("writes bigints as decimal strings and results as [edgeId, stake, quality] tuples", () => {
      const json = observationToJson(obs);
      expect(json.epoch).to.equal("123");
      expect(json.results[7]).to.deep.equal([
        obs.results[7].edgeId.toString(),
        obs.results[7].stake.toString(),
        obs.results[7].quality.toString(),
      ]);
      expect(json.results[7][0]).to.equal(((1n << 70n) + 22n).toString()); // edge 7: 3·7 + 1 + 2^70
    });

    it("edgeObservationJson reads one tuple and refuses a quality above QUALITY_ONE", () => {
      expect(edgeObservationJson.parse(["7", "8", "1000000"])).to.deep.equal({ edgeId: 7n, stake: 8n, quality: QUALITY_ONE });
      expect(() => edgeObservationJson.parse(["7", "8", "1000001"])).to.throw(ZodError, /QUALITY_ONE/);
    });

    it("rejects non-canonical or out-of-range numbers, naming the path", () => {
      const good = observationToJson(obs);
      const bad = (patch: (j: ReturnType<typeof observationToJson>) => unknown, path: (string | number)[]) => {
        const j = structuredClone(good);
        const value = patch(j) ?? j;
        try {
          observationFromJson(value);
          expect.fail("parsed");
        } catch (err) {
          expect(err).to.be.instanceOf(ZodError);
          expect((err as ZodError).issues[0].path).to.deep.equal(path);
        }
      };
      bad((j) => ({ ...j, epoch: 123 }), ["epoch"]);
      bad((j) => ({ ...j, epoch: "-1" }), ["epoch"]);
      bad((j) => ({ ...j, epoch: "0123" }), ["epoch"]);
      bad((j) => ({ ...j, epoch: "0x7b" }), ["epoch"]);
      bad((j) => ({ ...j, epoch: (1n << 256n).toString() }), ["epoch"]);
      bad(
        (j) => {
          j.results[2][2] = (QUALITY_ONE + 1n).toString();
        },
        ["results", 2],
      );
      bad(
        (j) => {
          j.results[1] = ["1", "2"] as unknown as [string, string, string];
        },
        ["results", 1],
      );
      bad(
        (j) => {
          j.results[3] = [3, "2", "1"] as unknown as [string, string, string];
        },
        ["results", 3],
      );
      bad(
        (j) => {
          j.results[4] = ["4", (1n << 256n).toString(), "1"];
        },
        ["results", 4],
      );
      bad((j) => ({ ...j, signature: j.signature.slice(0, 130) }), ["signature"]);
      bad((j) => ({ ...j, signer: "0x1234" }), ["signer"]);
      bad((j) => ({ epoch: j.epoch, signer: j.signer, signature: j.signature }), ["results"]);
    });
  });
});
