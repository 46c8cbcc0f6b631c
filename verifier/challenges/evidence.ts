// Fault evidence. A WrongAnswer is provable by anyone from the evidence alone: the exact request
// bytes, the answer text received, and the edge's ServiceReceipt over both (its signature by the
// edge's registered key binds the answer to the edge). A peer verifier checks the signature and
// the hashes, recomputes the answer with the reference model, and co-signs the fault only if the
// edge's signed answer differs from the recomputation ({verifyWrongAnswerEvidence}).
//
// What makes a request recomputable (the edge's own rules, edge/serving/inference.ts and the
// reference backend): the reference model; string message contents; `n` absent or 1;
// `max_completion_tokens` or `max_tokens` present (the edge's default is not public); `temperature`
// in [0, 2] (absent: 1); a `seed` (needed unless the temperature rounds to 0); `stop` optional.
import { keccak256, stringToBytes } from "viem";
import type { Address, Hex, TypedDataDomain } from "viem";
import { z } from "zod";

import { chatResponseHash, requestHash } from "../../lib/protocol/edgeProofs.ts";
import type { ServiceReceipt } from "../../lib/protocol/edgeProofs.ts";
import { DEFAULT_MODEL_CONFIG, temperatureMilli } from "../../lib/reference-model/index.ts";
import type { GenerateSpec, ModelConfig, ReferenceMessage } from "../../lib/reference-model/index.ts";
import type { Recomputer } from "./recompute.ts";
import { edgeSignatures } from "./signatures.ts";
import { REFERENCE_MODEL } from "./types.ts";
import type { ReceiptJson } from "./types.ts";

/** Self-contained proof that an edge signed a wrong answer. JSON-serialisable. */
export interface WrongAnswerEvidence {
  kind: "WrongAnswer";
  edgeId: string;
  /** The exact request body sent (its keccak256 is the receipt's requestHash). */
  request: string;
  /** The completion text received (its keccak256 is the receipt's responseHash). */
  response: string;
  /** The edge's signed receipt. */
  receipt: ReceiptJson;
}

/** An audit's finding: what the edge committed to and what it failed to show. JSON-serialisable. */
export interface AuditFailureEvidence {
  kind: "AuditFailure";
  edgeId: string;
  /** The audited epoch. */
  epoch: string;
  /** The edge's signed usage commitment. */
  commitment: { root: Hex; count: string; signature: Hex };
  problem: string;
  /** Our receipt the log should contain, when the problem is about one. */
  receipt?: ReceiptJson;
  /** The entry index concerned. */
  index?: number;
  /** What the edge opened (entry and proof), when it opened something that does not check. */
  opened?: unknown;
}

const receiptJson = z.object({
  edgeId: z.string().regex(/^\d{1,78}$/),
  epoch: z.string().regex(/^\d{1,78}$/),
  nonce: z.string().regex(/^0x[0-9a-fA-F]{64}$/),
  requestHash: z.string().regex(/^0x[0-9a-fA-F]{64}$/),
  responseHash: z.string().regex(/^0x[0-9a-fA-F]{64}$/),
  promptTokens: z.number().int().min(0).max(0xffffffff),
  completionTokens: z.number().int().min(0).max(0xffffffff),
  signature: z.string().regex(/^0x[0-9a-fA-F]{130}$/),
});

const wrongAnswerEvidence = z.object({
  kind: z.literal("WrongAnswer"),
  edgeId: z.string().regex(/^\d{1,78}$/),
  request: z.string(),
  response: z.string(),
  receipt: receiptJson,
});

/** A ReceiptJson as the ServiceReceipt the edge signed. */
export function receiptOf(r: ReceiptJson): ServiceReceipt {
  return {
    edgeId: BigInt(r.edgeId),
    epoch: BigInt(r.epoch),
    nonce: r.nonce,
    requestHash: r.requestHash,
    responseHash: r.responseHash,
    promptTokens: r.promptTokens,
    completionTokens: r.completionTokens,
  };
}

const role = z.enum(["system", "developer", "user", "assistant", "tool"]);
const recomputableBody = z
  .object({
    model: z.string(),
    messages: z.array(z.object({ role, content: z.string() }).passthrough()).min(1),
    max_tokens: z.number().int().positive().nullish(),
    max_completion_tokens: z.number().int().positive().nullish(),
    temperature: z.number().min(0).max(2).nullish(),
    seed: z.number().int().nullish(),
    n: z.literal(1).nullish(),
    stop: z.union([z.string(), z.array(z.string()).max(4)]).nullish(),
    // An edge continues a partial answer with these (lib/openai/requests.ts): so must the recomputation.
    continue_final_message: z.boolean().optional(),
    add_generation_prompt: z.boolean().optional(),
  })
  .passthrough();

/**
 * The reference-model spec an edge computes for the request body `body`, or a reason it cannot
 * be recomputed.
 */
export function referenceSpecOf(
  body: string,
  options: { referenceModel?: string; referenceConfig?: ModelConfig } = {},
): { spec: GenerateSpec } | { problem: string } {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    return { problem: "the request is not JSON" };
  }
  const parsed = recomputableBody.safeParse(json);
  if (!parsed.success)
    return {
      problem: `the request is not recomputable: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`,
    };
  const b = parsed.data;
  const model = options.referenceModel ?? REFERENCE_MODEL;
  if (b.model !== model) return { problem: `the request is for ${b.model}, not the reference model ${model}` };
  const maxTokens = b.max_completion_tokens ?? b.max_tokens;
  if (maxTokens == null) return { problem: "the request sets no max_tokens (the edge's default is not public)" };
  const temperature = b.temperature ?? 1;
  if (b.seed == null && temperatureMilli(temperature) !== 0) return { problem: "the request sets no seed at a non-zero temperature" };
  if (b.seed != null && !Number.isSafeInteger(b.seed)) return { problem: "the seed is not a safe integer" };
  const messages: ReferenceMessage[] = b.messages.map((m) => ({ role: m.role, content: m.content }));
  return {
    spec: {
      messages,
      maxTokens,
      temperature,
      seed: b.seed ?? undefined,
      stop: b.stop == null ? undefined : Array.isArray(b.stop) ? b.stop : [b.stop],
      config: options.referenceConfig ?? DEFAULT_MODEL_CONFIG,
      addGenerationPrompt: b.add_generation_prompt,
      continueFinalMessage: b.continue_final_message,
    },
  };
}

export interface VerifyEvidenceOptions {
  referenceModel?: string;
  referenceConfig?: ModelConfig;
  /** The fault's edge: the evidence and its receipt must name it. */
  edgeId?: bigint;
  /** The fault's epoch: the receipt must be of it. */
  epoch?: bigint;
}

/**
 * Whether `evidence` proves a WrongAnswer by the edge whose registered signing key is
 * `edgeSigningKey`: the receipt is signed by that key in `edgeDomain`, covers exactly the request
 * and the response in the evidence, and the reference model's answer to that request differs
 * from the response (or from the token counts the edge signed). What a peer verifier runs before
 * co-signing the fault. False on anything malformed or unrecomputable.
 */
export async function verifyWrongAnswerEvidence(
  evidence: unknown,
  edgeSigningKey: Address,
  edgeDomain: TypedDataDomain,
  recompute: Recomputer,
  options: VerifyEvidenceOptions = {},
): Promise<boolean> {
  const parsed = wrongAnswerEvidence.safeParse(evidence);
  if (!parsed.success) return false;
  const e = parsed.data as WrongAnswerEvidence;
  const receipt = receiptOf(e.receipt);
  if (receipt.edgeId !== BigInt(e.edgeId)) return false;
  if (options.edgeId !== undefined && receipt.edgeId !== options.edgeId) return false;
  if (options.epoch !== undefined && receipt.epoch !== options.epoch) return false;
  if (requestHash(e.request).toLowerCase() !== receipt.requestHash.toLowerCase()) return false;
  if (chatResponseHash(e.response).toLowerCase() !== receipt.responseHash.toLowerCase()) return false;
  const signer = edgeSignatures(edgeDomain).receiptSigner(receipt, e.receipt.signature as Hex);
  if (signer === undefined || signer.toLowerCase() !== edgeSigningKey.toLowerCase()) return false;
  const spec = referenceSpecOf(e.request, options);
  if (!("spec" in spec)) return false;
  let expected: Awaited<ReturnType<typeof recompute.complete>>;
  try {
    expected = await recompute.complete(spec.spec);
  } catch {
    return false;
  }
  return (
    expected.text !== e.response || expected.promptTokens !== receipt.promptTokens || expected.completionTokens !== receipt.completionTokens
  );
}

/** `value` as JSON with object keys sorted at every level (one byte string per value). */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v === "bigint") return v.toString();
    if (v !== null && typeof v === "object" && !Array.isArray(v)) {
      return Object.fromEntries(
        Object.keys(v as object)
          .sort()
          .map((k) => [k, (v as Record<string, unknown>)[k]]),
      );
    }
    return v;
  });
}

/** keccak256 of the canonical JSON of `evidence`: the `evidenceHash` of an on-chain fault report. */
export function faultEvidenceHash(evidence: unknown): Hex {
  return keccak256(stringToBytes(canonicalJson(evidence)));
}
