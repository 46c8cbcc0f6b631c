// The edge's signatures as a verifier checks them, at native speed: EIP-712 digests of
// ServiceReceipt and UsageRoot (lib/protocol/edgeProofs.ts's types) in the "Tideway Edge" domain,
// assembled by hand with the domain separator and type hashes computed once, and signer recovery
// with libsecp256k1 (the `secp256k1` addon, as lib/protocol/fastVoucher.ts). viem's
// recoverTypedDataAddress gives the same signer (tested) at ~600 recoveries/s; this does ~15,000,
// which a verifier issuing thousands of challenges per second needs.
//
// Accepted signatures: 65 bytes (r, s, v), v ∈ {27, 28} (or {0, 1}), 0 < r, s < n, s ≤ n/2 — what
// viem's and ethers' signers produce. A high-s twin is refused: an honest edge never sends one.
//
// Erasable TypeScript only (runs under Node's type stripping).
import { createRequire } from "node:module";

import { keccak_256 } from "@noble/hashes/sha3.js";
import { getAddress, hashDomain } from "viem";
import type { Address, Hex, TypedDataDomain } from "viem";

import type { ServiceReceipt, UsageCommitment } from "../../lib/protocol/edgeProofs.ts";

const nativeSecp256k1 = createRequire(import.meta.url)("secp256k1/bindings.js") as typeof import("secp256k1");

const SERVICE_RECEIPT_TYPE = "ServiceReceipt(uint256 edgeId,uint256 epoch,bytes32 nonce,bytes32 requestHash,bytes32 responseHash,uint32 promptTokens,uint32 completionTokens)";
const USAGE_ROOT_TYPE = "UsageRoot(uint256 edgeId,uint256 epoch,bytes32 root,uint256 count)";

const SECP256K1_N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
const HALF_N = SECP256K1_N >> 1n;
const MAX_UINT256 = (1n << 256n) - 1n;

/** Digests and signer recovery for one edge domain (`edgeDomain(chainId, registry)`). */
export interface EdgeSignatures {
  receiptDigest(receipt: ServiceReceipt): Uint8Array;
  usageRootDigest(commitment: Omit<UsageCommitment, "signature">): Uint8Array;
  /** The signer of `receipt`, or undefined when the signature is malformed or recovers nothing. */
  receiptSigner(receipt: ServiceReceipt, signature: Hex): Address | undefined;
  /** The signer of `commitment`, or undefined when its signature is malformed. */
  usageRootSigner(commitment: UsageCommitment): Address | undefined;
}

const cache = new Map<string, EdgeSignatures>();

/** The (cached) signature helper of `domain`. */
export function edgeSignatures(domain: TypedDataDomain): EdgeSignatures {
  const key = `${domain.name}|${domain.version}|${domain.chainId}|${String(domain.verifyingContract).toLowerCase()}|${domain.salt ?? ""}`;
  let found = cache.get(key);
  if (found === undefined) {
    found = createEdgeSignatures(domain);
    cache.set(key, found);
  }
  return found;
}

function createEdgeSignatures(domain: TypedDataDomain): EdgeSignatures {
  const separator = hexToBytes(hashDomain({ domain, types: { EIP712Domain: domainFields(domain) } } as Parameters<typeof hashDomain>[0]));
  const receiptType = keccak_256(new TextEncoder().encode(SERVICE_RECEIPT_TYPE));
  const rootType = keccak_256(new TextEncoder().encode(USAGE_ROOT_TYPE));

  function envelope(structHash: Uint8Array): Uint8Array {
    const e = new Uint8Array(66);
    e[0] = 0x19;
    e[1] = 0x01;
    e.set(separator, 2);
    e.set(structHash, 34);
    return keccak_256(e);
  }

  function receiptDigest(r: ServiceReceipt): Uint8Array {
    const s = new Uint8Array(32 * 8);
    s.set(receiptType, 0);
    writeUint(s, 32, r.edgeId, "edgeId");
    writeUint(s, 64, r.epoch, "epoch");
    writeBytes32(s, 96, r.nonce, "nonce");
    writeBytes32(s, 128, r.requestHash, "requestHash");
    writeBytes32(s, 160, r.responseHash, "responseHash");
    writeUint32(s, 192, r.promptTokens, "promptTokens");
    writeUint32(s, 224, r.completionTokens, "completionTokens");
    return envelope(keccak_256(s));
  }

  function usageRootDigest(c: Omit<UsageCommitment, "signature">): Uint8Array {
    const s = new Uint8Array(32 * 5);
    s.set(rootType, 0);
    writeUint(s, 32, c.edgeId, "edgeId");
    writeUint(s, 64, c.epoch, "epoch");
    writeBytes32(s, 96, c.root, "root");
    writeUint(s, 128, c.count, "count");
    return envelope(keccak_256(s));
  }

  return {
    receiptDigest,
    usageRootDigest,
    receiptSigner(receipt, signature) {
      let digest: Uint8Array;
      try {
        digest = receiptDigest(receipt);
      } catch {
        return undefined;
      }
      return recoverSigner(digest, signature);
    },
    usageRootSigner(commitment) {
      let digest: Uint8Array;
      try {
        digest = usageRootDigest(commitment);
      } catch {
        return undefined;
      }
      return recoverSigner(digest, commitment.signature);
    },
  };
}

/** The address whose key signed the 32-byte `digest`, or undefined for a malformed or high-s signature. */
export function recoverSigner(digest: Uint8Array, signature: Hex): Address | undefined {
  if (typeof signature !== "string" || !/^0x[0-9a-fA-F]{130}$/.test(signature)) return undefined;
  let v = Number.parseInt(signature.slice(130, 132), 16);
  if (v === 27 || v === 28) v -= 27;
  if (v !== 0 && v !== 1) return undefined;
  const r = BigInt(`0x${signature.slice(2, 66)}`);
  const s = BigInt(`0x${signature.slice(66, 130)}`);
  if (r === 0n || r >= SECP256K1_N || s === 0n || s > HALF_N) return undefined;
  const publicKey = new Uint8Array(65);
  try {
    nativeSecp256k1.ecdsaRecover(hexToBytes(`0x${signature.slice(2, 130)}`), v, digest, false, publicKey);
  } catch {
    return undefined;
  }
  return getAddress(bytesToHex(keccak_256(publicKey.subarray(1)).subarray(12)));
}

/** Signs the 32-byte `digest` with `privateKey` (native): 65-byte (r, s, v) hex, low s, v 27/28. */
export function signDigest(digest: Uint8Array, privateKey: Uint8Array): Hex {
  const { signature, recid } = nativeSecp256k1.ecdsaSign(digest, privateKey);
  return `0x${Buffer.from(signature).toString("hex")}${(27 + recid).toString(16)}`;
}

function domainFields(domain: TypedDataDomain): { name: string; type: string }[] {
  const fields: { name: string; type: string }[] = [];
  if (domain.name !== undefined) fields.push({ name: "name", type: "string" });
  if (domain.version !== undefined) fields.push({ name: "version", type: "string" });
  if (domain.chainId !== undefined) fields.push({ name: "chainId", type: "uint256" });
  if (domain.verifyingContract !== undefined) fields.push({ name: "verifyingContract", type: "address" });
  if (domain.salt !== undefined) fields.push({ name: "salt", type: "bytes32" });
  return fields;
}

function writeUint(out: Uint8Array, offset: number, value: bigint, field: string): void {
  if (typeof value !== "bigint" || value < 0n || value > MAX_UINT256) throw new RangeError(`${field} ${String(value)} is not a uint256`);
  let x = value;
  for (let i = offset + 31; i >= offset && x !== 0n; i--) {
    out[i] = Number(x & 0xffn);
    x >>= 8n;
  }
}

function writeUint32(out: Uint8Array, offset: number, value: number, field: string): void {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) throw new RangeError(`${field} ${value} is not a uint32`);
  new DataView(out.buffer, out.byteOffset).setUint32(offset + 28, value);
}

function writeBytes32(out: Uint8Array, offset: number, hex: string, field: string): void {
  if (typeof hex !== "string" || !/^0x[0-9a-fA-F]{64}$/.test(hex)) throw new TypeError(`${field} is not 32 bytes of 0x-hex`);
  out.set(hexToBytes(hex as Hex), offset);
}

function hexToBytes(hex: Hex): Uint8Array {
  return Uint8Array.from(Buffer.from(hex.slice(2), "hex"));
}

function bytesToHex(bytes: Uint8Array): Hex {
  return `0x${Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex")}`;
}
