// Randomness for challenges: ids, times, prompts, seeds. Everything draws from a RandomSource so
// tests can inject a seeded one; the default is the operating system's CSPRNG (an edge must not
// be able to predict when, or with what, it will be challenged).
import { randomBytes } from "node:crypto";

import type { Hex } from "viem";

/** A source of random bytes. */
export interface RandomSource {
  bytes(n: number): Uint8Array;
}

/** node:crypto's CSPRNG. */
export const cryptoRandom: RandomSource = { bytes: (n) => randomBytes(n) };

/**
 * A deterministic source for tests: xorshift-style bytes from `seed` (NOT for production: it is
 * predictable by design).
 */
export function seededRandom(seed: number): RandomSource {
  let s = seed >>> 0 || 0x9e3779b9;
  const next = (): number => {
    // mulberry32
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
  return {
    bytes(n) {
      const out = new Uint8Array(n);
      for (let i = 0; i < n; i += 4) {
        const v = next();
        for (let k = 0; k < 4 && i + k < n; k++) out[i + k] = (v >>> (8 * k)) & 0xff;
      }
      return out;
    },
  };
}

/** 32 random bytes as 0x-hex (a challenge id / nonce). */
export function randomHex32(random: RandomSource): Hex {
  return `0x${Buffer.from(random.bytes(32)).toString("hex")}`;
}

/** A uniform 32-bit unsigned integer. */
export function randomUint32(random: RandomSource): number {
  const b = random.bytes(4);
  return ((b[0]! | (b[1]! << 8) | (b[2]! << 16)) + b[3]! * 0x1000000) >>> 0;
}

/** A uniform integer in [0, n) (n ≥ 1, up to 2^32), without modulo bias. */
export function randomBelow(random: RandomSource, n: number): number {
  if (!Number.isInteger(n) || n < 1 || n > 0x1_0000_0000) throw new RangeError(`randomBelow: n must be an integer in [1, 2^32], got ${n}`);
  if (n === 1) return 0;
  const limit = 0x1_0000_0000 - (0x1_0000_0000 % n);
  for (;;) {
    const v = randomUint32(random);
    if (v < limit) return v % n;
  }
}

/** A uniform integer in [min, max] (inclusive). */
export function randomInt(random: RandomSource, min: number, max: number): number {
  if (max < min) throw new RangeError(`randomInt: max ${max} < min ${min}`);
  return min + randomBelow(random, max - min + 1);
}

/** A uniform real in [0, 1) with 32 bits of resolution. */
export function randomUnit(random: RandomSource): number {
  return randomUint32(random) / 0x1_0000_0000;
}

/** One element of `items` (non-empty). */
export function pick<T>(random: RandomSource, items: readonly T[]): T {
  if (items.length === 0) throw new RangeError("pick: no items");
  return items[randomBelow(random, items.length)]!;
}
