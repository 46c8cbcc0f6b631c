// lib/protocol/eip712.ts: the protocol's typed data (viem). The type strings are read from the
// Solidity interfaces' NatSpec and hashed with ethers, an independent EIP-712 implementation; the
// domain reader runs against the deployed EdgeRegistry (ERC-5267) and is checked against the
// registry's own digest.
import { readFileSync } from "node:fs";
import path from "node:path";

import { expect } from "chai";
import { AbiCoder, id, keccak256 as ethersKeccak, TypedDataEncoder, verifyTypedData } from "ethers";
import { createPublicClient, custom, getAddress, hashTypedData, recoverAddress } from "viem";
import type { Address, Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";

import {
  domainFromFields,
  EPOCH_ATTESTATION_TYPES,
  epochAttestationDigest,
  epochAttestationStructHash,
  FAULT_ATTESTATION_TYPES,
  FAULT_KIND_NAMES,
  FaultKind,
  faultKindName,
  faultStructHash,
  marketDomain,
  packQuorumSignatures,
  readDomain,
  recoverEpochAttestationSigner,
  recoverFaultSigner,
  recoverVerifierKeyClaimSigner,
  recoverVoucherSigner,
  REPO_ROOT,
  signEpochAttestation,
  signEpochAttestationQuorum,
  signFault,
  signVerifierKeyClaim,
  signVoucher,
  unpackQuorumSignatures,
  verifierDomain,
  verifierKeyClaimDigest,
  verifierKeyClaimStructHash,
  VOUCHER_TYPES,
  voucherDigest,
  voucherStructHash,
  type EpochAttestation,
  type FaultAttestation,
  type Voucher,
} from "../../lib/protocol/index.ts";
import { connect, deployProtocol, type Connection } from "../helpers/protocol.ts";

const coder = AbiCoder.defaultAbiCoder();

function source(file: string): string {
  return readFileSync(path.join(REPO_ROOT, "contracts/interfaces", file), "utf8");
}

/** The EIP-712 type string `Name(...)` as the interface's NatSpec writes it. */
function typeStringIn(file: string, name: string): string {
  const match = new RegExp(`${name}\\((?:[a-z0-9]+ [A-Za-z]+,?)+\\)`).exec(source(file));
  if (match === null) throw new Error(`${name}(...) not found in ${file}`);
  return match[0];
}

/** ethers' view of a viem `as const` types object. */
function ethersTypes(types: Record<string, readonly { name: string; type: string }[]>): Record<string, { name: string; type: string }[]> {
  return Object.fromEntries(Object.entries(types).map(([k, v]) => [k, v.map((f) => ({ ...f }))]));
}

/** Deterministic test keys. */
const KEYS: Hex[] = Array.from({ length: 6 }, (_, i) => id(`tideway/lib/eip712/key/${i}`) as Hex);
const accounts = KEYS.map((k) => privateKeyToAccount(k));

const CHAIN = 31_337n;
const VERIFIER_SET = getAddress("0x00000000000000000000000000000000000000a1");
const MARKET = getAddress("0x00000000000000000000000000000000000000b2");

const attestation: EpochAttestation = { epoch: 12n, root: id("root") as Hex, totalWeight: 5n * 10n ** 24n };
const fault: FaultAttestation = {
  edgeId: 3n,
  epoch: 12n,
  kind: FaultKind.CapacityShortfall,
  evidenceHash: id("evidence") as Hex,
  reporter: getAddress("0x00000000000000000000000000000000000000c3"),
};
const voucher: Voucher = { payer: accounts[0].address, edgeId: 4n, sessionId: 9n, cumulativeAmount: 10n ** 18n, expiry: 1_900_000_000n };

describe("lib/protocol eip712", () => {
  describe("type definitions", () => {
    it("encode exactly the type strings of the interfaces", () => {
      const cases: Array<[string, string, Record<string, readonly { name: string; type: string }[]>]> = [
        ["IEpochSettlement.sol", "EpochAttestation", EPOCH_ATTESTATION_TYPES],
        ["IEpochSettlement.sol", "FaultAttestation", FAULT_ATTESTATION_TYPES],
        [
          "IVerifierSet.sol",
          "VerifierKeyClaim",
          {
            VerifierKeyClaim: [
              { name: "operator", type: "address" },
              { name: "signingKey", type: "address" },
            ],
          },
        ],
        ["IComputeMarket.sol", "Voucher", VOUCHER_TYPES],
      ];
      for (const [file, name, types] of cases) {
        expect(TypedDataEncoder.from(ethersTypes(types)).encodeType(name)).to.equal(typeStringIn(file, name));
      }
    });

    it("hash structs as keccak256(abi.encode(typehash, fields...)) with the interfaces' typehashes", () => {
      const ta = id(typeStringIn("IEpochSettlement.sol", "EpochAttestation"));
      expect(epochAttestationStructHash(attestation)).to.equal(
        ethersKeccak(
          coder.encode(["bytes32", "uint256", "bytes32", "uint256"], [ta, attestation.epoch, attestation.root, attestation.totalWeight]),
        ),
      );
      const tf = id(typeStringIn("IEpochSettlement.sol", "FaultAttestation"));
      expect(faultStructHash(fault)).to.equal(
        ethersKeccak(
          coder.encode(
            ["bytes32", "uint256", "uint256", "uint8", "bytes32", "address"],
            [tf, fault.edgeId, fault.epoch, fault.kind, fault.evidenceHash, fault.reporter],
          ),
        ),
      );
      const tk = id(typeStringIn("IVerifierSet.sol", "VerifierKeyClaim"));
      expect(verifierKeyClaimStructHash(accounts[1].address, accounts[2].address)).to.equal(
        ethersKeccak(coder.encode(["bytes32", "address", "address"], [tk, accounts[1].address, accounts[2].address])),
      );
      const tv = id(typeStringIn("IComputeMarket.sol", "Voucher"));
      expect(voucherStructHash(voucher)).to.equal(
        ethersKeccak(
          coder.encode(
            ["bytes32", "address", "uint256", "uint256", "uint256", "uint256"],
            [tv, voucher.payer, voucher.edgeId, voucher.sessionId, voucher.cumulativeAmount, voucher.expiry],
          ),
        ),
      );
    });

    it("declares FaultKind as the Solidity enum, in order", () => {
      const body = /enum FaultKind\s*\{([^}]*)\}/.exec(source("IEpochSettlement.sol").replace(/\/\/[^\n]*/g, ""));
      const members = body![1]
        .split(",")
        .map((m) => m.trim())
        .filter((m) => m !== "");
      expect([...FAULT_KIND_NAMES]).to.deep.equal(members);
      for (const [i, name] of members.entries()) expect(FaultKind[name as keyof typeof FaultKind]).to.equal(i);
      expect(faultKindName(3)).to.equal("AuditFailure");
      expect(faultKindName(4n)).to.equal("Unknown(4)");
    });
  });

  describe("domains", () => {
    it("name the verifier set and the market as the interfaces do, with version 1", () => {
      const v = verifierDomain(CHAIN, VERIFIER_SET);
      const m = marketDomain(CHAIN, MARKET);
      expect(v).to.deep.equal({ name: "Tideway Verifiers", version: "1", chainId: CHAIN, verifyingContract: VERIFIER_SET });
      expect(m).to.deep.equal({ name: "Tideway ComputeMarket", version: "1", chainId: CHAIN, verifyingContract: MARKET });
      // The NatSpec wraps lines: compare the text without comment markers and line breaks.
      const prose = (file: string) => source(file).replace(/\s*\/\/\/\s*/g, " ");
      expect(prose("IVerifierSet.sol")).to.include('(name "Tideway Verifiers", version "1"');
      expect(prose("IComputeMarket.sol")).to.include('(name "Tideway ComputeMarket", version "1"');
    });

    it("give the digests ethers computes for the same domain and message", () => {
      const v = verifierDomain(CHAIN, VERIFIER_SET);
      const m = marketDomain(CHAIN, MARKET);
      expect(epochAttestationDigest(v, attestation)).to.equal(
        TypedDataEncoder.hash({ ...v, chainId: CHAIN }, ethersTypes(EPOCH_ATTESTATION_TYPES), attestation),
      );
      expect(voucherDigest(m, voucher)).to.equal(TypedDataEncoder.hash({ ...m, chainId: CHAIN }, ethersTypes(VOUCHER_TYPES), voucher));
      // A digest is bound to the contract: another verifying contract gives another digest.
      expect(epochAttestationDigest(verifierDomain(CHAIN, MARKET), attestation)).to.not.equal(epochAttestationDigest(v, attestation));
      expect(epochAttestationDigest(verifierDomain(1n, VERIFIER_SET), attestation)).to.not.equal(epochAttestationDigest(v, attestation));
    });

    it("domainFromFields keeps only the fields the ERC-5267 bitmap declares", () => {
      const answer = {
        fields: "0x0f" as Hex,
        name: "N",
        version: "2",
        chainId: 5n,
        verifyingContract: "0x00000000000000000000000000000000000000cc" as Address,
        salt: id("salt") as Hex,
        extensions: [] as bigint[],
      };
      expect(domainFromFields(answer)).to.deep.equal({
        name: "N",
        version: "2",
        chainId: 5n,
        verifyingContract: getAddress(answer.verifyingContract),
      });
      expect(domainFromFields({ ...answer, fields: "0x11" })).to.deep.equal({ name: "N", salt: answer.salt });
      expect(domainFromFields({ ...answer, fields: "0x0c" })).to.deep.equal({
        chainId: 5n,
        verifyingContract: getAddress(answer.verifyingContract),
      });
      expect(() => domainFromFields({ ...answer, extensions: [1n] })).to.throw("unsupported EIP-712 domain");
    });
  });

  describe("readDomain (ERC-5267 on the deployed EdgeRegistry)", () => {
    let conn: Connection;
    before(async () => {
      conn = await connect();
    });

    async function deployedRegistry() {
      return deployProtocol(conn);
    }

    it("reads name, version, chain id and address, and the domain gives the registry's own digest", async () => {
      const { registry, operator } = await conn.networkHelpers.loadFixture(deployedRegistry);
      const client = createPublicClient({ transport: custom(conn.provider) });
      const address = getAddress(await registry.getAddress());
      const domain = await readDomain(client, address);
      expect(domain).to.deep.equal({ name: "Tideway EdgeRegistry", version: "1", chainId: CHAIN, verifyingContract: address });

      const key = accounts[3].address;
      const digest = hashTypedData({
        domain,
        types: {
          SigningKeyClaim: [
            { name: "operator", type: "address" },
            { name: "signingKey", type: "address" },
          ],
        },
        primaryType: "SigningKeyClaim",
        message: { operator: operator.address as Address, signingKey: key },
      });
      expect(digest).to.equal(await registry.signingKeyClaimDigest(operator.address, key));
    });
  });

  describe("signing and recovery", () => {
    const v = verifierDomain(CHAIN, VERIFIER_SET);
    const m = marketDomain(CHAIN, MARKET);

    it("signEpochAttestation: recovers to the signer with viem and with ethers, and not after a change", async () => {
      const sig = await signEpochAttestation(accounts[1], v, attestation);
      expect(await recoverEpochAttestationSigner(v, attestation, sig)).to.equal(accounts[1].address);
      expect(verifyTypedData({ ...v, chainId: CHAIN }, ethersTypes(EPOCH_ATTESTATION_TYPES), attestation, sig)).to.equal(
        accounts[1].address,
      );
      expect(await recoverAddress({ hash: epochAttestationDigest(v, attestation), signature: sig })).to.equal(accounts[1].address);
      expect(await recoverEpochAttestationSigner(v, { ...attestation, totalWeight: attestation.totalWeight + 1n }, sig)).to.not.equal(
        accounts[1].address,
      );
      expect(await recoverEpochAttestationSigner(marketDomain(CHAIN, VERIFIER_SET), attestation, sig)).to.not.equal(accounts[1].address);
    });

    it("signFault: recovers to the signer; rejects an unknown kind", async () => {
      const sig = await signFault(accounts[2], v, fault);
      expect(await recoverFaultSigner(v, fault, sig)).to.equal(accounts[2].address);
      expect(verifyTypedData({ ...v, chainId: CHAIN }, ethersTypes(FAULT_ATTESTATION_TYPES), fault, sig)).to.equal(accounts[2].address);
      expect(await recoverFaultSigner(v, { ...fault, kind: FaultKind.WrongAnswer }, sig)).to.not.equal(accounts[2].address);
      expect(() => signFault(accounts[2], v, { ...fault, kind: 4 })).to.throw("unknown fault kind 4");
    });

    it("signVerifierKeyClaim: the key signs VerifierKeyClaim(operator, its own address)", async () => {
      const operator = accounts[0].address;
      const sig = await signVerifierKeyClaim(accounts[4], v, operator);
      expect(await recoverVerifierKeyClaimSigner(v, operator, accounts[4].address, sig)).to.equal(accounts[4].address);
      expect(await recoverAddress({ hash: verifierKeyClaimDigest(v, operator, accounts[4].address), signature: sig })).to.equal(
        accounts[4].address,
      );
      // Not valid for another operator.
      expect(await recoverVerifierKeyClaimSigner(v, accounts[1].address, accounts[4].address, sig)).to.not.equal(accounts[4].address);
    });

    it("signVoucher: recovers to the payer with viem and ethers, and binds edge and session", async () => {
      const sig = await signVoucher(accounts[0], m, voucher);
      expect(await recoverVoucherSigner(m, voucher, sig)).to.equal(accounts[0].address);
      expect(verifyTypedData({ ...m, chainId: CHAIN }, ethersTypes(VOUCHER_TYPES), voucher, sig)).to.equal(accounts[0].address);
      expect(await recoverVoucherSigner(m, { ...voucher, edgeId: 5n }, sig)).to.not.equal(accounts[0].address);
      expect(await recoverVoucherSigner(m, { ...voucher, sessionId: 10n }, sig)).to.not.equal(accounts[0].address);
    });
  });

  describe("packQuorumSignatures", () => {
    const sig = (byte: string): Hex => `0x${byte.repeat(65)}`;

    it("orders by signer address as uint160 whatever the case, and concatenates 65-byte signatures", () => {
      const low = "0x0000000000000000000000000000000000000001" as Address;
      const mid = "0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF" as Address;
      const high = "0xf000000000000000000000000000000000000000" as Address;
      const packed = packQuorumSignatures([
        { signer: high, signature: sig("cc") },
        { signer: low, signature: sig("aa") },
        { signer: mid, signature: sig("bb") },
      ]);
      expect(packed).to.equal(`0x${"aa".repeat(65)}${"bb".repeat(65)}${"cc".repeat(65)}`);
      expect(unpackQuorumSignatures(packed)).to.deep.equal([sig("aa"), sig("bb"), sig("cc")]);
      expect(packQuorumSignatures([])).to.equal("0x");
    });

    it("rejects the same signer twice, even written in another case", () => {
      const a = accounts[0].address;
      expect(() =>
        packQuorumSignatures([
          { signer: a, signature: sig("aa") },
          { signer: a.toLowerCase() as Address, signature: sig("bb") },
        ]),
      ).to.throw(`duplicate signer ${a}`);
    });

    it("rejects signatures that are not 65 bytes (e.g. EIP-2098 compact) and bad addresses", () => {
      expect(() => packQuorumSignatures([{ signer: accounts[0].address, signature: `0x${"aa".repeat(64)}` }])).to.throw("not 65 bytes");
      expect(() => packQuorumSignatures([{ signer: "0x1234" as Address, signature: sig("aa") }])).to.throw("not an address");
      expect(() => unpackQuorumSignatures(`0x${"aa".repeat(64)}`)).to.throw("whole number of 65-byte signatures");
    });

    it("signEpochAttestationQuorum packs real signatures whose signers recover strictly ascending", async () => {
      const domain = verifierDomain(CHAIN, VERIFIER_SET);
      const packed = await signEpochAttestationQuorum(accounts, domain, attestation);
      const parts = unpackQuorumSignatures(packed);
      expect(parts).to.have.length(accounts.length);
      const signers = await Promise.all(parts.map((signature) => recoverEpochAttestationSigner(domain, attestation, signature)));
      const expected = accounts.map((a) => a.address).sort((x, y) => (BigInt(x) < BigInt(y) ? -1 : 1));
      expect(signers).to.deep.equal(expected);
      for (let i = 1; i < signers.length; i++) expect(BigInt(signers[i]) > BigInt(signers[i - 1])).to.equal(true);
    });
  });
});
