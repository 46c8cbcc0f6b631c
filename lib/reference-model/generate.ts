// Generation and embeddings with the reference model, as pure functions of the request: the
// same spec gives the same bytes on every machine, so a verifier can recompute an edge's answer.
import { seedTo32, splitmix32 } from "./hash.ts";
import { initialState, modelWeights, pickToken, readout, step, DEFAULT_MODEL_CONFIG } from "./model.ts";
import type { ModelConfig } from "./model.ts";
import { applyChatTemplate, END_TOKEN } from "./template.ts";
import type { ReferenceMessage } from "./template.ts";
import { decodeToken, OUTPUT_VOCAB, tokenize, tokenizeAnswer } from "./tokenizer.ts";

/** Everything that determines a completion. */
export interface GenerateSpec {
  messages: readonly ReferenceMessage[];
  /** Tokens to generate unless a stop string appears first (0 allowed: nothing is generated). */
  maxTokens: number;
  /** 0 → deterministic argmax; up to 2 → more random picks, driven by `seed`. Rounded to 1/1000. */
  temperature: number;
  /** Sampling seed (any safe integer); absent means 0. Ignored at temperature 0. */
  seed?: number;
  /** Up to 4 strings; generation ends before the first occurrence of any (not included in the text). */
  stop?: readonly string[];
  /** Network shape; DEFAULT_MODEL_CONFIG when absent. */
  config?: ModelConfig;
  /** End the prompt with the assistant marker that asks for a new answer (default true). */
  addGenerationPrompt?: boolean;
  /**
   * Continue the last message, an assistant message, instead of answering it (default false;
   * needs addGenerationPrompt false). The output is then only the continuation.
   */
  continueFinalMessage?: boolean;
}

/** Token counts of a completion, as billed. */
export interface GenerateUsage {
  promptTokens: number;
  completionTokens: number;
}

/** One streamed piece of the answer. */
export interface GenerateDelta {
  type: "delta";
  text: string;
}

/** The last event of a completion. */
export interface GenerateDone {
  type: "done";
  /** "stop" when a stop string ended the text, "length" when maxTokens tokens were generated. */
  finishReason: "stop" | "length";
  usage: GenerateUsage;
  /** Multiply-adds the network did: prompt × layers × hidden² + per output token the head
   * (OUTPUT_VOCAB × hidden) and, for every output token but the last, one more step. */
  work: number;
}

/** What generate() yields: deltas, then exactly one done. */
export type GenerateEvent = GenerateDelta | GenerateDone;

/** Error thrown for a generation spec the model cannot run (what to fix is in the message). */
export class ReferenceGenerateError extends Error {
  override name = "ReferenceGenerateError";
}

/** Temperature in thousandths, the integer the sampler uses (exact: IEEE multiply and round). */
export function temperatureMilli(temperature: number): number {
  if (!Number.isFinite(temperature) || temperature < 0 || temperature > 2) {
    throw new ReferenceGenerateError(`temperature must be a number in 0..2, got ${temperature}`);
  }
  return Math.round(temperature * 1000);
}

/**
 * Where in `text` (from `from`) the first stop string starts, or -1. Also returns how much of
 * the tail must be held back because it could still become a stop string.
 */
function scanStops(text: string, from: number, stops: readonly string[]): { match: number; safeEnd: number } {
  let match = -1;
  for (const s of stops) {
    const i = text.indexOf(s, from);
    if (i !== -1 && (match === -1 || i < match)) match = i;
  }
  if (match !== -1) return { match, safeEnd: match };
  let safeEnd = text.length;
  for (const s of stops) {
    // The longest suffix of text that is a proper prefix of s must not be sent yet.
    for (let len = Math.min(s.length - 1, text.length - from); len > 0; len--) {
      if (text.endsWith(s.slice(0, len))) {
        safeEnd = Math.min(safeEnd, text.length - len);
        break;
      }
    }
  }
  return { match: -1, safeEnd };
}

/**
 * Generates a completion, yielding the text token by token (a token's text is held back only
 * while it could be the start of a stop string) and finally a `done` event. Stopping the
 * iteration early stops the work.
 *
 * Continuing (`continueFinalMessage`) is bit-exact by construction. Say the answer to `messages`
 * is the tokens t1..tn. Continuing messages + an assistant message with the text of t1..tk:
 * 1. the prompt is the answer's prompt (which ends with the assistant marker, the role marker of
 *    the open message) followed by t1..tk themselves, recovered from the text by tokenizeAnswer;
 *    stepping through it leaves the network where the answer was just before it picked t(k+1)
 *    (same states, same position);
 * 2. the sampler skips the k × OUTPUT_VOCAB numbers those k picks drew;
 * 3. the stop-string scan starts with the partial text as already sent, as the answer's scan
 *    had it when everything up to t1..tk had been streamed.
 * So with the same seed and temperature it picks t(k+1)..tn and ends for the same reason.
 * Content that is not a sequence of output tokens is tokenized as any text, and the sampler
 * still skips OUTPUT_VOCAB numbers per token of it: the rule is the same, only no earlier
 * answer had those tokens.
 */
export function* generate(spec: GenerateSpec): Generator<GenerateEvent, void, undefined> {
  const weights = modelWeights(spec.config ?? DEFAULT_MODEL_CONFIG);
  const temp = temperatureMilli(spec.temperature);
  if (!Number.isSafeInteger(spec.maxTokens) || spec.maxTokens < 0) {
    throw new ReferenceGenerateError(`maxTokens must be a non-negative integer, got ${spec.maxTokens}`);
  }
  const stops = (spec.stop ?? []).filter((s) => s.length > 0);
  if (stops.length > 4) throw new ReferenceGenerateError(`at most 4 stop strings are allowed, got ${stops.length}`);
  const continued = spec.continueFinalMessage === true;
  const options = { addGenerationPrompt: spec.addGenerationPrompt, continueFinalMessage: continued };
  const prompt = applyChatTemplate(spec.messages, options);
  const partial = continued ? spec.messages.at(-1)!.content : "";
  const answered = continued ? tokenizeAnswer(partial).length : 0;
  const rng = splitmix32(seedTo32(spec.seed ?? 0), answered * OUTPUT_VOCAB);

  const state = initialState(weights);
  for (const id of prompt) step(weights, state, id);

  let text = partial;
  let sent = partial.length;
  let completionTokens = 0;
  let finishReason: "stop" | "length" = "length";
  let previous = -1;
  while (completionTokens < spec.maxTokens) {
    // The previous output token is fed back only when another one is wanted: the last token
    // of an answer costs the head, not a step.
    if (previous !== -1) step(weights, state, previous);
    const token = pickToken(weights, state, temp, rng);
    previous = token;
    completionTokens++;
    text += decodeToken(token);
    const { match, safeEnd } = stops.length > 0 ? scanStops(text, sent, stops) : { match: -1, safeEnd: text.length };
    if (safeEnd > sent) {
      yield { type: "delta", text: text.slice(sent, safeEnd) };
      sent = safeEnd;
    }
    if (match !== -1) {
      finishReason = "stop";
      break;
    }
  }
  if (finishReason === "length" && sent < text.length) yield { type: "delta", text: text.slice(sent) };
  yield { type: "done", finishReason, usage: { promptTokens: prompt.length, completionTokens }, work: state.work };
}

/** Result of embedding some texts. */
export interface EmbedResult {
  /** One vector of `hidden` numbers per input, each an int32 / 2^31 (exact), in [-1, 1). */
  embeddings: number[][];
  /** Tokens of all inputs (the end marker each input is closed with is not billed). */
  promptTokens: number;
  /** Multiply-adds the network did. */
  work: number;
}

/**
 * Embeds each text: runs its tokens and an end marker through a fresh network and reads out
 * the last layer's state.
 */
export function embed(texts: readonly string[], config: ModelConfig = DEFAULT_MODEL_CONFIG): EmbedResult {
  const weights = modelWeights(config);
  const embeddings: number[][] = [];
  let promptTokens = 0;
  let work = 0;
  for (const text of texts) {
    const state = initialState(weights);
    const ids = tokenize(text);
    promptTokens += ids.length;
    for (const id of ids) step(weights, state, id);
    step(weights, state, END_TOKEN);
    embeddings.push(readout(weights, state));
    work += state.work;
  }
  return { embeddings, promptTokens, work };
}

/** Runs a completion to the end and returns its text and final event (what a verifier compares). */
export function complete(spec: GenerateSpec): { text: string; done: GenerateDone } {
  let text = "";
  for (const ev of generate(spec)) {
    if (ev.type === "delta") text += ev.text;
    else return { text, done: ev };
  }
  throw new ReferenceGenerateError("generation ended without a done event (internal error)");
}
