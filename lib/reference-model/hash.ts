// 32-bit integer hashing and pseudo-random numbers for the reference model. Everything here is
// integer arithmetic (Math.imul, >>>, ^) so that every machine computes the same bits: the
// verifier recomputes an edge's answer and compares bytes. No library offers these exact
// mixing functions with a frozen output, so they are written out (splitmix32's finaliser and
// FNV-1a are public-domain constructions).

/** Mixes a 32-bit value into a well-distributed 32-bit value (splitmix32's output finaliser). */
export function mix32(x: number): number {
  let z = x | 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/** Hashes two 32-bit words into one: the key of a weight or an embedding entry. */
export function hash2(a: number, b: number): number {
  return mix32(Math.imul(mix32(a) ^ 0x9e3779b9, 0x01000193) ^ (b | 0));
}

/** FNV-1a over the UTF-8 bytes of `text`, then mixed: how the tokenizer names a piece. */
export function hashString(text: string): number {
  const bytes = new TextEncoder().encode(text);
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i], 0x01000193);
  return mix32(h);
}

/** A splitmix32 stream: `next()` returns uniformly distributed unsigned 32-bit integers. */
export interface Prng {
  next(): number;
}

/**
 * Creates a splitmix32 generator from a 32-bit seed, positioned as if `skip` numbers had already
 * been drawn (its state only ever adds a constant, so skipping is one multiply).
 */
export function splitmix32(seed: number, skip = 0): Prng {
  if (!Number.isSafeInteger(skip) || skip < 0) throw new RangeError(`skip must be a non-negative safe integer, got ${skip}`);
  // Math.imul takes skip modulo 2^32, which is all the state (a sum modulo 2^32) depends on.
  let state = (seed + Math.imul(skip, 0x9e3779b9)) | 0;
  return {
    next(): number {
      state = (state + 0x9e3779b9) | 0;
      return mix32(state);
    },
  };
}

/**
 * Folds a request seed (any safe integer, as OpenAI's `seed` allows) into 32 bits, using both
 * halves so that seeds differing only above bit 31 still differ.
 */
export function seedTo32(seed: number): number {
  if (!Number.isSafeInteger(seed)) throw new RangeError(`seed must be a safe integer, got ${seed}`);
  const lo = seed >>> 0; // ToUint32 is exact modulo 2^32, negative seeds included
  const hi = Math.floor(seed / 0x1_0000_0000) >>> 0;
  return hash2(lo, hi);
}
