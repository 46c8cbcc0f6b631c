// Keccak-256 of short messages (at most 135 bytes: one sponge block), in place, without
// allocating: what the fast Merkle builder hashes 3 million times for a 2^20-leaf tree (128-byte
// leaf encodings, 32-byte inner leaf hashes, 64-byte node pairs). viem's keccak256 allocates a
// hasher and an output per call; this single-block sponge around noble-hashes' own Keccak-f[1600]
// permutation (`keccakP`, the one viem uses underneath) does not, and runs about twice as fast here (1.0 s against 2.2 s for 300,000 hashes).
// Checked against viem's keccak256 in test/lib/keccak.test.ts.
//
// Erasable TypeScript only (runs under Node's type stripping, see index.ts).
import { keccakP } from "@noble/hashes/sha3.js";

/** Bytes absorbed per block by Keccak-256 (1600 - 2 × 256 bits). */
export const KECCAK256_RATE = 136;

/** The sponge state: 25 lanes of 64 bits as (lo, hi) 32-bit halves, little-endian, as keccakP takes it. */
const state = new Uint32Array(50);

/**
 * Writes keccak256(input[offset .. offset + length)) to out[outOffset .. outOffset + 32).
 * `out` may overlap `input`.
 */
export function keccak256Short(input: Uint8Array, offset: number, length: number, out: Uint8Array, outOffset: number): void {
  if (length > KECCAK256_RATE - 1 || length < 0)
    throw new RangeError(`keccak256Short hashes at most ${KECCAK256_RATE - 1} bytes, got ${length}`);
  const s = state;
  s.fill(0);
  // Absorb the message, little-endian words, then the padding 0x01 ... 0x80.
  let i = 0;
  for (; i + 4 <= length; i += 4) {
    const p = offset + i;
    s[i >> 2] = input[p] | (input[p + 1] << 8) | (input[p + 2] << 16) | (input[p + 3] << 24);
  }
  for (; i < length; i++) s[i >> 2] |= input[offset + i] << ((i & 3) * 8);
  s[length >> 2] ^= 0x01 << ((length & 3) * 8);
  s[(KECCAK256_RATE - 1) >> 2] ^= 0x80 << (((KECCAK256_RATE - 1) & 3) * 8);
  keccakP(s, 24);
  for (let w = 0; w < 8; w++) {
    const v = s[w];
    const p = outOffset + 4 * w;
    out[p] = v & 0xff;
    out[p + 1] = (v >>> 8) & 0xff;
    out[p + 2] = (v >>> 16) & 0xff;
    out[p + 3] = v >>> 24;
  }
}
