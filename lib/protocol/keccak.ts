// Keccak-256 of short messages (at most 135 bytes: one sponge block), in place, without
// allocating: what the fast Merkle builder hashes 3 million times for a 2^20-leaf tree (128-byte
// leaf encodings, 32-byte inner leaf hashes, 64-byte node pairs). viem's keccak256 (noble-hashes
// underneath) allocates a hasher and an output per call and spends about twice as long; this
// is the plain Keccak-f[1600] permutation over 64-bit lanes held as (lo, hi) 32-bit halves.
// Checked against viem's keccak256 in test/lib/keccak.test.ts.
//
// Erasable TypeScript only (runs under Node's type stripping, see index.ts).

/** Bytes absorbed per block by Keccak-256 (1600 - 2 × 256 bits). */
export const KECCAK256_RATE = 136;

const RC = [
  "0000000000000001", "0000000000008082", "800000000000808a", "8000000080008000", "000000000000808b", "0000000080000001",
  "8000000080008081", "8000000000008009", "000000000000008a", "0000000000000088", "0000000080008009", "000000008000000a",
  "000000008000808b", "800000000000008b", "8000000000008089", "8000000000008003", "8000000000008002", "8000000000000080",
  "000000000000800a", "800000008000000a", "8000000080008081", "8000000000008080", "0000000080000001", "8000000080008008",
];
const RC_HI = new Uint32Array(RC.map((h) => Number.parseInt(h.slice(0, 8), 16)));
const RC_LO = new Uint32Array(RC.map((h) => Number.parseInt(h.slice(8), 16)));
/** ρ rotation of each lane visited by π, and the lane π moves it to (the reference "ROTC"/"PILN"). */
const ROTC = [1, 3, 6, 10, 15, 21, 28, 36, 45, 55, 2, 14, 27, 41, 56, 8, 25, 43, 62, 18, 39, 61, 20, 44];
const PILN = [10, 7, 11, 17, 18, 3, 5, 16, 8, 21, 24, 4, 15, 23, 19, 13, 12, 2, 20, 14, 22, 9, 6, 1];

const state = new Uint32Array(50); // lane i: lo at 2i, hi at 2i+1

// Keccak-f[1600], one round per iteration with the 25 lanes in local variables: θ (c, d), ρ and π
// (b: lane PILN[i] takes lane PILN[i-1] rotated by ROTC[i]), χ, ι. Generated mechanically from
// the tables above (the straightforward array version runs about 3 times slower).
function permute(s: Uint32Array): void {
  let a0 = s[0];
  let a1 = s[1];
  let a2 = s[2];
  let a3 = s[3];
  let a4 = s[4];
  let a5 = s[5];
  let a6 = s[6];
  let a7 = s[7];
  let a8 = s[8];
  let a9 = s[9];
  let a10 = s[10];
  let a11 = s[11];
  let a12 = s[12];
  let a13 = s[13];
  let a14 = s[14];
  let a15 = s[15];
  let a16 = s[16];
  let a17 = s[17];
  let a18 = s[18];
  let a19 = s[19];
  let a20 = s[20];
  let a21 = s[21];
  let a22 = s[22];
  let a23 = s[23];
  let a24 = s[24];
  let a25 = s[25];
  let a26 = s[26];
  let a27 = s[27];
  let a28 = s[28];
  let a29 = s[29];
  let a30 = s[30];
  let a31 = s[31];
  let a32 = s[32];
  let a33 = s[33];
  let a34 = s[34];
  let a35 = s[35];
  let a36 = s[36];
  let a37 = s[37];
  let a38 = s[38];
  let a39 = s[39];
  let a40 = s[40];
  let a41 = s[41];
  let a42 = s[42];
  let a43 = s[43];
  let a44 = s[44];
  let a45 = s[45];
  let a46 = s[46];
  let a47 = s[47];
  let a48 = s[48];
  let a49 = s[49];
  for (let round = 0; round < 24; round++) {
    const c0 = a0 ^ a10 ^ a20 ^ a30 ^ a40;
    const c1 = a1 ^ a11 ^ a21 ^ a31 ^ a41;
    const c2 = a2 ^ a12 ^ a22 ^ a32 ^ a42;
    const c3 = a3 ^ a13 ^ a23 ^ a33 ^ a43;
    const c4 = a4 ^ a14 ^ a24 ^ a34 ^ a44;
    const c5 = a5 ^ a15 ^ a25 ^ a35 ^ a45;
    const c6 = a6 ^ a16 ^ a26 ^ a36 ^ a46;
    const c7 = a7 ^ a17 ^ a27 ^ a37 ^ a47;
    const c8 = a8 ^ a18 ^ a28 ^ a38 ^ a48;
    const c9 = a9 ^ a19 ^ a29 ^ a39 ^ a49;
    const d0 = c8 ^ ((c2 << 1) | (c3 >>> 31));
    const d1 = c9 ^ ((c3 << 1) | (c2 >>> 31));
    const d2 = c0 ^ ((c4 << 1) | (c5 >>> 31));
    const d3 = c1 ^ ((c5 << 1) | (c4 >>> 31));
    const d4 = c2 ^ ((c6 << 1) | (c7 >>> 31));
    const d5 = c3 ^ ((c7 << 1) | (c6 >>> 31));
    const d6 = c4 ^ ((c8 << 1) | (c9 >>> 31));
    const d7 = c5 ^ ((c9 << 1) | (c8 >>> 31));
    const d8 = c6 ^ ((c0 << 1) | (c1 >>> 31));
    const d9 = c7 ^ ((c1 << 1) | (c0 >>> 31));
    a0 ^= d0; a1 ^= d1;
    a2 ^= d2; a3 ^= d3;
    a4 ^= d4; a5 ^= d5;
    a6 ^= d6; a7 ^= d7;
    a8 ^= d8; a9 ^= d9;
    a10 ^= d0; a11 ^= d1;
    a12 ^= d2; a13 ^= d3;
    a14 ^= d4; a15 ^= d5;
    a16 ^= d6; a17 ^= d7;
    a18 ^= d8; a19 ^= d9;
    a20 ^= d0; a21 ^= d1;
    a22 ^= d2; a23 ^= d3;
    a24 ^= d4; a25 ^= d5;
    a26 ^= d6; a27 ^= d7;
    a28 ^= d8; a29 ^= d9;
    a30 ^= d0; a31 ^= d1;
    a32 ^= d2; a33 ^= d3;
    a34 ^= d4; a35 ^= d5;
    a36 ^= d6; a37 ^= d7;
    a38 ^= d8; a39 ^= d9;
    a40 ^= d0; a41 ^= d1;
    a42 ^= d2; a43 ^= d3;
    a44 ^= d4; a45 ^= d5;
    a46 ^= d6; a47 ^= d7;
    a48 ^= d8; a49 ^= d9;
    const b0 = a0; const b1 = a1;
    const b20 = (a2 << 1) | (a3 >>> 31); const b21 = (a3 << 1) | (a2 >>> 31);
    const b14 = (a20 << 3) | (a21 >>> 29); const b15 = (a21 << 3) | (a20 >>> 29);
    const b22 = (a14 << 6) | (a15 >>> 26); const b23 = (a15 << 6) | (a14 >>> 26);
    const b34 = (a22 << 10) | (a23 >>> 22); const b35 = (a23 << 10) | (a22 >>> 22);
    const b36 = (a34 << 15) | (a35 >>> 17); const b37 = (a35 << 15) | (a34 >>> 17);
    const b6 = (a36 << 21) | (a37 >>> 11); const b7 = (a37 << 21) | (a36 >>> 11);
    const b10 = (a6 << 28) | (a7 >>> 4); const b11 = (a7 << 28) | (a6 >>> 4);
    const b32 = (a11 << 4) | (a10 >>> 28); const b33 = (a10 << 4) | (a11 >>> 28);
    const b16 = (a33 << 13) | (a32 >>> 19); const b17 = (a32 << 13) | (a33 >>> 19);
    const b42 = (a17 << 23) | (a16 >>> 9); const b43 = (a16 << 23) | (a17 >>> 9);
    const b48 = (a42 << 2) | (a43 >>> 30); const b49 = (a43 << 2) | (a42 >>> 30);
    const b8 = (a48 << 14) | (a49 >>> 18); const b9 = (a49 << 14) | (a48 >>> 18);
    const b30 = (a8 << 27) | (a9 >>> 5); const b31 = (a9 << 27) | (a8 >>> 5);
    const b46 = (a31 << 9) | (a30 >>> 23); const b47 = (a30 << 9) | (a31 >>> 23);
    const b38 = (a47 << 24) | (a46 >>> 8); const b39 = (a46 << 24) | (a47 >>> 8);
    const b26 = (a38 << 8) | (a39 >>> 24); const b27 = (a39 << 8) | (a38 >>> 24);
    const b24 = (a26 << 25) | (a27 >>> 7); const b25 = (a27 << 25) | (a26 >>> 7);
    const b4 = (a25 << 11) | (a24 >>> 21); const b5 = (a24 << 11) | (a25 >>> 21);
    const b40 = (a5 << 30) | (a4 >>> 2); const b41 = (a4 << 30) | (a5 >>> 2);
    const b28 = (a40 << 18) | (a41 >>> 14); const b29 = (a41 << 18) | (a40 >>> 14);
    const b44 = (a29 << 7) | (a28 >>> 25); const b45 = (a28 << 7) | (a29 >>> 25);
    const b18 = (a45 << 29) | (a44 >>> 3); const b19 = (a44 << 29) | (a45 >>> 3);
    const b12 = (a18 << 20) | (a19 >>> 12); const b13 = (a19 << 20) | (a18 >>> 12);
    const b2 = (a13 << 12) | (a12 >>> 20); const b3 = (a12 << 12) | (a13 >>> 20);
    a0 = b0 ^ (~b2 & b4);
    a1 = b1 ^ (~b3 & b5);
    a2 = b2 ^ (~b4 & b6);
    a3 = b3 ^ (~b5 & b7);
    a4 = b4 ^ (~b6 & b8);
    a5 = b5 ^ (~b7 & b9);
    a6 = b6 ^ (~b8 & b0);
    a7 = b7 ^ (~b9 & b1);
    a8 = b8 ^ (~b0 & b2);
    a9 = b9 ^ (~b1 & b3);
    a10 = b10 ^ (~b12 & b14);
    a11 = b11 ^ (~b13 & b15);
    a12 = b12 ^ (~b14 & b16);
    a13 = b13 ^ (~b15 & b17);
    a14 = b14 ^ (~b16 & b18);
    a15 = b15 ^ (~b17 & b19);
    a16 = b16 ^ (~b18 & b10);
    a17 = b17 ^ (~b19 & b11);
    a18 = b18 ^ (~b10 & b12);
    a19 = b19 ^ (~b11 & b13);
    a20 = b20 ^ (~b22 & b24);
    a21 = b21 ^ (~b23 & b25);
    a22 = b22 ^ (~b24 & b26);
    a23 = b23 ^ (~b25 & b27);
    a24 = b24 ^ (~b26 & b28);
    a25 = b25 ^ (~b27 & b29);
    a26 = b26 ^ (~b28 & b20);
    a27 = b27 ^ (~b29 & b21);
    a28 = b28 ^ (~b20 & b22);
    a29 = b29 ^ (~b21 & b23);
    a30 = b30 ^ (~b32 & b34);
    a31 = b31 ^ (~b33 & b35);
    a32 = b32 ^ (~b34 & b36);
    a33 = b33 ^ (~b35 & b37);
    a34 = b34 ^ (~b36 & b38);
    a35 = b35 ^ (~b37 & b39);
    a36 = b36 ^ (~b38 & b30);
    a37 = b37 ^ (~b39 & b31);
    a38 = b38 ^ (~b30 & b32);
    a39 = b39 ^ (~b31 & b33);
    a40 = b40 ^ (~b42 & b44);
    a41 = b41 ^ (~b43 & b45);
    a42 = b42 ^ (~b44 & b46);
    a43 = b43 ^ (~b45 & b47);
    a44 = b44 ^ (~b46 & b48);
    a45 = b45 ^ (~b47 & b49);
    a46 = b46 ^ (~b48 & b40);
    a47 = b47 ^ (~b49 & b41);
    a48 = b48 ^ (~b40 & b42);
    a49 = b49 ^ (~b41 & b43);
    a0 ^= RC_LO[round]; a1 ^= RC_HI[round];
  }
  s[0] = a0;
  s[1] = a1;
  s[2] = a2;
  s[3] = a3;
  s[4] = a4;
  s[5] = a5;
  s[6] = a6;
  s[7] = a7;
  s[8] = a8;
  s[9] = a9;
  s[10] = a10;
  s[11] = a11;
  s[12] = a12;
  s[13] = a13;
  s[14] = a14;
  s[15] = a15;
  s[16] = a16;
  s[17] = a17;
  s[18] = a18;
  s[19] = a19;
  s[20] = a20;
  s[21] = a21;
  s[22] = a22;
  s[23] = a23;
  s[24] = a24;
  s[25] = a25;
  s[26] = a26;
  s[27] = a27;
  s[28] = a28;
  s[29] = a29;
  s[30] = a30;
  s[31] = a31;
  s[32] = a32;
  s[33] = a33;
  s[34] = a34;
  s[35] = a35;
  s[36] = a36;
  s[37] = a37;
  s[38] = a38;
  s[39] = a39;
  s[40] = a40;
  s[41] = a41;
  s[42] = a42;
  s[43] = a43;
  s[44] = a44;
  s[45] = a45;
  s[46] = a46;
  s[47] = a47;
  s[48] = a48;
  s[49] = a49;
}

/**
 * Writes keccak256(input[offset, offset + length)) to out[outOffset, outOffset + 32). `length` is
 * at most 135 (one block). `out` may overlap the input.
 */
export function keccak256Short(input: Uint8Array, offset: number, length: number, out: Uint8Array, outOffset: number): void {
  if (length > KECCAK256_RATE - 1 || length < 0) throw new RangeError(`keccak256Short hashes at most ${KECCAK256_RATE - 1} bytes, got ${length}`);
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
  permute(s);
  for (let w = 0; w < 8; w++) {
    const v = s[w];
    const p = outOffset + 4 * w;
    out[p] = v & 0xff;
    out[p + 1] = (v >>> 8) & 0xff;
    out[p + 2] = (v >>> 16) & 0xff;
    out[p + 3] = v >>> 24;
  }
}
