// The reference model: a small recurrent integer network. Each token is embedded by hashing
// (token id, position) into a vector, passes through `layers` recurrent layers of width
// `hidden` (a dense hidden × hidden integer matrix each, so a token costs layers × hidden²
// multiply-adds), and the last layer's state feeds an output head over OUTPUT_VOCAB words.
// Weights come from a fixed seed through splitmix32: there are no weight files.
//
// Bit-exactness across machines: every value in the state is a small integer. Products of a
// weight (|w| < 2^6) and an activation (|x| < 2^11) summed over at most 2^10 inputs stay below
// 2^27, so plain JS arithmetic on them is exact integer arithmetic (no rounding can occur), and
// the nonlinearity is a triangle fold done with & and -, not a float function.
import { hash2, mix32, splitmix32 } from "./hash.ts";
import { OUTPUT_VOCAB, SPECIAL_TOKENS } from "./tokenizer.ts";

/** Shape of the network. */
export interface ModelConfig {
  /** Width of every layer (8..1024). */
  hidden: number;
  /** Number of recurrent layers (1..64). */
  layers: number;
}

/**
 * Default shape: a short completion (≈10 prompt tokens, 16 output tokens) costs about 2 ms of
 * one CPU core on the development machine (see bench/model.ts and bench/results/model.json).
 */
export const DEFAULT_MODEL_CONFIG: Readonly<ModelConfig> = { hidden: 128, layers: 4 };

/** The seed every weight derives from: changing it changes every answer, so it is frozen. */
export const WEIGHT_SEED = 0x7de3a1;

/** Half-range of activations: states live in [-ACT, ACT). */
const ACT = 2048;

/** Error thrown for a model shape outside the supported range. */
export class ReferenceModelConfigError extends Error {
  override name = "ReferenceModelConfigError";
  constructor(config: ModelConfig) {
    super(
      `reference model shape hidden=${config.hidden} layers=${config.layers} is unsupported: hidden must be an integer in 8..1024 and layers in 1..64`,
    );
  }
}

/** Weights of one network shape. */
export interface ModelWeights {
  readonly hidden: number;
  readonly layers: number;
  /** layers matrices, row-major hidden × hidden, entries in [-64, 64). */
  readonly layer: readonly Int32Array[];
  /** Output head, row-major OUTPUT_VOCAB × hidden, entries in [-64, 64). */
  readonly head: Int32Array;
  /** Right shift that brings a layer's sum back to activation scale (≈ 6 + log2(hidden) / 2). */
  readonly shift: number;
}

const weightCache = new Map<string, ModelWeights>();

/**
 * Weights of the network of shape `config`, derived from WEIGHT_SEED (cached per shape: the
 * derivation costs about as much as one token of prefill per layer).
 */
export function modelWeights(config: ModelConfig): ModelWeights {
  const { hidden, layers } = config;
  if (!Number.isInteger(hidden) || hidden < 8 || hidden > 1024 || !Number.isInteger(layers) || layers < 1 || layers > 64) {
    throw new ReferenceModelConfigError(config);
  }
  const key = `${hidden}:${layers}`;
  const cached = weightCache.get(key);
  if (cached !== undefined) return cached;
  const rng = splitmix32(hash2(WEIGHT_SEED, hash2(hidden, layers)));
  const fill = (a: Int32Array): Int32Array => {
    for (let i = 0; i < a.length; i++) a[i] = (rng.next() >>> 25) - 64;
    return a;
  };
  const layer: Int32Array[] = [];
  for (let l = 0; l < layers; l++) layer.push(fill(new Int32Array(hidden * hidden)));
  const head = fill(new Int32Array(OUTPUT_VOCAB * hidden));
  const log2 = 31 - Math.clz32(hidden);
  const weights = { hidden, layers, layer, head, shift: 6 + (log2 >> 1) };
  weightCache.set(key, weights);
  return weights;
}

/** Recurrent state of one sequence: the state of every layer, plus the position. */
export interface ModelState {
  readonly h: Int32Array[];
  /** Scratch input vector of the layer being computed. */
  readonly x: Int32Array;
  position: number;
  /** Multiply-adds done so far (the model's own cost counter). */
  work: number;
}

/** A fresh (all-zero) state for `weights`. */
export function initialState(weights: ModelWeights): ModelState {
  const h: Int32Array[] = [];
  for (let l = 0; l < weights.layers; l++) h.push(new Int32Array(weights.hidden));
  return { h, x: new Int32Array(weights.hidden), position: 0, work: 0 };
}

/** Folds v into [-ACT, ACT) like a triangle wave: nonlinear, never saturates. */
function fold(v: number): number {
  let u = (v + ACT) & (4 * ACT - 1);
  if (u >= 2 * ACT) u = 4 * ACT - 1 - u;
  return u - ACT;
}

/** Feeds one token through every layer, updating `state` in place. */
export function step(weights: ModelWeights, state: ModelState, token: number): void {
  const H = weights.hidden;
  const x = state.x;
  const posKey = Math.imul(state.position + 1, 0x632be5ab);
  for (let j = 0; j < H; j++) x[j] = (mix32(hash2(token, j) + posKey) >>> 20) - ACT;
  const shift = weights.shift;
  for (let l = 0; l < weights.layers; l++) {
    const w = weights.layer[l];
    const h = state.h[l];
    for (let i = 0; i < H; i++) {
      let acc = 0;
      const row = i * H;
      for (let j = 0; j < H; j++) acc += w[row + j] * x[j];
      // Recurrence: half of the previous state carries over, so earlier tokens keep mattering.
      h[i] = fold((acc >> shift) + (h[i] >> 1));
    }
    x.set(h);
  }
  state.position++;
  state.work += weights.layers * H * H;
}

/**
 * Picks the next output token from the last layer's state. With `temperatureMilli` 0 it is the
 * head's argmax (lowest index on ties); otherwise each score gets uniform noise from `rng`
 * scaled by the temperature, so higher temperatures pick more freely.
 */
export function pickToken(weights: ModelWeights, state: ModelState, temperatureMilli: number, rng: { next(): number }): number {
  const H = weights.hidden;
  const h = state.h[weights.layers - 1];
  const head = weights.head;
  let best = 0;
  let bestScore = -Infinity;
  for (let k = 0; k < OUTPUT_VOCAB; k++) {
    let acc = 0;
    const row = k * H;
    for (let j = 0; j < H; j++) acc += head[row + j] * h[j];
    let score = acc >> 8;
    if (temperatureMilli > 0) score += Math.imul(rng.next() >>> 20, temperatureMilli) >> 10;
    if (score > bestScore) {
      bestScore = score;
      best = k;
    }
  }
  state.work += OUTPUT_VOCAB * H;
  return SPECIAL_TOKENS + best;
}

/** The last layer's state as floats: each an int32 (state × 2^20) divided by 2^31, exact, in [-1, 1). */
export function readout(weights: ModelWeights, state: ModelState): number[] {
  const h = state.h[weights.layers - 1];
  const out: number[] = new Array(weights.hidden);
  for (let j = 0; j < weights.hidden; j++) out[j] = (h[j] << 20) / 2147483648;
  return out;
}
