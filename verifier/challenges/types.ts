// The shapes GPoW challenges travel in: what to challenge (ChallengeTarget, read from the chain),
// what to run (ChallengeSpec, planned per edge per epoch and carried in BullMQ job data, so
// JSON-serialisable: bigints as decimal strings), and what came of it (ChallengeResult, the
// input of scoring.ts). Also the errors a challenge run throws instead of returning a result.
//
// Erasable TypeScript only (runs under Node's type stripping).
import type { Address, Hex } from "viem";

import { TidewayError } from "../../lib/errors.ts";
import type { FaultKindName } from "../../lib/protocol/eip712.ts";

/** The model every edge keeps configured so that verifiers can recompute its answers bit for bit. */
export const REFERENCE_MODEL = "tideway/reference-1";

/** An edge as a challenge needs it (from the EdgeRegistry). */
export interface ChallengeTarget {
  edgeId: bigint;
  /** Base URL of its API, e.g. `https://edge.example.org` (no trailing `/v1`). */
  endpoint: string;
  /** Its registered signing key: receipts and usage roots must be signed by it. */
  signingKey: Address;
  /** Declared capacity, output tokens per second (registry profile). */
  capacity: number;
  /** Models it declares (registry profile). */
  models: readonly string[];
}

export type ChallengeKind = "inference" | "latency" | "capacity" | "audit";

/** A known-answer inference challenge: prompt, seed, temperature and max_tokens are drawn when it runs. */
export interface InferenceParams {
  /** Force streaming on or off; drawn at random when absent. */
  stream?: boolean;
}

export interface LatencyParams {
  /** Pass when the whole answer (a few tokens) arrives within this many milliseconds. */
  maxLatencyMs: number;
  stream?: boolean;
}

export interface CapacityParams {
  /** At most this many concurrent requests. */
  maxBurst: number;
  /** Pass when at least this fraction of the burst is served correctly within the deadline (e.g. 0.9). */
  minServed: number;
  /** Each request of the burst must be answered within this many milliseconds of the burst's start. */
  deadlineMs: number;
}

export interface AuditParams {
  /** The finished epoch whose usage log is audited (decimal). */
  auditEpoch: string;
  /**
   * Our challenge nonces of `auditEpoch` that the edge answered with a receipt: each must be in
   * the log. Usually left empty at planning time; the runner adds the receipts that
   * `ChallengeContext.receiptsFor` returns (which also give the hashes and tokens to compare).
   */
  nonces: Hex[];
  /** Random entries of the log opened with proofs, besides the nonces. */
  randomEntries: number;
}

interface SpecBase {
  /** The challenge id, 32 random bytes: also the request's `x-tideway-nonce`. */
  id: Hex;
  /** The epoch the challenge runs in (decimal string, JSON has no bigints). */
  epoch: string;
  /** The challenged edge (decimal string). */
  edgeId: string;
  /** When to run it, unix seconds. */
  at: number;
  /** The model the request names (audits: the reference model, unused). */
  model: string;
}

/** One planned challenge; JSON-serialisable (it travels in BullMQ job data). */
export type ChallengeSpec =
  | (SpecBase & { kind: "inference"; params: InferenceParams })
  | (SpecBase & { kind: "latency"; params: LatencyParams })
  | (SpecBase & { kind: "capacity"; params: CapacityParams })
  | (SpecBase & { kind: "audit"; params: AuditParams });

/** A ServiceReceipt as a challenge result keeps it (JSON-safe: bigints as decimal strings). */
export interface ReceiptJson {
  edgeId: string;
  epoch: string;
  nonce: Hex;
  requestHash: Hex;
  responseHash: Hex;
  promptTokens: number;
  completionTokens: number;
  signature: Hex;
}

export interface ChallengeFault {
  kind: FaultKindName;
  /** Self-contained where the fault can be proven (WrongAnswer: see evidence.ts). */
  evidence: unknown;
}

/** What one challenge found. JSON-serialisable. */
export interface ChallengeResult {
  id: Hex;
  epoch: string;
  edgeId: string;
  kind: ChallengeKind;
  outcome: "pass" | "fail";
  /** Whole answer time (inference, latency; capacity: median of the served requests). */
  latencyMs?: number;
  /** Time to the first byte of the answer's body. */
  ttfbMs?: number;
  /** What was checked, or why it failed. */
  detail: string;
  fault?: ChallengeFault;
  /** Capacity: requests answered correctly within the deadline / requests sent. */
  servedRatio?: number;
  /** Inference and latency: the edge's signed receipt, for the audit of its epoch's usage log. */
  receipt?: ReceiptJson;
}

/**
 * The edge did not answer usably (network error, timeout, 5xx, 429, a stream cut short): the
 * challenge should run again (BullMQ retries the job); after the last attempt,
 * {challengeFailedAfterRetries} turns it into a failure.
 */
export class RetryableChallengeError extends TidewayError {
  override name = "RetryableChallengeError";
  constructor(message: string, options?: { cause?: unknown }) {
    super("challenge_retryable", message, options);
  }
  readonly retryable = true;
}

/**
 * The challenge could not be judged for a reason on the verifier's side (its payment was
 * refused: session budget or escrow exhausted, a session unknown to the edge yet; its request
 * was refused as malformed). It says nothing about the edge: do not score it, fix the cause.
 * Not worth retrying at once (BullMQ: wrap it in an UnrecoverableError, or drop the job).
 */
export class ChallengeInconclusiveError extends TidewayError {
  override name = "ChallengeInconclusiveError";
  constructor(message: string, options?: { cause?: unknown }) {
    super("challenge_inconclusive", message, options);
  }
  readonly retryable = false;
}

/** The result of a challenge whose every attempt threw a {RetryableChallengeError}: failed, no fault. */
export function challengeFailedAfterRetries(spec: ChallengeSpec, lastError: unknown): ChallengeResult {
  const message = lastError instanceof Error ? lastError.message : String(lastError);
  return {
    id: spec.id,
    epoch: spec.epoch,
    edgeId: spec.edgeId,
    kind: spec.kind,
    outcome: "fail",
    detail: `no usable answer after retries: ${message}`,
  };
}
