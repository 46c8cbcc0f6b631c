// The reference model's tokenizer: text splits into words, single punctuation marks and
// whitespace runs; each piece maps to an id by a fixed 32-bit hash modulo the vocabulary. It is
// not a trained BPE (none is needed: the model is a deterministic stand-in), but it counts
// tokens the same way on every machine, which is what pricing and verification need.
// Output ids decode to pronounceable pseudo-words built from a fixed syllable table, so that
// streamed deltas are readable text.
import { hashString } from "./hash.ts";

/** Number of distinct token ids. Ids below SPECIAL_TOKENS are reserved for the chat template. */
export const VOCAB_SIZE = 4096;
/** Ids 0..SPECIAL_TOKENS-1 are role markers and the end marker; the hash never yields them. */
export const SPECIAL_TOKENS = 8;
/** Number of ids the model can emit: SPECIAL_TOKENS .. SPECIAL_TOKENS + OUTPUT_VOCAB - 1. */
export const OUTPUT_VOCAB = 256;

/**
 * Words (letters, digits, marks, joined by apostrophes), one punctuation mark, or a run of spaces.
 * The \p{...} classes follow the JS engine's Unicode version: characters assigned in a newer
 * Unicode release may split differently on an older Node, so edge and verifier should run the
 * same Node major (all text in the test vectors is from long-assigned ranges).
 */
const PIECE = /[\p{L}\p{N}\p{M}]+(?:['’][\p{L}\p{N}\p{M}]+)*|\s+|[^\s\p{L}\p{N}\p{M}]/gu;

/** Splits `text` into its pieces (one per token), in order; concatenating them gives `text` back. */
export function splitPieces(text: string): string[] {
  return text.match(PIECE) ?? [];
}

/** Token id of one piece: a hash into the non-reserved part of the vocabulary. */
export function pieceId(piece: string): number {
  return SPECIAL_TOKENS + (hashString(piece) % (VOCAB_SIZE - SPECIAL_TOKENS));
}

/** Token ids of `text`. */
export function tokenize(text: string): number[] {
  return splitPieces(text).map(pieceId);
}

/** Number of tokens in `text` as the reference model counts them (what prompts are priced by). */
export function countTokens(text: string): number {
  let n = 0;
  PIECE.lastIndex = 0;
  while (PIECE.exec(text) !== null) n++;
  return n;
}

const ONSETS = ["b", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "th"];
const NUCLEI = ["a", "e", "i", "o", "u", "ai", "ou", "ea"];

/** Decoded text of every output id, built once on first use (no work at import). */
let outputTable: string[] | undefined;
/** Output id of every output text without its leading space, built with outputTable. */
let outputIds: Map<string, number> | undefined;

function buildOutputTable(): string[] {
  const table: string[] = [];
  for (let k = 0; k < OUTPUT_VOCAB; k++) {
    // Bits of k choose 1–3 syllables; a few words end a clause, so long outputs read as sentences.
    const syllables = 1 + (k % 3);
    let word = "";
    let bits = k * 2654435761; // spreads k's bits over the syllable choices (exact: < 2^53)
    for (let s = 0; s < syllables; s++) {
      word += ONSETS[bits % 16] + NUCLEI[Math.floor(bits / 16) % 8];
      bits = Math.floor(bits / 128);
    }
    const end = k % 16 === 5 ? "." : k % 16 === 11 ? "," : "";
    table.push(` ${word}${end}`);
  }
  return table;
}

/**
 * Text of a generated token: a space and a pseudo-word (sometimes with a comma or full stop).
 * @param id an output id, SPECIAL_TOKENS <= id < SPECIAL_TOKENS + OUTPUT_VOCAB
 */
export function decodeToken(id: number): string {
  const k = id - SPECIAL_TOKENS;
  if (!Number.isInteger(k) || k < 0 || k >= OUTPUT_VOCAB) throw new RangeError(`token ${id} is not an output token of the reference model`);
  outputTable ??= buildOutputTable();
  return outputTable[k];
}

/**
 * Token ids of a text the model may have written itself: when `text` is a concatenation of
 * output tokens' texts, those output ids (the split is unique: every output text is one space and
 * a word no other output text has); otherwise tokenize(text). A partial answer sent back to be
 * continued thus gets the ids it was generated from, which tokenize() would not give (it splits
 * " word." into a space, a word and a mark, with other ids).
 */
export function tokenizeAnswer(text: string): number[] {
  if (text === "") return [];
  if (outputIds === undefined) {
    outputTable ??= buildOutputTable();
    outputIds = new Map(outputTable.map((t, k) => [t.slice(1), SPECIAL_TOKENS + k]));
  }
  if (text.startsWith(" ")) {
    const ids: number[] = [];
    for (const word of text.slice(1).split(" ")) {
      const id = outputIds.get(word);
      if (id === undefined) return tokenize(text);
      ids.push(id);
    }
    return ids;
  }
  return tokenize(text);
}
