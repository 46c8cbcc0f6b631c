// lib/protocol/keccak.ts: the in-place single-block Keccak-256 used by the fast Merkle builder,
// against ethers' keccak256 (another implementation) on every length it accepts.
import { expect } from "chai";
import { hexlify, keccak256 as ethersKeccak } from "ethers";

import { KECCAK256_RATE, keccak256Short } from "../../lib/protocol/keccak.ts";

/** Deterministic bytes (xorshift32), so a failure reproduces. */
function bytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed | 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

describe("lib/protocol keccak", () => {
  describe("keccak256Short", () => {
    it("equals keccak256 for every message length from 0 to 135 bytes, at any offsets", () => {
      for (let len = 0; len < KECCAK256_RATE; len++) {
        const input = bytes(len + 5, len + 1);
        const out = new Uint8Array(40).fill(0xee);
        keccak256Short(input, 3, len, out, 4);
        expect(hexlify(out.subarray(4, 36)), `length ${len}`).to.equal(ethersKeccak(input.subarray(3, 3 + len)));
        // Bytes around the output are untouched.
        expect([...out.subarray(0, 4), ...out.subarray(36)]).to.deep.equal([0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee]);
      }
    });

    it("hashes the empty message to the well-known keccak256('')", () => {
      const out = new Uint8Array(32);
      keccak256Short(new Uint8Array(0), 0, 0, out, 0);
      expect(hexlify(out)).to.equal("0xc5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470");
    });

    it("gives the same digest when the output overwrites the input (as the tree builder does)", () => {
      const buf = bytes(64, 99);
      const expected = ethersKeccak(buf);
      keccak256Short(buf, 0, 64, buf, 0);
      expect(hexlify(buf.subarray(0, 32))).to.equal(expected);
    });

    it("rejects messages longer than one block", () => {
      expect(() => keccak256Short(new Uint8Array(136), 0, 136, new Uint8Array(32), 0)).to.throw(RangeError, "at most 135 bytes");
    });
  });
});
