// Running one GPoW challenge against one edge. Every challenge request is an ordinary paid
// `/v1/chat/completions` request (a prompt from the generated pool, streaming or not, a `seed` and
// a `temperature` always set, a voucher from the challenge payer) that also carries the challenge
// id as `x-tideway-nonce`, so the answer comes with the edge's signed ServiceReceipt.
//
// - inference: 8–64 tokens of the reference model, recomputed (on the worker pool, while the
//   request is in flight) and compared byte for byte; the receipt must be signed by the edge's
//   registered key and cover our nonce, the exact body bytes sent, the text received and the
//   token counts. A valid receipt over a wrong answer is a WrongAnswer fault with self-contained
//   evidence (evidence.ts); a bad or missing receipt is a plain failure (a man in the middle could
//   cause that, so it proves nothing against the edge).
// - latency: a few tokens; passes when the whole answer arrives within `maxLatencyMs` (and is
//   right, when the model is the reference model).
// - capacity: a burst of concurrent short requests, as many as the declared capacity should
//   serve within the deadline (capacity tokens/s × deadline ÷ tokens per request), at most
//   `maxBurst`; the served ratio counts answers correct and on time; 429s and timeouts are not served.
// - audit: the edge's signed usage root of a finished epoch; every receipted challenge nonce of
//   that epoch must be in the log with the receipt's hashes and tokens, and random entries must
//   open with proofs against the root. Any mismatch is an AuditFailure fault.
//
// Network errors, timeouts, 5xx and 429 (and an audit asked before the edge closed the epoch)
// are thrown as RetryableChallengeError; problems on our side (payment refused, request refused
// as malformed) as ChallengeInconclusiveError. Everything else returns a ChallengeResult.
import { concat, keccak256, numberToHex } from "viem";
import type { Hex, TypedDataDomain } from "viem";
import { z } from "zod";

import { protocolUrl } from "../../lib/http/routes.ts";
import { chatResponseHash, processUsageProof, requestHash } from "../../lib/protocol/edgeProofs.ts";
import type { UsageEntry } from "../../lib/protocol/edgeProofs.ts";
import { countPromptTokens } from "../../lib/reference-model/index.ts";
import type { ModelConfig, ReferenceMessage } from "../../lib/reference-model/index.ts";
import { EdgeUnreachableError, exchangeChat } from "./client.ts";
import type { ChatExchange } from "./client.ts";
import { faultEvidenceHash, receiptOf, referenceSpecOf, verifyWrongAnswerEvidence } from "./evidence.ts";
import type { AuditFailureEvidence, WrongAnswerEvidence } from "./evidence.ts";
import { ModelNotServedError, PriceAboveCapError } from "./payer.ts";
import type { ChallengePayer } from "./payer.ts";
import { drawMessages } from "./prompts.ts";
import { cryptoRandom, randomBelow, randomInt, randomUint32 } from "./random.ts";
import type { RandomSource } from "./random.ts";
import type { RecomputedAnswer, Recomputer } from "./recompute.ts";
import { edgeSignatures } from "./signatures.ts";
import { ChallengeInconclusiveError, REFERENCE_MODEL, RetryableChallengeError } from "./types.ts";
import type { AuditParams, CapacityParams, ChallengeFault, ChallengeResult, ChallengeSpec, ChallengeTarget, ReceiptJson } from "./types.ts";

export { verifyWrongAnswerEvidence, faultEvidenceHash };

/** What running challenges needs besides the spec and the target. */
export interface ChallengeContext {
  /** Pays each request (a ChallengePayer, or a stand-in with the same `pay`). */
  payer: Pick<ChallengePayer, "pay">;
  recompute: Recomputer;
  /** `edgeDomain(chainId, registry)`: the domain of receipts and usage roots. */
  edgeDomain: TypedDataDomain;
  /** Default: the CSPRNG. */
  random?: RandomSource;
  /** Longest wait for one answer (inference, latency, audit requests); default 60 s. */
  requestTimeoutMs?: number;
  /** The recomputable model; default "tideway/reference-1". */
  referenceModel?: string;
  /** The reference model's shape; default DEFAULT_MODEL_CONFIG. */
  referenceConfig?: ModelConfig;
  /**
   * Audits: the receipts our challenges of (`edgeId`, `epoch`) received (from the results the
   * verifier stored). Each nonce must be found in the log with matching hashes and tokens.
   */
  receiptsFor?(edgeId: string, epoch: string): Promise<readonly ReceiptJson[]>;
}

const DEFAULT_TIMEOUT_MS = 60_000;

/** Runs `spec` against `target` (see the file comment). */
export async function runChallenge(spec: ChallengeSpec, target: ChallengeTarget, ctx: ChallengeContext): Promise<ChallengeResult> {
  if (BigInt(spec.edgeId) !== target.edgeId)
    throw new TypeError(`challenge ${spec.id} is for edge ${spec.edgeId}, the target is edge ${target.edgeId}`);
  switch (spec.kind) {
    case "inference":
      return runInference(spec, target, ctx, { short: false, stream: spec.params.stream });
    case "latency":
      return runInference(spec, target, ctx, { short: true, stream: spec.params.stream, maxLatencyMs: spec.params.maxLatencyMs });
    case "capacity":
      return runCapacity(spec, spec.params, target, ctx);
    case "audit":
      return runAudit(spec, spec.params, target, ctx);
    default:
      throw new TypeError(`unknown challenge kind ${(spec as { kind: string }).kind}`);
  }
}

// ---------------------------------------------------------------- one request

interface Drawn {
  messages: ReferenceMessage[];
  maxTokens: number;
  temperature: number;
  seed: number;
  stream: boolean;
}

/** A request as a dApp would send it: prompt, max_tokens, temperature (0 or random), seed. */
function drawRequest(random: RandomSource, options: { short: boolean; stream?: boolean }): Drawn {
  const messages = drawMessages(random, { short: options.short });
  const maxTokens = options.short ? randomInt(random, 2, 6) : randomInt(random, 8, 64);
  // Temperature 0 a third of the time, otherwise 0.01..1.50; both recompute exactly with the seed.
  const temperature = randomBelow(random, 3) === 0 ? 0 : randomInt(random, 1, 150) / 100;
  const seed = randomUint32(random);
  const stream = options.stream ?? randomBelow(random, 2) === 0;
  return { messages, maxTokens, temperature, seed, stream };
}

function bodyOf(model: string, d: Drawn): string {
  return JSON.stringify({
    model,
    messages: d.messages,
    max_tokens: d.maxTokens,
    temperature: d.temperature,
    seed: d.seed,
    ...(d.stream ? { stream: true, stream_options: { include_usage: true } } : {}),
  });
}

interface Sent {
  body: string;
  exchange: ChatExchange;
}

/** Pays and sends one request; maps statuses that are not the edge's answer to errors. */
async function send(
  target: ChallengeTarget,
  ctx: ChallengeContext,
  model: string,
  nonce: Hex,
  d: Drawn,
  options: { timeoutMs: number; signal?: AbortSignal },
): Promise<Sent | { failure: string }> {
  const body = bodyOf(model, d);
  let voucherHeader: string;
  try {
    ({ header: voucherHeader } = await ctx.payer.pay({
      edgeId: target.edgeId,
      endpoint: target.endpoint,
      model,
      promptTokens: countPromptTokens(d.messages),
      maxTokens: d.maxTokens,
    }));
  } catch (err) {
    if (err instanceof ModelNotServedError || err instanceof PriceAboveCapError) return { failure: err.message };
    throw err;
  }
  const exchange = await exchangeChat({
    endpoint: target.endpoint,
    body,
    nonce,
    voucherHeader,
    timeoutMs: options.timeoutMs,
    signal: options.signal,
  });
  if (exchange.status === 200) return { body, exchange };
  const code = exchange.error?.code ?? "";
  const message = `${exchange.status} ${code}: ${exchange.error?.message ?? ""}`.slice(0, 300);
  if (exchange.status === 402 || exchange.status === 400 || exchange.status === 413) {
    throw new ChallengeInconclusiveError(`the edge refused the challenge request on our side's account (${message})`);
  }
  return { failure: exchange.status === 404 ? `the edge does not serve ${model} (${message})` : `the edge answered ${message}` };
}

interface Judged {
  ok: boolean;
  detail: string;
  fault?: ChallengeFault;
  receipt?: ReceiptJson;
}

/**
 * Checks one answer: its receipt (signer, nonce, request and response hashes, edge, epoch,
 * tokens), then, when `expected` is given, the text and token counts against the recomputation.
 */
function judge(
  sent: Sent,
  nonce: Hex,
  spec: ChallengeSpec,
  target: ChallengeTarget,
  ctx: ChallengeContext,
  expected: RecomputedAnswer | undefined,
  maxTokens: number,
): Judged {
  const { exchange, body } = sent;
  const r = exchange.receipt;
  if (r === undefined) return { ok: false, detail: `no valid receipt: ${exchange.receiptProblem ?? "absent"}` };
  const problems: string[] = [];
  if (r.nonce.toLowerCase() !== nonce.toLowerCase()) problems.push(`receipt nonce ${r.nonce} is not the challenge's ${nonce}`);
  if (BigInt(r.edgeId) !== target.edgeId) problems.push(`receipt edge ${r.edgeId} is not ${target.edgeId}`);
  if (r.requestHash.toLowerCase() !== requestHash(body).toLowerCase()) problems.push("receipt requestHash does not cover the body sent");
  if (r.responseHash.toLowerCase() !== chatResponseHash(exchange.text).toLowerCase())
    problems.push("receipt responseHash does not cover the text received");
  const epoch = BigInt(spec.epoch);
  const re = BigInt(r.epoch);
  if (re + 1n < epoch || re > epoch + 1n) problems.push(`receipt epoch ${r.epoch} is far from the challenge's epoch ${spec.epoch}`);
  const signer = edgeSignatures(ctx.edgeDomain).receiptSigner(receiptOf(r), r.signature);
  if (signer === undefined || signer.toLowerCase() !== target.signingKey.toLowerCase())
    problems.push(`receipt signed by ${signer ?? "nobody (malformed signature)"}, not the edge's key ${target.signingKey}`);
  const u = exchange.usage;
  if (u === undefined) problems.push("the answer reports no usage");
  else if (u.promptTokens !== r.promptTokens || u.completionTokens !== r.completionTokens)
    problems.push(`usage ${u.promptTokens}/${u.completionTokens} differs from the receipt's ${r.promptTokens}/${r.completionTokens}`);
  if (problems.length > 0) return { ok: false, detail: `bad receipt: ${problems.join("; ")}` };
  // A model we cannot recompute: at least it must not bill past max_tokens (over-billing of the
  // reference model is caught below as a WrongAnswer: the recomputed counts differ).
  if (expected === undefined && r.completionTokens > maxTokens)
    return { ok: false, detail: `the edge signed ${r.completionTokens} completion tokens, above max_tokens ${maxTokens}`, receipt: r };

  if (expected !== undefined) {
    const wrong: string[] = [];
    if (expected.text !== exchange.text)
      wrong.push(
        `text differs from the recomputation (${JSON.stringify(exchange.text.slice(0, 40))} vs ${JSON.stringify(expected.text.slice(0, 40))})`,
      );
    if (expected.promptTokens !== r.promptTokens || expected.completionTokens !== r.completionTokens) {
      wrong.push(`signed tokens ${r.promptTokens}/${r.completionTokens}, recomputed ${expected.promptTokens}/${expected.completionTokens}`);
    }
    if (wrong.length > 0) {
      const evidence: WrongAnswerEvidence = {
        kind: "WrongAnswer",
        edgeId: target.edgeId.toString(),
        request: body,
        response: exchange.text,
        receipt: r,
      };
      return {
        ok: false,
        detail: `wrong answer under the edge's signature: ${wrong.join("; ")}`,
        fault: { kind: "WrongAnswer", evidence },
        receipt: r,
      };
    }
  }
  return { ok: true, detail: expected === undefined ? "receipt valid" : "answer equals the recomputation; receipt valid", receipt: r };
}

/** Starts the recomputation of `d` (or nothing for a model that cannot be recomputed). */
function recomputation(ctx: ChallengeContext, model: string, body: string): Promise<RecomputedAnswer> | undefined {
  if (model !== (ctx.referenceModel ?? REFERENCE_MODEL)) return undefined;
  const spec = referenceSpecOf(body, ctx);
  if (!("spec" in spec)) throw new TypeError(`internal: a challenge body is not recomputable: ${spec.problem}`);
  const p = ctx.recompute.complete(spec.spec);
  p.catch(() => {});
  return p;
}

// ---------------------------------------------------------------- inference and latency

async function runInference(
  spec: ChallengeSpec,
  target: ChallengeTarget,
  ctx: ChallengeContext,
  options: { short: boolean; stream?: boolean; maxLatencyMs?: number },
): Promise<ChallengeResult> {
  const random = ctx.random ?? cryptoRandom;
  const base = { id: spec.id, epoch: spec.epoch, edgeId: spec.edgeId, kind: spec.kind };
  const d = drawRequest(random, options);
  // The model works while the request is in flight.
  const expected = recomputation(ctx, spec.model, bodyOf(spec.model, d));
  const sent = await send(target, ctx, spec.model, spec.id, d, { timeoutMs: ctx.requestTimeoutMs ?? DEFAULT_TIMEOUT_MS });
  if ("failure" in sent) return { ...base, outcome: "fail", detail: sent.failure };
  const timing = { latencyMs: Math.round(sent.exchange.totalMs), ttfbMs: Math.round(sent.exchange.ttfbMs) };
  const judged = judge(sent, spec.id, spec, target, ctx, expected === undefined ? undefined : await expected, d.maxTokens);
  const result: ChallengeResult = { ...base, outcome: judged.ok ? "pass" : "fail", ...timing, detail: judged.detail };
  if (judged.fault !== undefined) result.fault = judged.fault;
  if (judged.receipt !== undefined) result.receipt = judged.receipt;
  if (judged.ok && options.maxLatencyMs !== undefined && timing.latencyMs > options.maxLatencyMs) {
    result.outcome = "fail";
    result.detail = `answered in ${timing.latencyMs} ms (first byte ${timing.ttfbMs} ms), above the ${options.maxLatencyMs} ms allowed; ${judged.detail}`;
  } else if (judged.ok) {
    result.detail = `${judged.detail}; ${d.stream ? "streamed" : "JSON"}, ${timing.latencyMs} ms (first byte ${timing.ttfbMs} ms)`;
  }
  return result;
}

// ---------------------------------------------------------------- capacity

/** Tokens one capacity request costs the edge at most (prompt + completion), as priced. */
const CAPACITY_TOKENS_ESTIMATE = 16;

/**
 * Requests in a burst: what the declared capacity (output tokens/s) should serve within the
 * deadline at about CAPACITY_TOKENS_ESTIMATE tokens each, at least 1, at most `maxBurst`.
 */
export function burstSize(capacity: number, params: Pick<CapacityParams, "maxBurst" | "deadlineMs">): number {
  const fits = Math.floor((Math.max(0, capacity) * params.deadlineMs) / 1000 / CAPACITY_TOKENS_ESTIMATE);
  return Math.max(1, Math.min(params.maxBurst, fits));
}

/** Per-request nonce of a burst: keccak256(challenge id ‖ uint32 index). */
export function burstNonce(id: Hex, index: number): Hex {
  return keccak256(concat([id, numberToHex(index, { size: 4 })]));
}

async function runCapacity(
  spec: ChallengeSpec,
  params: CapacityParams,
  target: ChallengeTarget,
  ctx: ChallengeContext,
): Promise<ChallengeResult> {
  const random = ctx.random ?? cryptoRandom;
  const base = { id: spec.id, epoch: spec.epoch, edgeId: spec.edgeId, kind: spec.kind };
  const n = burstSize(target.capacity, params);
  const deadline = new AbortController();
  const started = performance.now();
  const timer = setTimeout(() => deadline.abort(new Error(`capacity deadline of ${params.deadlineMs} ms`)), params.deadlineMs);
  type Outcome = { served: true; ms: number } | { served: false; why: string; unreachable?: boolean; fault?: ChallengeFault };
  const one = async (i: number): Promise<Outcome> => {
    const d = drawRequest(random, { short: true });
    const nonce = burstNonce(spec.id, i);
    const expected = recomputation(ctx, spec.model, bodyOf(spec.model, d));
    let sent: Sent | { failure: string };
    try {
      sent = await send(target, ctx, spec.model, nonce, d, { timeoutMs: params.deadlineMs, signal: deadline.signal });
    } catch (err) {
      if (err instanceof EdgeUnreachableError) return { served: false, why: err.message, unreachable: true };
      if (err instanceof RetryableChallengeError) return { served: false, why: err.message };
      throw err;
    }
    if ("failure" in sent) return { served: false, why: sent.failure };
    const ms = performance.now() - started;
    const judged = judge(sent, nonce, spec, target, ctx, expected === undefined ? undefined : await expected, d.maxTokens);
    if (!judged.ok) return { served: false, why: judged.detail, fault: judged.fault };
    if (ms > params.deadlineMs) return { served: false, why: `answered after the deadline (${Math.round(ms)} ms)` };
    return { served: true, ms };
  };
  let outcomes: Outcome[];
  try {
    outcomes = await Promise.all(Array.from({ length: n }, (_, i) => one(i)));
  } finally {
    clearTimeout(timer);
  }
  const unreachable = outcomes.filter((o) => !o.served && o.unreachable === true);
  if (unreachable.length === n)
    throw new EdgeUnreachableError(`no request of the burst reached the edge: ${(unreachable[0] as { why: string }).why}`);
  const served = outcomes.filter((o): o is { served: true; ms: number } => o.served);
  const servedRatio = served.length / n;
  const ms = served.map((o) => o.ms).sort((a, b) => a - b);
  const latencyMs = ms.length === 0 ? undefined : Math.round(ms[Math.floor((ms.length - 1) / 2)]!);
  const reasons = new Map<string, number>();
  for (const o of outcomes) if (!o.served) reasons.set(o.why.slice(0, 120), (reasons.get(o.why.slice(0, 120)) ?? 0) + 1);
  const why = [...reasons].map(([w, c]) => `${c}× ${w}`).join("; ");
  const fault = outcomes.find((o): o is Extract<Outcome, { served: false }> => !o.served && o.fault !== undefined)?.fault;
  const pass = fault === undefined && servedRatio >= params.minServed;
  const result: ChallengeResult = {
    ...base,
    outcome: pass ? "pass" : "fail",
    servedRatio,
    detail: `served ${served.length}/${n} correctly within ${params.deadlineMs} ms (need ${params.minServed})${why === "" ? "" : `; not served: ${why}`}`,
  };
  if (latencyMs !== undefined) result.latencyMs = latencyMs;
  if (fault !== undefined) result.fault = fault;
  return result;
}

// ---------------------------------------------------------------- audit

const hex32 = z
  .string()
  .regex(/^0x[0-9a-fA-F]{64}$/)
  .transform((s) => s.toLowerCase() as Hex);
const decimal = z.union([z.string().regex(/^\d{1,78}$/), z.number().int().nonnegative()]).transform((v) => BigInt(v));
const CommitmentWire = z.object({
  edge_id: decimal,
  epoch: decimal,
  root: hex32,
  count: decimal,
  signature: z
    .string()
    .regex(/^0x[0-9a-fA-F]{130}$/)
    .transform((s) => s as Hex),
});
const OpenedWire = z.object({
  entry: z.object({
    epoch: decimal,
    index: decimal,
    nonce: hex32,
    sessionId: decimal,
    promptTokens: z.number().int().min(0).max(0xffffffff),
    completionTokens: z.number().int().min(0).max(0xffffffff),
    requestHash: hex32,
    responseHash: hex32,
  }),
  proof: z.array(hex32).max(64),
  root: hex32,
});

/** GETs `url`: JSON and status; transport failures, 5xx and 429 are retryable. */
// biome-ignore lint/suspicious/noExplicitAny: an edge's untrusted JSON; callers check every field they read
type UntrustedJson = any;

async function getJson(url: string, timeoutMs: number): Promise<{ status: number; json: UntrustedJson }> {
  let res: Response;
  let text: string;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    text = await res.text();
  } catch (err) {
    throw new RetryableChallengeError(`GET ${url}: ${(err as Error).message}`, { cause: err });
  }
  if (res.status >= 500 || res.status === 429)
    throw new RetryableChallengeError(`GET ${url} answered ${res.status}: ${text.slice(0, 200)}`);
  let json: UntrustedJson;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, json };
}

async function runAudit(
  spec: ChallengeSpec,
  params: AuditParams,
  target: ChallengeTarget,
  ctx: ChallengeContext,
): Promise<ChallengeResult> {
  const random = ctx.random ?? cryptoRandom;
  const base = { id: spec.id, epoch: spec.epoch, edgeId: spec.edgeId, kind: spec.kind };
  const timeoutMs = ctx.requestTimeoutMs ?? DEFAULT_TIMEOUT_MS;
  const E = BigInt(params.auditEpoch);
  const root = protocolUrl(target.endpoint, `usage/${E}`);
  const fail = (detail: string): ChallengeResult => ({ ...base, outcome: "fail", detail: `audit of epoch ${E}: ${detail}` });

  const got = await getJson(root, timeoutMs);
  if (got.status === 409)
    throw new RetryableChallengeError(`the edge has not closed epoch ${E} yet (${got.json?.error?.message ?? "409"})`);
  if (got.status !== 200) return fail(`no usage commitment (${got.status} ${got.json?.error?.code ?? ""})`);
  const c = CommitmentWire.safeParse(got.json);
  if (!c.success) return fail(`malformed usage commitment: ${c.error.issues[0]?.message}`);
  const commitment = { edgeId: c.data.edge_id, epoch: c.data.epoch, root: c.data.root, count: c.data.count, signature: c.data.signature };
  if (commitment.edgeId !== target.edgeId || commitment.epoch !== E)
    return fail(`the commitment is for edge ${commitment.edgeId} epoch ${commitment.epoch}`);
  const signer = edgeSignatures(ctx.edgeDomain).usageRootSigner(commitment);
  if (signer === undefined || signer.toLowerCase() !== target.signingKey.toLowerCase()) {
    // Unsigned by the edge: proves nothing against it (anyone on the path could send this).
    return fail(`usage root signed by ${signer ?? "nobody (malformed signature)"}, not the edge's key ${target.signingKey}`);
  }
  const committed = { root: commitment.root, count: commitment.count.toString(), signature: commitment.signature };
  const auditFailure = (problem: string, extra: Partial<AuditFailureEvidence> = {}): ChallengeResult => {
    const evidence: AuditFailureEvidence = {
      kind: "AuditFailure",
      edgeId: target.edgeId.toString(),
      epoch: E.toString(),
      commitment: committed,
      problem,
      ...extra,
    };
    return { ...fail(problem), fault: { kind: "AuditFailure", evidence } };
  };

  // Our receipted challenges of epoch E: each must be in the log.
  const byNonce = new Map<string, ReceiptJson | undefined>();
  for (const n of params.nonces) byNonce.set(n.toLowerCase(), undefined);
  for (const r of (await ctx.receiptsFor?.(spec.edgeId, E.toString())) ?? []) {
    if (BigInt(r.epoch) === E && BigInt(r.edgeId) === target.edgeId) byNonce.set(r.nonce.toLowerCase(), r);
  }

  /** Opens entry `index`; an AuditFailure result if it does not check, else the entry. */
  const open = async (index: number, receipt?: ReceiptJson): Promise<UsageEntry | ChallengeResult> => {
    const opened = await getJson(`${root}/entries/${index}`, timeoutMs);
    if (opened.status === 409) throw new RetryableChallengeError(`the edge has not closed epoch ${E} yet`);
    if (opened.status !== 200)
      return auditFailure(
        `entry ${index} (of ${commitment.count} committed) could not be opened: ${opened.status} ${opened.json?.error?.code ?? ""}`,
        { index, receipt },
      );
    const o = OpenedWire.safeParse(opened.json);
    if (!o.success)
      return auditFailure(`entry ${index} opened malformed: ${o.error.issues[0]?.path.join(".")}: ${o.error.issues[0]?.message}`, {
        index,
        receipt,
        opened: opened.json,
      });
    const entry: UsageEntry = o.data.entry;
    const problems: string[] = [];
    if (o.data.root !== commitment.root) problems.push("opened against another root");
    if (entry.index !== BigInt(index)) problems.push(`entry says index ${entry.index}`);
    if (entry.epoch !== E) problems.push(`entry says epoch ${entry.epoch}`);
    if (processUsageProof(entry, o.data.proof).toLowerCase() !== commitment.root)
      problems.push("its proof does not lead to the committed root");
    if (receipt !== undefined) {
      if (entry.nonce !== receipt.nonce.toLowerCase()) problems.push(`entry nonce ${entry.nonce} is not the receipt's`);
      if (entry.requestHash !== receipt.requestHash.toLowerCase()) problems.push("entry requestHash differs from the receipt's");
      if (entry.responseHash !== receipt.responseHash.toLowerCase()) problems.push("entry responseHash differs from the receipt's");
      if (entry.promptTokens !== receipt.promptTokens || entry.completionTokens !== receipt.completionTokens)
        problems.push(
          `entry tokens ${entry.promptTokens}/${entry.completionTokens}, receipt ${receipt.promptTokens}/${receipt.completionTokens}`,
        );
    }
    if (problems.length > 0) return auditFailure(`entry ${index}: ${problems.join("; ")}`, { index, receipt, opened: opened.json });
    return entry;
  };

  let checkedNonces = 0;
  for (const [nonce, receipt] of byNonce) {
    if (commitment.count === 0n)
      return auditFailure(`the log is committed empty, but challenge ${nonce} was answered in epoch ${E}`, { receipt });
    const found = await getJson(`${root}/nonces/${nonce}`, timeoutMs);
    if (found.status === 409) throw new RetryableChallengeError(`the edge has not closed epoch ${E} yet`);
    const index = found.json?.index;
    if (found.status !== 200 || !Number.isInteger(index) || index < 0 || BigInt(index) >= commitment.count) {
      return auditFailure(
        `challenge ${nonce}, answered in epoch ${E}, is not in the log (${found.status} ${found.json?.error?.code ?? JSON.stringify(found.json)?.slice(0, 80)})`,
        { receipt },
      );
    }
    const entry = await open(index, receipt);
    if (!("nonce" in entry)) return entry;
    if (entry.nonce !== nonce)
      return auditFailure(`challenge ${nonce} is said to be entry ${index}, which carries nonce ${entry.nonce}`, { receipt, index });
    checkedNonces++;
  }

  // Random entries, drawn only now that the root is fixed.
  const count = commitment.count;
  const k = Number(count < BigInt(params.randomEntries) ? count : BigInt(params.randomEntries));
  const drawn = new Set<number>();
  while (drawn.size < k) drawn.add(randomBelow(random, Number(count > 0xffffffffn ? 0xffffffffn : count)));
  for (const index of [...drawn].sort((a, b) => a - b)) {
    const entry = await open(index);
    if (!("nonce" in entry)) return entry;
  }
  return {
    ...base,
    outcome: "pass",
    detail: `audit of epoch ${E}: root signed over ${count} entries; ${checkedNonces} challenge receipts found and matching; ${drawn.size} random entries opened with valid proofs`,
  };
}
