// lib/reference-model: the deterministic model a verifier recomputes answers with. Checked
// against the recorded vectors (test/vectors/reference-model.json), against an independent
// BigInt re-implementation of the network (exact arithmetic, so any float rounding or int32
// overflow in the fast path would show), and for its behaviour: seeds, stop strings, work.
import { readFileSync } from "node:fs";

import { expect } from "chai";
import { keccak256, stringToBytes } from "viem";

import {
  applyChatTemplate,
  complete,
  countPromptTokens,
  countTokens,
  decodeToken,
  embed,
  generate,
  hashString,
  mix32,
  OUTPUT_VOCAB,
  ReferenceGenerateError,
  ReferenceModelConfigError,
  SPECIAL_TOKENS,
  splitPieces,
  tokenize,
  WEIGHT_SEED,
} from "../../../../lib/reference-model/index.ts";
import type { GenerateDone, GenerateSpec, ReferenceMessage } from "../../../../lib/reference-model/index.ts";

interface CompletionVector {
  request: {
    messages: ReferenceMessage[];
    maxTokens: number;
    temperature: number;
    seed?: number;
    stop?: string[];
    hidden: number;
    layers: number;
  };
  output: {
    text: string;
    finishReason: "stop" | "length";
    promptTokens: number;
    completionTokens: number;
    work: number;
    keccak256: string;
  };
}
interface EmbeddingVector {
  request: { input: string[]; hidden: number; layers: number };
  output: { promptTokens: number; int32: number[][]; keccak256: string };
}
const vectors = JSON.parse(readFileSync(new URL("../../../vectors/reference-model.json", import.meta.url), "utf8")) as {
  completions: CompletionVector[];
  embeddings: EmbeddingVector[];
};

function specOf(v: CompletionVector["request"]): GenerateSpec {
  return {
    messages: v.messages,
    maxTokens: v.maxTokens,
    temperature: v.temperature,
    seed: v.seed,
    stop: v.stop,
    config: { hidden: v.hidden, layers: v.layers },
  };
}

// ---- An independent implementation with BigInt (arbitrary precision, explicit mod 2^32) ----
const M32 = (1n << 32n) - 1n;
const u32 = (x: bigint): bigint => x & M32;
function bigMix(x: bigint): bigint {
  let z = u32(x);
  z = u32((z ^ (z >> 16n)) * 0x85ebca6bn);
  z = u32((z ^ (z >> 13n)) * 0xc2b2ae35n);
  return z ^ (z >> 16n);
}
const bigHash2 = (a: bigint, b: bigint): bigint => bigMix(u32((bigMix(a) ^ 0x9e3779b9n) * 0x01000193n) ^ u32(b));
function bigRng(seed: bigint): () => bigint {
  let s = u32(seed);
  return () => {
    s = u32(s + 0x9e3779b9n);
    return bigMix(s);
  };
}
function bigFold(v: bigint): bigint {
  let u = (((v + 2048n) % 8192n) + 8192n) % 8192n;
  if (u >= 4096n) u = 8191n - u;
  return u - 2048n;
}
/** Output token ids of a completion (no stop strings), computed with BigInts only. */
function bigGenerate(messages: ReferenceMessage[], maxTokens: number, temperature: number, seed: bigint, H: number, L: number): number[] {
  const rngW = bigRng(bigHash2(BigInt(WEIGHT_SEED), bigHash2(BigInt(H), BigInt(L))));
  const w = (): bigint => (rngW() >> 25n) - 64n;
  const layers: bigint[][][] = [];
  for (let l = 0; l < L; l++) layers.push(Array.from({ length: H }, () => Array.from({ length: H }, w)));
  const head = Array.from({ length: OUTPUT_VOCAB }, () => Array.from({ length: H }, w));
  const shift = BigInt(6 + Math.floor(Math.floor(Math.log2(H)) / 2));
  const h: bigint[][] = Array.from({ length: L }, () => new Array<bigint>(H).fill(0n));
  let pos = 0n;
  const step = (token: number): void => {
    const posKey = u32((pos + 1n) * 0x632be5abn);
    let x = Array.from({ length: H }, (_, j) => (bigMix(bigHash2(BigInt(token), BigInt(j)) + posKey) >> 20n) - 2048n);
    for (let l = 0; l < L; l++) {
      h[l] = h[l].map((old, i) => bigFold((layers[l][i].reduce((acc, wij, j) => acc + wij * x[j], 0n) >> shift) + (old >> 1n)));
      x = h[l];
    }
    pos++;
  };
  const seedU = BigInt.asUintN(64, seed);
  const rngS = bigRng(bigHash2(seedU & M32, (seedU >> 32n) & M32));
  const t = BigInt(Math.round(temperature * 1000));
  for (const id of applyChatTemplate(messages)) step(id);
  const out: number[] = [];
  for (let n = 0; n < maxTokens; n++) {
    if (n > 0) step(out[n - 1]);
    let best = 0;
    let bestScore: bigint | undefined;
    head.forEach((row, k) => {
      let score = row.reduce((acc, wkj, j) => acc + wkj * h[L - 1][j], 0n) >> 8n;
      if (t > 0n) score += ((rngS() >> 20n) * t) >> 10n;
      if (bestScore === undefined || score > bestScore) {
        bestScore = score;
        best = k;
      }
    });
    out.push(SPECIAL_TOKENS + best);
  }
  return out;
}

/** Deltas and final event of a completion. */
function run(spec: GenerateSpec): { deltas: string[]; done: GenerateDone } {
  const deltas: string[] = [];
  for (const ev of generate(spec)) {
    if (ev.type === "delta") deltas.push(ev.text);
    else return { deltas, done: ev };
  }
  throw new Error("no done event");
}

const chatMsgs: ReferenceMessage[] = [{ role: "user", content: "How high is the tide at noon?" }];
const small = { hidden: 32, layers: 2 };

describe("lib/reference-model", () => {
  describe("test vectors", () => {
    for (const [i, v] of vectors.completions.entries()) {
      it(`recomputes completion vector ${i} byte for byte (${v.output.finishReason}, hidden ${v.request.hidden}, layers ${v.request.layers})`, () => {
        const { text, done } = complete(specOf(v.request));
        expect(text).to.equal(v.output.text);
        expect(keccak256(stringToBytes(text))).to.equal(v.output.keccak256);
        expect(done.finishReason).to.equal(v.output.finishReason);
        expect(done.usage).to.deep.equal({ promptTokens: v.output.promptTokens, completionTokens: v.output.completionTokens });
        expect(done.work).to.equal(v.output.work);
      });
    }
    for (const [i, v] of vectors.embeddings.entries()) {
      it(`recomputes embedding vector ${i} exactly`, () => {
        const r = embed(v.request.input, { hidden: v.request.hidden, layers: v.request.layers });
        const int32 = r.embeddings.map((e) => e.map((x) => x * 2 ** 31));
        expect(int32).to.deep.equal(v.output.int32);
        expect(keccak256(stringToBytes(JSON.stringify(int32)))).to.equal(v.output.keccak256);
        expect(r.promptTokens).to.equal(v.output.promptTokens);
      });
    }
    it("covers greedy, sampled, stop, zero-length and every chat role", () => {
      const c = vectors.completions;
      expect(c.some((v) => v.request.temperature === 0)).to.equal(true);
      expect(c.some((v) => v.request.temperature > 0 && v.output.completionTokens > 0)).to.equal(true);
      expect(c.some((v) => v.output.finishReason === "stop")).to.equal(true);
      expect(c.some((v) => v.request.maxTokens === 0)).to.equal(true);
      const roles = new Set(c.flatMap((v) => v.request.messages.map((m) => m.role)));
      expect([...roles].sort()).to.deep.equal(["assistant", "developer", "system", "tool", "user"]);
    });
  });

  describe("generate (against an independent BigInt implementation)", () => {
    const cases = [
      { name: "greedy", temperature: 0, seed: 0n, H: 16, L: 2 },
      { name: "sampled with a seed above 2^32", temperature: 0.9, seed: 2n ** 40n + 3n, H: 24, L: 1 },
      { name: "sampled with a negative seed", temperature: 2, seed: -5n, H: 8, L: 3 },
    ];
    for (const c of cases) {
      it(`emits the same tokens, ${c.name}`, () => {
        const ids = bigGenerate(chatMsgs, 12, c.temperature, c.seed, c.H, c.L);
        const expected = ids.map(decodeToken).join("");
        const { text } = complete({
          messages: chatMsgs,
          maxTokens: 12,
          temperature: c.temperature,
          seed: Number(c.seed),
          config: { hidden: c.H, layers: c.L },
        });
        expect(text).to.equal(expected);
      });
    }
  });

  describe("determinism and sampling", () => {
    it("gives the same bytes for the same request and seed", () => {
      const spec: GenerateSpec = { messages: chatMsgs, maxTokens: 30, temperature: 0.8, seed: 1234, config: small };
      expect(run(spec)).to.deep.equal(run(spec));
    });

    it("gives different text for different seeds when temperature > 0", () => {
      const a = complete({ messages: chatMsgs, maxTokens: 30, temperature: 0.8, seed: 1, config: small }).text;
      const b = complete({ messages: chatMsgs, maxTokens: 30, temperature: 0.8, seed: 2, config: small }).text;
      expect(a).to.not.equal(b);
    });

    it("ignores the seed at temperature 0 (greedy)", () => {
      const a = complete({ messages: chatMsgs, maxTokens: 20, temperature: 0, seed: 1, config: small }).text;
      const b = complete({ messages: chatMsgs, maxTokens: 20, temperature: 0, seed: 99, config: small }).text;
      expect(a).to.equal(b);
    });

    it("answers different prompts differently", () => {
      const a = complete({ messages: chatMsgs, maxTokens: 20, temperature: 0, config: small }).text;
      const b = complete({
        messages: [{ role: "user", content: "How low is it at dusk?" }],
        maxTokens: 20,
        temperature: 0,
        config: small,
      }).text;
      expect(a).to.not.equal(b);
    });

    it("yields one delta per token without stop strings, each a space and a pseudo-word", () => {
      const { deltas, done } = run({ messages: chatMsgs, maxTokens: 25, temperature: 0.3, seed: 5, config: small });
      expect(deltas).to.have.length(25);
      expect(done).to.include({ finishReason: "length" });
      expect(done.usage.completionTokens).to.equal(25);
      for (const d of deltas) expect(d).to.match(/^ [a-z]+[.,]?$/);
    });
  });

  describe("work counter", () => {
    const H = small.hidden;
    const L = small.layers;
    const workOf = (messages: ReferenceMessage[], maxTokens: number): number =>
      run({ messages, maxTokens, temperature: 0, config: small }).done.work;

    it("equals prompt × layers × hidden² + per output token the head and (but for the last) one step", () => {
      const p = countPromptTokens(chatMsgs);
      for (const n of [0, 1, 7, 40]) {
        const expected = p * L * H * H + n * OUTPUT_VOCAB * H + Math.max(0, n - 1) * L * H * H;
        expect(workOf(chatMsgs, n), `maxTokens ${n}`).to.equal(expected);
      }
    });

    it("grows linearly with prompt tokens and output tokens", () => {
      const m = (content: string): ReferenceMessage[] => [{ role: "user", content }];
      // "a a" has two more tokens than "a" (a space and a word).
      expect(workOf(m("a a"), 10) - workOf(m("a"), 10)).to.equal(2 * L * H * H);
      const perToken = L * H * H + OUTPUT_VOCAB * H;
      expect(workOf(m("a"), 11) - workOf(m("a"), 10)).to.equal(perToken);
      expect(workOf(m("a"), 30) - workOf(m("a"), 10)).to.equal(20 * perToken);
    });
  });

  describe("stop strings", () => {
    const spec: GenerateSpec = { messages: chatMsgs, maxTokens: 40, temperature: 0.5, seed: 77, config: small };
    const free = run(spec);
    const full = free.deltas.join("");
    /** Index of the token whose text contains position `end - 1` of the output. */
    const tokenEnding = (end: number): number => {
      let acc = 0;
      for (let i = 0; i < free.deltas.length; i++) {
        acc += free.deltas[i].length;
        if (acc >= end) return i;
      }
      return -1;
    };

    it("ends before a stop string spanning two tokens, excluding it, with finish reason stop", () => {
      // The last two characters of token 5 and the first two of token 6.
      const boundary = free.deltas.slice(0, 6).join("").length;
      const stop = full.slice(boundary - 2, boundary + 2);
      const at = full.indexOf(stop);
      const r = run({ ...spec, stop: [stop] });
      expect(r.deltas.join("")).to.equal(full.slice(0, at));
      expect(r.done.finishReason).to.equal("stop");
      expect(r.done.usage.completionTokens).to.equal(tokenEnding(at + stop.length) + 1);
    });

    it("stops at the earliest of several stop strings", () => {
      const late = free.deltas[20];
      const early = free.deltas[8].slice(1, 3);
      const at = full.indexOf(early);
      const r = run({ ...spec, stop: [late, early] });
      expect(r.deltas.join("")).to.equal(full.slice(0, at));
      expect(r.done.usage.completionTokens).to.equal(tokenEnding(at + early.length) + 1);
    });

    it("never streams a partial stop string and sends the held-back text when it does not complete", () => {
      // A stop string that starts like token 3's text but continues differently: held back, then released.
      const stop = `${free.deltas[3]}\u0000`;
      const r = run({ ...spec, stop: [stop] });
      expect(r.deltas.join("")).to.equal(full);
      expect(r.done.finishReason).to.equal("length");
      expect(r.deltas.length).to.be.lessThan(free.deltas.length);
    });

    it("rejects more than four stop strings", () => {
      expect(() => run({ ...spec, stop: ["a", "b", "c", "d", "e"] })).to.throw(ReferenceGenerateError, "at most 4 stop strings");
    });
  });

  describe("tokenizer", () => {
    it("counts words, punctuation marks and whitespace runs", () => {
      expect(countTokens("Hello, world!  ok")).to.equal(7); // Hello , ␠ world ! ␠␠ ok
      expect(countTokens("")).to.equal(0);
      expect(countTokens("don't")).to.equal(1);
      expect(countTokens("潮汐 tide")).to.equal(3);
      expect(countTokens("a—b\n\nc")).to.equal(5); // a — b ⏎⏎ c
    });

    it("splits text into pieces that join back to it, one id per piece", () => {
      const text = "Écris  un haïku: la marée, 12:04!\n";
      const pieces = splitPieces(text);
      expect(pieces.join("")).to.equal(text);
      expect(tokenize(text)).to.have.length(pieces.length);
      expect(countTokens(text)).to.equal(pieces.length);
      for (const id of tokenize(text)) expect(id).to.be.within(SPECIAL_TOKENS, 4095);
      expect(tokenize("tide")).to.deep.equal(tokenize("tide")).and.not.deep.equal(tokenize("Tide"));
    });

    it("hashes pieces with FNV-1a then mix32 (known FNV-1a values)", () => {
      // FNV-1a 32-bit reference values: "a" → 0xe40c292c, "foobar" → 0xbf9cf968.
      expect(hashString("a")).to.equal(mix32(0xe40c292c));
      expect(hashString("foobar")).to.equal(mix32(0xbf9cf968));
      expect(mix32(0xbf9cf968)).to.equal(Number(bigMix(0xbf9cf968n)));
    });

    it("decodes every output id to a distinct pseudo-word and rejects other ids", () => {
      const words = new Set<string>();
      for (let k = 0; k < OUTPUT_VOCAB; k++) words.add(decodeToken(SPECIAL_TOKENS + k));
      expect(words.size).to.equal(OUTPUT_VOCAB);
      expect(() => decodeToken(SPECIAL_TOKENS - 1)).to.throw(RangeError);
      expect(() => decodeToken(SPECIAL_TOKENS + OUTPUT_VOCAB)).to.throw(RangeError);
    });
  });

  describe("chat template", () => {
    it("wraps each message in its role marker and an end marker, then asks the assistant", () => {
      const messages: ReferenceMessage[] = [
        { role: "system", content: "Be brief." },
        { role: "user", content: "Hi" },
      ];
      expect(applyChatTemplate(messages)).to.deep.equal([0, ...tokenize("Be brief."), 5, 1, ...tokenize("Hi"), 5, 2]);
      expect(countPromptTokens(messages)).to.equal(1 + (2 + 4) + (2 + 1));
    });
  });

  describe("embed", () => {
    it("returns hidden exact values in [-1, 1), deterministic, one per input", () => {
      const a = embed(["tide", "ebb"], small);
      expect(a.embeddings).to.have.length(2);
      for (const v of a.embeddings) {
        expect(v).to.have.length(small.hidden);
        for (const x of v) {
          expect(Number.isInteger(x * 2 ** 31)).to.equal(true);
          expect(x).to.be.within(-1, 1 - 2 ** -31);
        }
      }
      expect(a.embeddings[0]).to.not.deep.equal(a.embeddings[1]);
      expect(embed(["ebb"], small).embeddings[0]).to.deep.equal(a.embeddings[1]);
      expect(a.promptTokens).to.equal(2);
    });
  });

  describe("configuration", () => {
    it("rejects an unsupported network shape", () => {
      expect(() => complete({ messages: chatMsgs, maxTokens: 1, temperature: 0, config: { hidden: 7, layers: 1 } })).to.throw(
        ReferenceModelConfigError,
        "hidden=7",
      );
      expect(() => embed(["x"], { hidden: 16, layers: 0 })).to.throw(ReferenceModelConfigError, "layers=0");
    });

    it("rejects a temperature outside 0..2 and a negative maxTokens", () => {
      expect(() => complete({ messages: chatMsgs, maxTokens: 1, temperature: 2.5, config: small })).to.throw(
        ReferenceGenerateError,
        "temperature",
      );
      expect(() => complete({ messages: chatMsgs, maxTokens: -1, temperature: 0, config: small })).to.throw(
        ReferenceGenerateError,
        "maxTokens",
      );
    });
  });
});
