// Voucher digests and signer recovery fast enough to check one voucher per paid request: the
// native libsecp256k1 addon (`secp256k1`, ~20,000 recoveries/s here) instead of viem's pure-JS
// recovery (~600/s), with the EIP-712 domain separator and the Voucher type hash computed once.
//
// The digest is hand-assembled (abi.encode of six static words, then 0x1901 ‖ domain ‖ struct)
// because viem's hashTypedData re-derives the type string and domain hash on every call; it is
// tested equal to viem's `voucherDigest` and to the contract's `voucherDigest`.
//
// Recovery accepts exactly what ComputeMarket's OpenZeppelin `ECDSA.recoverCalldata` accepts:
// a 65-byte (r, s, v) signature with v ∈ {27, 28}, 0 < r, s < n and s ≤ n/2 (no malleable twin),
// recovering to a non-zero address. viem is laxer (v ∈ {0, 1}, high s): a voucher it accepts and
// the contract rejects would revert a whole redeemMany batch, so the edge must not take it.
//
// Erasable TypeScript only (runs under Node's type stripping, see index.ts).
import { createRequire } from "node:module";

import { keccak_256 } from "@noble/hashes/sha3.js";
import { getAddress, hashDomain } from "viem";
import type { Address, Hex, TypedDataDomain } from "viem";

import type { Voucher } from "./eip712.ts";

// The package's entry point silently falls back to a pure-JS implementation (elliptic) when the
// addon fails to load; requiring the bindings directly makes a missing addon an error at start.
const nativeSecp256k1 = createRequire(import.meta.url)("secp256k1/bindings.js") as typeof import("secp256k1");

/** The Voucher type string of IComputeMarket (the contract's VOUCHER_TYPEHASH preimage). */
export const VOUCHER_TYPE_STRING = "Voucher(address payer,uint256 edgeId,uint256 sessionId,uint256 cumulativeAmount,uint256 expiry)";

/** secp256k1's group order n. */
const SECP256K1_N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
/** n / 2: OpenZeppelin's ECDSA rejects any s above it. */
const HALF_N = SECP256K1_N >> 1n;
const MAX_UINT256 = (1n << 256n) - 1n;

/** Why a signature is not one the contract accepts. */
export type VoucherSignatureProblem = "length" | "v" | "r" | "s-zero" | "s-malleable" | "unrecoverable";

/**
 * A voucher signature the ComputeMarket would reject before even comparing signers (OpenZeppelin
 * ECDSA: wrong length, v not 27/28, s in the upper half of the curve order, r or s out of range,
 * or no point recovers). Such a voucher can never be redeemed.
 */
export class InvalidVoucherSignatureError extends Error {
  override name = "InvalidVoucherSignatureError";
  readonly problem: VoucherSignatureProblem;
  constructor(problem: VoucherSignatureProblem, detail: string) {
    super(`voucher signature rejected (${problem}): ${detail}. ComputeMarket accepts only 65-byte (r, s, v) signatures with v 27 or 28 and s <= n/2, as OpenZeppelin ECDSA does; sign with a standard EIP-712 signer (viem signTypedData, ethers signTypedData)`);
    this.problem = problem;
  }
}

/** Digest and signer recovery for vouchers of one ComputeMarket domain. */
export interface VoucherVerifier {
  /** The EIP-712 digest of `voucher` (the contract's `voucherDigest`), 32 bytes. */
  digest(voucher: Voucher): Uint8Array;
  /**
   * The checksummed address that signed `voucher`. Throws {InvalidVoucherSignatureError} when the
   * contract would reject the signature itself. A signature of other data recovers some other
   * address: compare the result with the payer and its authorized signers.
   */
  recoverSigner(voucher: Voucher, signature: Hex): Address;
}

/**
 * A verifier for vouchers signed in `domain` (see `marketDomain(chainId, market)`).
 * @param domain The ComputeMarket's EIP-712 domain.
 */
export function createVoucherVerifier(domain: TypedDataDomain): VoucherVerifier {
  const typeHash = keccak_256(new TextEncoder().encode(VOUCHER_TYPE_STRING));
  const domainSeparator = hexToBytes(hashDomain({ domain, types: { EIP712Domain: domainFields(domain) } } as Parameters<typeof hashDomain>[0]));
  // Reused buffers: the verifier is synchronous, so one call never overlaps another.
  const struct = new Uint8Array(192);
  struct.set(typeHash, 0);
  const envelope = new Uint8Array(66);
  envelope[0] = 0x19;
  envelope[1] = 0x01;
  envelope.set(domainSeparator, 2);
  const compact = new Uint8Array(64);
  const publicKey = new Uint8Array(65);

  function digest(voucher: Voucher): Uint8Array {
    struct.fill(0, 32);
    const payer = voucher.payer;
    if (!/^0x[0-9a-fA-F]{40}$/.test(payer)) throw new TypeError(`voucher payer ${payer} is not an address`);
    struct.set(hexToBytes(payer as Hex), 32 + 12);
    writeUint256(struct, 64, voucher.edgeId, "edgeId");
    writeUint256(struct, 96, voucher.sessionId, "sessionId");
    writeUint256(struct, 128, voucher.cumulativeAmount, "cumulativeAmount");
    writeUint256(struct, 160, voucher.expiry, "expiry");
    envelope.set(keccak_256(struct), 34);
    return keccak_256(envelope);
  }

  function recoverSigner(voucher: Voucher, signature: Hex): Address {
    if (typeof signature !== "string" || !/^0x[0-9a-fA-F]{130}$/.test(signature)) {
      throw new InvalidVoucherSignatureError("length", `expected 65 bytes of hex, got ${typeof signature === "string" ? Math.max(0, (signature.length - 2) / 2) : typeof signature} bytes`);
    }
    const v = Number.parseInt(signature.slice(130, 132), 16);
    if (v !== 27 && v !== 28) throw new InvalidVoucherSignatureError("v", `v is ${v}`);
    const r = BigInt(`0x${signature.slice(2, 66)}`);
    const s = BigInt(`0x${signature.slice(66, 130)}`);
    if (r === 0n || r >= SECP256K1_N) throw new InvalidVoucherSignatureError("r", "r is 0 or not below the curve order");
    if (s === 0n) throw new InvalidVoucherSignatureError("s-zero", "s is 0");
    if (s > HALF_N) throw new InvalidVoucherSignatureError("s-malleable", "s is above n/2 (the malleable twin of a valid signature)");
    compact.set(hexToBytes(`0x${signature.slice(2, 130)}`));
    const hash = digest(voucher);
    try {
      nativeSecp256k1.ecdsaRecover(compact, v - 27, hash, false, publicKey);
    } catch {
      throw new InvalidVoucherSignatureError("unrecoverable", "no public key recovers from it");
    }
    const address = keccak_256(publicKey.subarray(1)).subarray(12);
    return getAddress(bytesToHex(address));
  }

  return { digest, recoverSigner };
}

/** The EIP712Domain fields present in `domain`, in the standard order (what hashDomain hashes). */
function domainFields(domain: TypedDataDomain): { name: string; type: string }[] {
  const fields: { name: string; type: string }[] = [];
  if (domain.name !== undefined) fields.push({ name: "name", type: "string" });
  if (domain.version !== undefined) fields.push({ name: "version", type: "string" });
  if (domain.chainId !== undefined) fields.push({ name: "chainId", type: "uint256" });
  if (domain.verifyingContract !== undefined) fields.push({ name: "verifyingContract", type: "address" });
  if (domain.salt !== undefined) fields.push({ name: "salt", type: "bytes32" });
  return fields;
}

function writeUint256(out: Uint8Array, offset: number, value: bigint, field: string): void {
  if (typeof value !== "bigint" || value < 0n || value > MAX_UINT256) throw new RangeError(`voucher ${field} ${String(value)} is not a uint256`);
  let x = value;
  for (let i = offset + 31; i >= offset && x !== 0n; i--) {
    out[i] = Number(x & 0xffn);
    x >>= 8n;
  }
}

function hexToBytes(hex: Hex): Uint8Array {
  return Uint8Array.from(Buffer.from(hex.slice(2), "hex"));
}

function bytesToHex(bytes: Uint8Array): Hex {
  return `0x${Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex")}`;
}
