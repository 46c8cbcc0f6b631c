// lib/protocol/fastTypedData.ts: the native EIP-712 codec, checked EQUAL to viem (hashStruct,
// hashTypedData, signTypedData, recoverTypedDataAddress) on seeded random messages of every typed
// message the verifier and the edge use, against OpenZeppelin's ECDSA rules (what viem accepts and
// the contracts reject), and against the deployed VerifierSet's own digest and recovery.
import { expect } from "chai";
import { id, TypedDataEncoder } from "ethers";
import type { TypedDataDomain as TypedDataDomainEthers, TypedDataField } from "ethers";
import { getAddress, hashStruct, hashTypedData, recoverTypedDataAddress } from "viem";
import type { Address, Hex, TypedData, TypedDataDomain } from "viem";
import { privateKeyToAccount, sign as viemSign } from "viem/accounts";

import {
  EPOCH_ATTESTATION_TYPES,
  FAULT_ATTESTATION_TYPES,
  VOUCHER_TYPES,
  VERIFIER_KEY_CLAIM_TYPES,
  verifierDomain,
  marketDomain,
} from "../../lib/protocol/eip712.ts";
import { edgeDomain, SERVICE_RECEIPT_TYPES } from "../../lib/protocol/edgeProofs.ts";
import { ATTESTATION_REQUEST_TYPES, EPOCH_OBSERVATION_TYPES } from "../../lib/protocol/verifierMessages.ts";
import {
  addressOfPrivateKey,
  createTypedDataCodec,
  InvalidTypedDataSignatureError,
  SECP256K1_N,
  signDigest,
  UnsupportedTypedDataError,
} from "../../lib/protocol/fastTypedData.ts";
import { connect, deployProtocol, type Connection } from "../helpers/protocol.ts";

// ---------------------------------------------------------------- seeded randomness

/** xorshift64* over bigints: reproducible "random" messages. */
function rng(seed: bigint) {
  let x = seed | 1n;
  const M = (1n << 64n) - 1n;
  const next64 = (): bigint => {
    x ^= x >> 12n;
    x ^= (x << 25n) & M;
    x ^= x >> 27n;
    return (x * 0x2545f4914f6cdd1dn) & M;
  };
  const bits = (n: number): bigint => {
    let v = 0n;
    for (let got = 0; got < n; got += 64) v = (v << 64n) | next64();
    return v & ((1n << BigInt(n)) - 1n);
  };
  return {
    /** A uintN: about one in four is an edge value (0, 1, max), the rest uniform. */
    uint(n: number): bigint {
      const pick = Number(next64() % 8n);
      const max = (1n << BigInt(n)) - 1n;
      if (pick === 0) return 0n;
      if (pick === 1) return max;
      return bits(n);
    },
    bytes32: (): Hex => `0x${bits(256).toString(16).padStart(64, "0")}`,
    address: (): Address => getAddress(`0x${bits(160).toString(16).padStart(40, "0")}`),
    privateKey: (): Hex => `0x${(1n + (bits(256) % (SECP256K1_N - 1n))).toString(16).padStart(64, "0")}`,
    small: (n: number): number => Number(next64() % BigInt(n)),
  };
}
type Rng = ReturnType<typeof rng>;

const HALF_N = SECP256K1_N >> 1n;
const VERIFIER_SET: Address = "0x5FbDB2315678afecb367f032d93F642f64180aa3";

/** The malleable twin of `signature`: s' = n - s, v flipped (ecrecover without the low-s rule gives the same signer). */
function flipS(signature: Hex): Hex {
  const s = BigInt(`0x${signature.slice(66, 130)}`);
  const v = Number.parseInt(signature.slice(130, 132), 16);
  return `0x${signature.slice(2, 66)}${(SECP256K1_N - s).toString(16).padStart(64, "0")}${v === 27 ? "1c" : "1b"}`;
}
const hex = (b: Uint8Array): Hex => `0x${Buffer.from(b).toString("hex")}`;

// ---------------------------------------------------------------- cases

interface Case {
  name: string;
  domain: TypedDataDomain;
  types: TypedData;
  primaryType: string;
  message(r: Rng): Record<string, unknown>;
}

const cases: Case[] = [
  {
    name: "EpochAttestation",
    domain: verifierDomain(31337n, VERIFIER_SET),
    types: EPOCH_ATTESTATION_TYPES,
    primaryType: "EpochAttestation",
    message: (r) => ({ epoch: r.uint(256), root: r.bytes32(), totalWeight: r.uint(256) }),
  },
  {
    name: "FaultAttestation",
    domain: verifierDomain(8453n, VERIFIER_SET),
    types: FAULT_ATTESTATION_TYPES,
    primaryType: "FaultAttestation",
    message: (r) => ({
      edgeId: r.uint(256),
      epoch: r.uint(256),
      kind: Number(r.uint(8)),
      evidenceHash: r.bytes32(),
      reporter: r.address(),
    }),
  },
  {
    name: "ServiceReceipt",
    domain: edgeDomain(31337n, "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"),
    types: SERVICE_RECEIPT_TYPES,
    primaryType: "ServiceReceipt",
    message: (r) => ({
      edgeId: r.uint(256),
      epoch: r.uint(256),
      nonce: r.bytes32(),
      requestHash: r.bytes32(),
      responseHash: r.bytes32(),
      promptTokens: Number(r.uint(32)),
      completionTokens: Number(r.uint(32)),
    }),
  },
  {
    name: "Voucher",
    domain: marketDomain(1n, "0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0"),
    types: VOUCHER_TYPES,
    primaryType: "Voucher",
    message: (r) => ({
      payer: r.address(),
      edgeId: r.uint(256),
      sessionId: r.uint(256),
      cumulativeAmount: r.uint(256),
      expiry: r.uint(256),
    }),
  },
  {
    name: "EpochObservation",
    domain: verifierDomain(31337n, VERIFIER_SET),
    types: EPOCH_OBSERVATION_TYPES,
    primaryType: "EpochObservation",
    message: (r) => ({ epoch: r.uint(256), resultsHash: r.bytes32(), count: r.uint(256) }),
  },
  {
    name: "AttestationRequest",
    domain: verifierDomain(31337n, VERIFIER_SET),
    types: ATTESTATION_REQUEST_TYPES,
    primaryType: "AttestationRequest",
    message: (r) => ({ epoch: r.uint(256), round: r.uint(256), root: r.bytes32(), totalWeight: r.uint(256) }),
  },
  {
    name: "VerifierKeyClaim",
    domain: verifierDomain(31337n, VERIFIER_SET),
    types: VERIFIER_KEY_CLAIM_TYPES,
    primaryType: "VerifierKeyClaim",
    message: (r) => ({ operator: r.address(), signingKey: r.address() }),
  },
  {
    // bool, small uints, an unusual domain (no version, a salt) and a 9-word struct (hashed by
    // the long-message path: more than one keccak block).
    name: "a custom type with bool, uint8/uint24/uint136 and a salted domain",
    domain: { name: "Custom", chainId: 5n, salt: "0x00000000000000000000000000000000000000000000000000000000000000ff" },
    types: {
      Flags: [
        { name: "on", type: "bool" },
        { name: "off", type: "bool" },
        { name: "small", type: "uint8" },
        { name: "mid", type: "uint24" },
        { name: "odd", type: "uint136" },
        { name: "who", type: "address" },
        { name: "what", type: "bytes32" },
        { name: "big", type: "uint256" },
        { name: "word", type: "uint64" },
      ],
    },
    primaryType: "Flags",
    message: (r) => ({
      on: r.small(2) === 1,
      off: false,
      small: Number(r.uint(8)),
      mid: Number(r.uint(24)),
      odd: r.uint(136),
      who: r.address(),
      what: r.bytes32(),
      big: r.uint(256),
      word: r.uint(64),
    }),
  },
];

// viem's generic signatures do not follow a runtime-chosen type; these casts only erase the
// static message types (the values are exactly what the codec gets).
type AnyDef = Parameters<typeof hashTypedData>[0];
const viemDigest = (c: Case, message: Record<string, unknown>): Hex =>
  hashTypedData({ domain: c.domain, types: c.types, primaryType: c.primaryType, message } as AnyDef);
const viemStruct = (c: Case, message: Record<string, unknown>): Hex =>
  hashStruct({ types: c.types, primaryType: c.primaryType, data: message } as unknown as Parameters<typeof hashStruct>[0]);
const codecOf = (c: Case) =>
  createTypedDataCodec({ domain: c.domain, types: c.types, primaryType: c.primaryType }) as unknown as ReturnType<
    typeof createTypedDataCodec<TypedData, string>
  > & {
    structHash(m: Record<string, unknown>): Uint8Array;
    digest(m: Record<string, unknown>): Uint8Array;
    sign(k: Hex, m: Record<string, unknown>): Hex;
    recover(m: Record<string, unknown>, s: Hex): Address;
  };

describe("fastTypedData", () => {
  describe("createTypedDataCodec: hashes equal to viem", () => {
    for (const c of cases) {
      it(`${c.name}: structHash and digest equal viem's hashStruct and hashTypedData on 40 random messages`, () => {
        const codec = codecOf(c);
        const r = rng(BigInt(c.name.length) * 7919n);
        for (let i = 0; i < 40; i++) {
          const m = c.message(r);
          expect(hex(codec.structHash(m)), `message ${i}`).to.equal(viemStruct(c, m));
          expect(hex(codec.digest(m)), `message ${i}`).to.equal(viemDigest(c, m));
        }
      });
    }

    it("exposes the type string, type hash and domain separator that ethers (an independent implementation) derives", () => {
      for (const c of cases) {
        const codec = codecOf(c);
        const encoder = TypedDataEncoder.from(c.types as unknown as Record<string, TypedDataField[]>);
        expect(codec.typeString, c.name).to.equal(encoder.encodeType(c.primaryType));
        expect(codec.typeHash, c.name).to.equal(id(encoder.encodeType(c.primaryType)));
        expect(codec.domainSeparator, c.name).to.equal(TypedDataEncoder.hashDomain(c.domain as TypedDataDomainEthers));
      }
      expect(codecOf(cases[1]).typeString).to.equal(
        "FaultAttestation(uint256 edgeId,uint256 epoch,uint8 kind,bytes32 evidenceHash,address reporter)",
      );
    });

    it("ignores an EIP712Domain entry in types, as viem does", () => {
      const domain = verifierDomain(31337n, VERIFIER_SET);
      const types = {
        EIP712Domain: [
          { name: "name", type: "string" },
          { name: "version", type: "string" },
          { name: "chainId", type: "uint256" },
          { name: "verifyingContract", type: "address" },
        ],
        ...EPOCH_ATTESTATION_TYPES,
      } as const;
      const codec = createTypedDataCodec({ domain, types, primaryType: "EpochAttestation" });
      const m = { epoch: 3n, root: `0x${"11".repeat(32)}` as Hex, totalWeight: 9n };
      expect(hex(codec.digest(m))).to.equal(
        hashTypedData({ domain, types: EPOCH_ATTESTATION_TYPES, primaryType: "EpochAttestation", message: m }),
      );
    });

    it("accepts an address in any letter case (same word) and a number for a narrow uint", () => {
      const c = cases[3];
      const codec = codecOf(c);
      const m = c.message(rng(5n));
      const lower = { ...m, payer: (m.payer as string).toLowerCase() };
      expect(hex(codec.digest(lower))).to.equal(viemDigest(c, m));
      const wide = createTypedDataCodec({ domain: c.domain, types: EPOCH_ATTESTATION_TYPES, primaryType: "EpochAttestation" });
      const asNumber = { epoch: 12 as unknown as bigint, root: `0x${"22".repeat(32)}` as Hex, totalWeight: 5n };
      expect(hex(wide.digest(asNumber))).to.equal(hex(wide.digest({ ...asNumber, epoch: 12n })));
    });
  });

  describe("sign", () => {
    for (const c of cases) {
      it(`${c.name}: byte-identical to viem's signTypedData (low s, v 27/28) for random keys`, async () => {
        const codec = codecOf(c);
        const r = rng(BigInt(c.name.length) * 104_729n);
        for (let i = 0; i < 8; i++) {
          const key = r.privateKey();
          const m = c.message(r);
          const account = privateKeyToAccount(key);
          const expected = await account.signTypedData({
            domain: c.domain,
            types: c.types,
            primaryType: c.primaryType,
            message: m,
          } as Parameters<typeof account.signTypedData>[0]);
          const sig = codec.sign(key, m);
          expect(sig).to.equal(expected);
          expect(BigInt(`0x${sig.slice(66, 130)}`) <= HALF_N).to.equal(true);
          expect(["1b", "1c"]).to.include(sig.slice(130));
        }
      });
    }

    it("rejects a private key that is zero, not below n, or not 32 bytes", () => {
      const codec = codecOf(cases[0]);
      const m = cases[0].message(rng(1n));
      expect(() => codec.sign(`0x${"00".repeat(32)}`, m)).to.throw(RangeError, /private key/);
      expect(() => codec.sign(`0x${SECP256K1_N.toString(16)}`, m)).to.throw(RangeError, /private key/);
      expect(() => codec.sign("0x1234", m)).to.throw(TypeError, /private key/);
    });
  });

  describe("signDigest and addressOfPrivateKey", () => {
    it("equal viem's sign and privateKeyToAccount", async () => {
      const r = rng(77n);
      for (let i = 0; i < 10; i++) {
        const key = r.privateKey();
        const hash = r.bytes32();
        expect(signDigest(key, hash)).to.equal(await viemSign({ hash, privateKey: key, to: "hex" }));
        expect(addressOfPrivateKey(key)).to.equal(privateKeyToAccount(key).address);
      }
    });
  });

  describe("recover and recoverDigest", () => {
    for (const c of cases) {
      it(`${c.name}: recovers the signer, as viem's recoverTypedDataAddress does`, async () => {
        const codec = codecOf(c);
        const r = rng(BigInt(c.name.length) * 31n);
        for (let i = 0; i < 6; i++) {
          const key = r.privateKey();
          const m = c.message(r);
          const sig = codec.sign(key, m);
          const signer = privateKeyToAccount(key).address;
          expect(codec.recover(m, sig)).to.equal(signer);
          expect(codec.recoverDigest(codec.digest(m), sig)).to.equal(signer);
          expect(codec.recoverDigest(viemDigest(c, m), sig)).to.equal(signer);
          expect(
            await recoverTypedDataAddress({
              domain: c.domain,
              types: c.types,
              primaryType: c.primaryType,
              message: m,
              signature: sig,
            } as Parameters<typeof recoverTypedDataAddress>[0]),
          ).to.equal(signer);
        }
      });
    }

    it("recovers some other address (the one viem recovers) for a message altered after signing", async () => {
      const c = cases[4];
      const codec = codecOf(c);
      const key = rng(9n).privateKey();
      const m = { epoch: 4n, resultsHash: `0x${"ab".repeat(32)}` as Hex, count: 10n };
      const sig = codec.sign(key, m);
      const altered = { ...m, count: 11n };
      const recovered = codec.recover(altered, sig);
      expect(recovered).to.not.equal(privateKeyToAccount(key).address);
      expect(recovered).to.equal(
        await recoverTypedDataAddress({
          domain: c.domain,
          types: EPOCH_OBSERVATION_TYPES,
          primaryType: "EpochObservation",
          message: altered,
          signature: sig,
        }),
      );
    });
  });

  describe("signatures OpenZeppelin's ECDSA rejects", () => {
    const c = cases[0];
    const codec = codecOf(c);
    const key = rng(3n).privateKey();
    const m = c.message(rng(4n));
    const sig = codec.sign(key, m);
    const signer = privateKeyToAccount(key).address;

    function expectProblem(signature: string, problem: string): void {
      for (const run of [() => codec.recover(m, signature as Hex), () => codec.recoverDigest(codec.digest(m), signature as Hex)]) {
        expect(run).to.throw(InvalidTypedDataSignatureError).with.property("problem", problem);
      }
    }

    it("rejects the high-s twin that viem still recovers to the signer", async () => {
      const twin = flipS(sig);
      expect(BigInt(`0x${twin.slice(66, 130)}`) > HALF_N).to.equal(true);
      expect(
        await recoverTypedDataAddress({
          domain: c.domain,
          types: EPOCH_ATTESTATION_TYPES,
          primaryType: "EpochAttestation",
          message: m as never,
          signature: twin,
        }),
      ).to.equal(signer);
      expectProblem(twin, "s-malleable");
    });

    it("rejects v = 0 or 1 (viem accepts it) and any v other than 27/28", async () => {
      const v01 = `${sig.slice(0, 130)}${sig.endsWith("1b") ? "00" : "01"}` as Hex;
      expect(
        await recoverTypedDataAddress({
          domain: c.domain,
          types: EPOCH_ATTESTATION_TYPES,
          primaryType: "EpochAttestation",
          message: m as never,
          signature: v01,
        }),
      ).to.equal(signer);
      expectProblem(v01, "v");
      expectProblem(`${sig.slice(0, 130)}1d`, "v");
      expectProblem(`${sig.slice(0, 130)}ff`, "v");
    });

    it("rejects a signature that is not 65 bytes of hex", () => {
      expectProblem(sig.slice(0, 130), "length"); // 64 bytes (r, s without v: EIP-2098 is not accepted here)
      expectProblem(`${sig}00`, "length"); // 66 bytes
      expectProblem(sig.slice(2), "length"); // no 0x
      expectProblem(`0x${"zz".repeat(65)}`, "length");
      expectProblem("", "length");
    });

    it("rejects r = 0, r ≥ n and s = 0", () => {
      expectProblem(`0x${"00".repeat(32)}${sig.slice(66)}`, "r");
      expectProblem(`0x${SECP256K1_N.toString(16)}${sig.slice(66)}`, "r");
      expectProblem(`${sig.slice(0, 66)}${"00".repeat(32)}${sig.slice(130)}`, "s-zero");
    });

    it("rejects an r that is no curve point's x (nothing recovers)", () => {
      // x = 5 is not on secp256k1 (5³ + 7 = 132 is not a square mod p), so no point has it.
      expectProblem(`0x${5n.toString(16).padStart(64, "0")}${sig.slice(66)}`, "unrecoverable");
    });

    it("rejects a digest that is not 32 bytes", () => {
      expect(() => codec.recoverDigest(new Uint8Array(31), sig)).to.throw(TypeError, /32 bytes/);
      expect(() => codec.recoverDigest("0x1234", sig)).to.throw(TypeError, /32 bytes/);
    });
  });

  describe("message validation", () => {
    const receipt = codecOf(cases[2]);
    const base = cases[2].message(rng(8n));

    it("names a missing field", () => {
      const { nonce: _dropped, ...rest } = base;
      expect(() => receipt.digest(rest)).to.throw(TypeError, /ServiceReceipt\.nonce.*missing/);
    });

    it("rejects a uint out of its range or of the wrong type", () => {
      expect(() => receipt.digest({ ...base, promptTokens: 2 ** 32 })).to.throw(
        RangeError,
        /ServiceReceipt\.promptTokens 4294967296 is out of range for uint32/,
      );
      expect(() => receipt.digest({ ...base, edgeId: -1n })).to.throw(RangeError, /edgeId -1/);
      expect(() => receipt.digest({ ...base, edgeId: 1n << 256n })).to.throw(RangeError, /edgeId/);
      expect(() => receipt.digest({ ...base, epoch: "5" })).to.throw(TypeError, /ServiceReceipt\.epoch must be a bigint/);
      expect(() => receipt.digest({ ...base, completionTokens: 1.5 })).to.throw(TypeError, /completionTokens/);
    });

    it("rejects a bytes32 or an address of the wrong length, and a non-boolean bool", () => {
      expect(() => receipt.digest({ ...base, nonce: "0x1234" })).to.throw(TypeError, /ServiceReceipt\.nonce must be 0x-prefixed 32 bytes/);
      const voucher = codecOf(cases[3]);
      expect(() => voucher.digest({ ...cases[3].message(rng(2n)), payer: "0x1234" })).to.throw(TypeError, /Voucher\.payer/);
      const flags = codecOf(cases[7]);
      expect(() => flags.digest({ ...cases[7].message(rng(2n)), on: 1 })).to.throw(TypeError, /Flags\.on must be a boolean/);
    });

    it("a failed encoding leaves no trace in the next digest (reused buffers are reset)", () => {
      const good = cases[2].message(rng(99n));
      const before = hex(receipt.digest(good));
      expect(() => receipt.digest({ ...base, completionTokens: -1 })).to.throw(RangeError);
      expect(hex(receipt.digest(good))).to.equal(before);
      expect(before).to.equal(viemDigest(cases[2], good));
    });
  });

  describe("unsupported types", () => {
    const domain = verifierDomain(1n, VERIFIER_SET);
    const make = (types: Record<string, { name: string; type: string }[]>, primaryType: string) => () =>
      createTypedDataCodec({ domain, types: types as unknown as TypedData, primaryType });

    it("refuses dynamic, array, signed, odd-width and nested-struct fields at creation", () => {
      for (const type of [
        "string",
        "bytes",
        "uint256[]",
        "bytes32[2]",
        "int256",
        "uint7",
        "uint264",
        "uint0",
        "uint08",
        "bytes16",
        "Inner",
      ]) {
        const types = { Outer: [{ name: "x", type }], Inner: [{ name: "y", type: "uint256" }] };
        expect(make(types, "Outer"), type).to.throw(UnsupportedTypedDataError, /Outer\.x/);
      }
    });

    it("refuses a missing or empty primary type, EIP712Domain, and a duplicate field", () => {
      expect(make({ A: [{ name: "x", type: "uint256" }] }, "B")).to.throw(UnsupportedTypedDataError, /B is not defined/);
      expect(make({ A: [] }, "A")).to.throw(UnsupportedTypedDataError, /A is not defined in types, or has no fields/);
      expect(make({ A: [{ name: "x", type: "uint256" }] }, "EIP712Domain")).to.throw(UnsupportedTypedDataError, /EIP712Domain/);
      expect(
        make(
          {
            A: [
              { name: "x", type: "uint256" },
              { name: "x", type: "bool" },
            ],
          },
          "A",
        ),
      ).to.throw(UnsupportedTypedDataError, /two fields named x/);
    });
  });

  describe("against the deployed VerifierSet", () => {
    let conn: Connection;
    before(async () => {
      conn = await connect();
    });

    async function protocolFixture() {
      return deployProtocol(conn);
    }

    async function chainDomain(env: Awaited<ReturnType<typeof deployProtocol>>): Promise<TypedDataDomain> {
      const { chainId } = await conn.ethers.provider.getNetwork();
      return verifierDomain(chainId, getAddress(await env.verifierSet.getAddress()));
    }

    it("digest equals VerifierSet.hashTypedData(structHash) for attestations, faults, observations and requests", async () => {
      const env = await conn.networkHelpers.loadFixture(protocolFixture);
      const domain = await chainDomain(env);
      const r = rng(2024n);
      for (const c of cases.filter((x) => x.domain.name === "Tideway Verifiers")) {
        const codec = codecOf({ ...c, domain });
        for (let i = 0; i < 3; i++) {
          const m = c.message(r);
          expect(await env.verifierSet.hashTypedData(hex(codec.structHash(m))), c.name).to.equal(hex(codec.digest(m)));
        }
      }
    });

    it("recovers what VerifierSet.recoverSigner recovers, and rejects what it rejects", async () => {
      const env = await conn.networkHelpers.loadFixture(protocolFixture);
      const domain = await chainDomain(env);
      const codec = createTypedDataCodec({ domain, types: EPOCH_OBSERVATION_TYPES, primaryType: "EpochObservation" });
      const key = rng(11n).privateKey();
      const m = { epoch: 6n, resultsHash: `0x${"5a".repeat(32)}` as Hex, count: 3n };
      const structHash = hex(codec.structHash(m));
      const sig = codec.sign(key, m);
      expect(await env.verifierSet.recoverSigner(structHash, sig)).to.equal(codec.recover(m, sig));
      expect(codec.recover(m, sig)).to.equal(privateKeyToAccount(key).address);

      const twin = flipS(sig);
      expect(() => codec.recover(m, twin)).to.throw(InvalidTypedDataSignatureError, /s-malleable/);
      await expect(env.verifierSet.recoverSigner(structHash, twin))
        .to.be.revertedWithCustomError(env.verifierSet, "ECDSAInvalidSignatureS")
        .withArgs(`0x${twin.slice(66, 130)}`);

      const v1 = `${sig.slice(0, 130)}01` as Hex;
      expect(() => codec.recover(m, v1)).to.throw(InvalidTypedDataSignatureError, /\(v\)/);
      await expect(env.verifierSet.recoverSigner(structHash, v1)).to.be.revertedWithCustomError(env.verifierSet, "ECDSAInvalidSignature");

      const short = sig.slice(0, 130) as Hex;
      expect(() => codec.recover(m, short)).to.throw(InvalidTypedDataSignatureError, /\(length\)/);
      await expect(env.verifierSet.recoverSigner(structHash, short))
        .to.be.revertedWithCustomError(env.verifierSet, "ECDSAInvalidSignatureLength")
        .withArgs(64);

      const r0 = `0x${"00".repeat(32)}${sig.slice(66)}` as Hex;
      expect(() => codec.recover(m, r0)).to.throw(InvalidTypedDataSignatureError, /\(r\)/);
      await expect(env.verifierSet.recoverSigner(structHash, r0)).to.be.revertedWithCustomError(env.verifierSet, "ECDSAInvalidSignature");
    });
  });
});
