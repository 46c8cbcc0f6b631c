// A generic EIP-712 codec for flat structs of static fields, fast enough for a verifier that checks
// every peer's signatures and signs with the native libsecp256k1 addon (`secp256k1`): the
// generalisation of fastVoucher.ts to any primary type made of uintN, address, bool and bytes32
// fields (EpochAttestation, FaultAttestation, EpochObservation, ServiceReceipt, Voucher, ...).
//
// - The type hash and the domain separator are computed once, at codec creation; a struct is
//   encoded by hand into one reused buffer (typeHash ‖ one 32-byte word per field) and hashed, then
//   0x1901 ‖ domainSeparator ‖ structHash is hashed (keccak.ts, no allocation per hash). Equal to
//   viem's hashStruct / hashTypedData (tested on random messages).
// - Signing uses libsecp256k1's RFC 6979 deterministic nonces and returns low-s signatures with
//   v 27/28: byte-identical to viem's `signTypedData` for the same key and message (tested).
// - Recovery accepts exactly what OpenZeppelin's ECDSA (and so VerifierSet.checkQuorum) accepts:
//   65 bytes (r, s, v), v ∈ {27, 28}, 0 < r < n, 0 < s ≤ n/2, recovering to some point. viem is
//   laxer (v 0/1, high s); a signature it accepts and the contract rejects would make a whole
//   quorum submission revert, so anything else throws {InvalidTypedDataSignatureError}.
//
// Only static field types are supported (no string, bytes, arrays or nested structs): a codec is
// refused at creation for any other type, so a type that needs dynamic encoding can never be
// silently mis-hashed. This module loads the native addon: lib/protocol/index.ts does not export
// it (import it by path), so that loading the protocol module never needs the addon.
//
// Erasable TypeScript only (runs under Node's type stripping, see index.ts).
import { createRequire } from "node:module";

import { keccak_256 } from "@noble/hashes/sha3.js";
import { hashDomain } from "viem";
import type { Address, Hex, TypedData, TypedDataDefinition, TypedDataDomain } from "viem";

import { keccak256Short, KECCAK256_RATE } from "./keccak.ts";

// The package's entry point silently falls back to a pure-JS implementation (elliptic) when the
// addon fails to load; requiring the bindings directly makes a missing addon an error at start.
const nativeSecp256k1 = createRequire(import.meta.url)("secp256k1/bindings.js") as typeof import("secp256k1");

/** secp256k1's group order n. */
export const SECP256K1_N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
/** n / 2: OpenZeppelin's ECDSA rejects any s above it. */
const HALF_N = SECP256K1_N >> 1n;

/** Why a signature is not one OpenZeppelin's ECDSA accepts. */
export type SignatureProblem = "length" | "v" | "r" | "s-zero" | "s-malleable" | "unrecoverable";

/**
 * A signature that OpenZeppelin ECDSA (VerifierSet.checkQuorum / recoverSigner, ComputeMarket)
 * rejects before any signer comparison: wrong length, v not 27/28, r or s out of range, s in the
 * upper half of the curve order (the malleable twin), or no point recovers.
 */
export class InvalidTypedDataSignatureError extends Error {
  override name = "InvalidTypedDataSignatureError";
  readonly problem: SignatureProblem;
  /** What exactly is wrong ("v is 0", ...), without the explanation. */
  readonly detail: string;
  constructor(problem: SignatureProblem, detail: string) {
    super(
      `signature rejected (${problem}): ${detail}. The contracts accept only 65-byte (r, s, v) signatures with v 27 or 28, 0 < r < n and 0 < s <= n/2, as OpenZeppelin ECDSA does`,
    );
    this.problem = problem;
    this.detail = detail;
  }
}

/** A field or type the codec cannot encode (thrown at creation, never later). */
export class UnsupportedTypedDataError extends Error {
  override name = "UnsupportedTypedDataError";
}

/** The message of `primaryType` as viem types it (bigint for uint64 and wider, number below). */
export type TypedDataMessage<T extends TypedData, P extends keyof T & string> = TypedDataDefinition<T, P>["message"];

/** What {createTypedDataCodec} takes: the same shape as viem's typed-data arguments, without a message. */
export interface TypedDataCodecOptions<T extends TypedData, P extends keyof T & string> {
  domain: TypedDataDomain;
  types: T;
  primaryType: P;
}

/** Hashing, signing and OZ-strict recovery for messages of one primary type in one domain. */
export interface TypedDataCodec<M> {
  /** `PrimaryType(type1 name1,...)`, the type hash's preimage. */
  readonly typeString: string;
  /** keccak256(typeString). */
  readonly typeHash: Hex;
  /** The domain separator (viem's hashDomain, the contract's `_domainSeparatorV4()`). */
  readonly domainSeparator: Hex;
  /** EIP-712 hashStruct(message), 32 fresh bytes. Throws TypeError/RangeError naming a bad field. */
  structHash(message: M): Uint8Array;
  /** keccak256(0x1901 ‖ domainSeparator ‖ structHash(message)), 32 fresh bytes. */
  digest(message: M): Uint8Array;
  /** The signature of `message` by `privateKey`: 65 bytes, low s, v 27/28 (identical to viem's signTypedData). */
  sign(privateKey: Hex, message: M): Hex;
  /**
   * The checksummed address that signed `message`. Throws {InvalidTypedDataSignatureError} on a
   * signature OpenZeppelin's ECDSA would reject. A valid signature of other data recovers some
   * other address: compare the result with the expected signer.
   */
  recover(message: M, signature: Hex): Address;
  /** {recover} for an already computed digest (32 bytes, or 0x-prefixed hex of 32 bytes). */
  recoverDigest(digest: Uint8Array | Hex, signature: Hex): Address;
}

/** How one field is written into its 32-byte word. */
type FieldWriter = (out: Uint8Array, offset: number, value: unknown) => void;

const ADDRESS_RE = /^0x[0-9a-fA-F]{40}$/;
const BYTES32_RE = /^0x[0-9a-fA-F]{64}$/;
const SIGNATURE_RE = /^0x[0-9a-fA-F]{130}$/;
const PRIVATE_KEY_RE = /^0x[0-9a-fA-F]{64}$/;

/**
 * A codec for `primaryType` of `types` in `domain`. `types` may also hold an `EIP712Domain` entry
 * (ignored: the domain's fields come from `domain`, as viem does). Throws
 * {UnsupportedTypedDataError} when a field of the primary type is not uint8..uint256, address,
 * bool or bytes32, or the type is missing or empty.
 */
export function createTypedDataCodec<const T extends TypedData, P extends keyof T & string>(
  options: TypedDataCodecOptions<T, P>,
): TypedDataCodec<TypedDataMessage<T, P>> {
  const { domain, types, primaryType } = options;
  if (primaryType === "EIP712Domain") throw new UnsupportedTypedDataError("EIP712Domain is not a message type");
  const fields = types[primaryType] as readonly { name: string; type: string }[] | undefined;
  if (!Array.isArray(fields) || fields.length === 0)
    throw new UnsupportedTypedDataError(`type ${primaryType} is not defined in types, or has no fields`);
  const names = new Set<string>();
  const writers: { name: string; write: FieldWriter }[] = fields.map(({ name, type }) => {
    if (typeof name !== "string" || !/^[A-Za-z_$][A-Za-z0-9_$]*$/.test(name))
      throw new UnsupportedTypedDataError(`${primaryType} has a field with an invalid name ${String(name)}`);
    if (names.has(name)) throw new UnsupportedTypedDataError(`${primaryType} has two fields named ${name}`);
    names.add(name);
    return { name, write: fieldWriter(primaryType, name, type) };
  });
  const typeString = `${primaryType}(${fields.map((f) => `${f.type} ${f.name}`).join(",")})`;
  const typeHashBytes = keccak_256(new TextEncoder().encode(typeString));
  const domainSeparator = hashDomain({ domain, types: { EIP712Domain: domainFields(domain) } } as Parameters<typeof hashDomain>[0]);

  // Reused buffers: every method is synchronous, so calls never overlap.
  const structLength = 32 * (1 + writers.length);
  const struct = new Uint8Array(structLength);
  struct.set(typeHashBytes, 0);
  const envelope = new Uint8Array(66);
  envelope[0] = 0x19;
  envelope[1] = 0x01;
  envelope.set(hexToBytes(domainSeparator), 2);
  const hashStructInto = (message: TypedDataMessage<T, P>, out: Uint8Array, outOffset: number): void => {
    if (message === null || typeof message !== "object") throw new TypeError(`${primaryType} message must be an object`);
    const m = message as Record<string, unknown>;
    struct.fill(0, 32);
    for (let i = 0; i < writers.length; i++) writers[i].write(struct, 32 * (i + 1), m[writers[i].name]);
    if (structLength < KECCAK256_RATE) keccak256Short(struct, 0, structLength, out, outOffset);
    else out.set(keccak_256(struct), outOffset);
  };

  const digestInto = (message: TypedDataMessage<T, P>): Uint8Array => {
    hashStructInto(message, envelope, 34);
    const out = new Uint8Array(32);
    keccak256Short(envelope, 0, 66, out, 0);
    return out;
  };

  return {
    typeString,
    typeHash: bytesToHex(typeHashBytes),
    domainSeparator,
    structHash(message) {
      const out = new Uint8Array(32);
      hashStructInto(message, out, 0);
      return out;
    },
    digest: digestInto,
    sign(privateKey, message) {
      return signDigest(privateKey, digestInto(message));
    },
    recover(message, signature) {
      const checked = checkSignature(signature);
      return recoverChecked(digestInto(message), checked);
    },
    recoverDigest(digest, signature) {
      const checked = checkSignature(signature);
      return recoverChecked(toDigestBytes(digest), checked);
    },
  };
}

// ---------------------------------------------------------------- fields

/** The writer of one field of `type`, or an {UnsupportedTypedDataError}. */
function fieldWriter(primaryType: string, name: string, type: string): FieldWriter {
  const where = `${primaryType}.${name}`;
  const uint = /^uint([0-9]+)$/.exec(type);
  if (uint !== null) {
    const bits = Number(uint[1]);
    if (bits < 8 || bits > 256 || bits % 8 !== 0 || uint[1] !== String(bits))
      throw new UnsupportedTypedDataError(`${where}: ${type} is not a valid uint type`);
    const max = (1n << BigInt(bits)) - 1n;
    return (out, offset, value) => {
      let v: bigint;
      if (typeof value === "bigint") v = value;
      else if (typeof value === "number" && Number.isSafeInteger(value)) v = BigInt(value);
      else throw new TypeError(`${where} must be a bigint or a safe integer (${type}), got ${describe(value)}`);
      if (v < 0n || v > max) throw new RangeError(`${where} ${v} is out of range for ${type}`);
      writeUint(out, offset, v);
    };
  }
  switch (type) {
    case "address":
      return (out, offset, value) => {
        if (typeof value !== "string" || !ADDRESS_RE.test(value))
          throw new TypeError(`${where} must be a 0x-prefixed 20-byte address, got ${describe(value)}`);
        writeHex(out, offset + 12, value, 20);
      };
    case "bytes32":
      return (out, offset, value) => {
        if (typeof value !== "string" || !BYTES32_RE.test(value))
          throw new TypeError(`${where} must be 0x-prefixed 32 bytes of hex, got ${describe(value)}`);
        writeHex(out, offset, value, 32);
      };
    case "bool":
      return (out, offset, value) => {
        if (typeof value !== "boolean") throw new TypeError(`${where} must be a boolean, got ${describe(value)}`);
        out[offset + 31] = value ? 1 : 0;
      };
    default:
      throw new UnsupportedTypedDataError(
        `${where} has type ${type}: this codec encodes only uint8..uint256, address, bool and bytes32 fields (no strings, dynamic bytes, arrays or nested structs); use viem's hashTypedData for it`,
      );
  }
}

function describe(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value);
  if (typeof value === "bigint") return `${value}n`;
  return value === undefined ? "undefined (missing field?)" : `${typeof value} ${String(value)}`;
}

/** Big-endian unsigned `v` in the 32-byte word at `offset` (the word is zero on entry). */
function writeUint(out: Uint8Array, offset: number, v: bigint): void {
  if (v <= 0xffffffffn) {
    const n = Number(v);
    out[offset + 28] = n >>> 24;
    out[offset + 29] = (n >>> 16) & 0xff;
    out[offset + 30] = (n >>> 8) & 0xff;
    out[offset + 31] = n & 0xff;
    return;
  }
  let x = v;
  for (let i = offset + 31; i >= offset && x !== 0n; i--) {
    out[i] = Number(x & 0xffn);
    x >>= 8n;
  }
}

function writeHex(out: Uint8Array, offset: number, hex: string, length: number): void {
  for (let i = 0; i < length; i++) out[offset + i] = (hexNibble(hex.charCodeAt(2 + 2 * i)) << 4) | hexNibble(hex.charCodeAt(3 + 2 * i));
}

function hexNibble(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  return c - 55; // A..F (callers validated the string)
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

// ---------------------------------------------------------------- signatures

/** A signature that passed OZ's static checks: 64 compact bytes and the recovery id. */
interface CheckedSignature {
  compact: Uint8Array;
  recid: number;
}

/** OZ ECDSA's acceptance rules, before recovery. */
function checkSignature(signature: Hex): CheckedSignature {
  if (typeof signature !== "string" || !SIGNATURE_RE.test(signature)) {
    const got = typeof signature === "string" ? `${Math.max(0, (signature.length - 2) / 2)} bytes` : typeof signature;
    throw new InvalidTypedDataSignatureError("length", `expected 65 bytes of 0x-prefixed hex, got ${got}`);
  }
  const v = Number.parseInt(signature.slice(130, 132), 16);
  if (v !== 27 && v !== 28) throw new InvalidTypedDataSignatureError("v", `v is ${v}`);
  const r = BigInt(`0x${signature.slice(2, 66)}`);
  const s = BigInt(`0x${signature.slice(66, 130)}`);
  if (r === 0n || r >= SECP256K1_N) throw new InvalidTypedDataSignatureError("r", "r is 0 or not below the curve order");
  if (s === 0n) throw new InvalidTypedDataSignatureError("s-zero", "s is 0");
  if (s > HALF_N) throw new InvalidTypedDataSignatureError("s-malleable", "s is above n/2 (the malleable twin of a valid signature)");
  const compact = new Uint8Array(64);
  writeHex(compact, 0, signature, 64);
  return { compact, recid: v - 27 };
}

const publicKey = new Uint8Array(65);

function recoverChecked(digest: Uint8Array, { compact, recid }: CheckedSignature): Address {
  try {
    nativeSecp256k1.ecdsaRecover(compact, recid, digest, false, publicKey);
  } catch {
    throw new InvalidTypedDataSignatureError("unrecoverable", "no public key recovers from it");
  }
  return addressOfPublicKey(publicKey);
}

function toDigestBytes(digest: Uint8Array | Hex): Uint8Array {
  if (digest instanceof Uint8Array) {
    if (digest.length !== 32) throw new TypeError(`a digest is 32 bytes, got ${digest.length}`);
    return digest;
  }
  if (typeof digest !== "string" || !BYTES32_RE.test(digest))
    throw new TypeError(`a digest is 0x-prefixed 32 bytes of hex, got ${describe(digest)}`);
  const out = new Uint8Array(32);
  writeHex(out, 0, digest, 32);
  return out;
}

function privateKeyBytes(privateKey: Hex): Uint8Array {
  if (typeof privateKey !== "string" || !PRIVATE_KEY_RE.test(privateKey))
    throw new TypeError("a private key is 0x-prefixed 32 bytes of hex");
  const key = new Uint8Array(32);
  writeHex(key, 0, privateKey, 32);
  if (!nativeSecp256k1.privateKeyVerify(key)) throw new RangeError("the private key is 0 or not below the curve order");
  return key;
}

/**
 * Signs a 32-byte digest with libsecp256k1 (RFC 6979 nonce, low s): 65 bytes r ‖ s ‖ v with
 * v 27/28, what viem's `sign` returns as a serialized signature.
 */
export function signDigest(privateKey: Hex, digest: Uint8Array | Hex): Hex {
  const { signature, recid } = nativeSecp256k1.ecdsaSign(toDigestBytes(digest), privateKeyBytes(privateKey));
  return `0x${Buffer.from(signature.buffer, signature.byteOffset, 64).toString("hex")}${recid === 0 ? "1b" : "1c"}`;
}

/** The checksummed address of `privateKey`. */
export function addressOfPrivateKey(privateKey: Hex): Address {
  return addressOfPublicKey(nativeSecp256k1.publicKeyCreate(privateKeyBytes(privateKey), false));
}

// ---------------------------------------------------------------- addresses

const addressBytes = new Uint8Array(32);
const lowerHex = new Uint8Array(40);
const checksumHash = new Uint8Array(32);
const HEX_DIGITS = "0123456789abcdef";

/** keccak256(x ‖ y)[12..] of an uncompressed public key (0x04 ‖ x ‖ y), checksummed. */
function addressOfPublicKey(uncompressed: Uint8Array): Address {
  keccak256Short(uncompressed, 1, 64, addressBytes, 0);
  return checksumBytes(addressBytes, 12);
}

/** EIP-55 checksum of the 20 bytes at `offset` of `bytes` (viem's getAddress, without allocating hashes). */
function checksumBytes(bytes: Uint8Array, offset: number): Address {
  for (let i = 0; i < 20; i++) {
    const b = bytes[offset + i];
    lowerHex[2 * i] = HEX_DIGITS.charCodeAt(b >> 4);
    lowerHex[2 * i + 1] = HEX_DIGITS.charCodeAt(b & 15);
  }
  keccak256Short(lowerHex, 0, 40, checksumHash, 0);
  let out = "0x";
  for (let i = 0; i < 40; i++) {
    const c = lowerHex[i];
    const nibble = i % 2 === 0 ? checksumHash[i >> 1] >> 4 : checksumHash[i >> 1] & 15;
    out += String.fromCharCode(c >= 97 && nibble >= 8 ? c - 32 : c);
  }
  return out as Address;
}

// ---------------------------------------------------------------- hex

function hexToBytes(hex: Hex): Uint8Array {
  return Uint8Array.from(Buffer.from(hex.slice(2), "hex"));
}

function bytesToHex(bytes: Uint8Array): Hex {
  return `0x${Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex")}`;
}
