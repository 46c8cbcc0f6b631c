// What serving a request needs from the rest of the edge, as small structural interfaces: the
// payment gate (edge/payment), the usage log and receipt signer (edge/gpow), the epoch tracker.
// Serving code depends on these shapes only, so tests can run it with payment off and the HTTP
// layer never touches contracts or storage directly.
import type { Address, Hex } from "viem";

import type { UsageCommitment, UsageEntry } from "../../lib/protocol/edgeProofs.ts";

import type { Backend } from "../backends/types.ts";
import type { ModelConfig } from "../config.ts";

/** A request the payment gate let through; exactly one of settle/release must be called. */
export interface Admission {
  readonly payer: Address;
  readonly sessionId: bigint;
  /** Resolves once the paying voucher is on disk: no output may leave before (rejects with a PaymentError). */
  readonly durable: Promise<void>;
  /** The request was served at `actualCost` (≤ the reserved maximum). */
  settle(actualCost: bigint): void;
  /** Nothing was served: drop the reservation. */
  release(): void;
}

export interface PaymentGatePort {
  admit(input: { voucherHeader: string | undefined; model: string; maxCost: bigint }): Promise<Admission>;
}

export interface EpochsPort {
  current(): bigint;
}

export interface UsageEntryInput {
  nonce: Hex;
  sessionId: bigint;
  promptTokens: number;
  completionTokens: number;
  requestHash: Hex;
  responseHash: Hex;
}

export interface UsageLogPort {
  append(entry: UsageEntryInput): Promise<{ epoch: bigint; index: number }>;
}

export interface ReceiptFields {
  epoch: bigint;
  nonce: Hex;
  requestHash: Hex;
  responseHash: Hex;
  promptTokens: number;
  completionTokens: number;
}

export interface ReceiptSignerPort {
  sign(fields: ReceiptFields): Promise<ReceiptFields & { edgeId: bigint; signature: Hex }>;
}

/** A configured model and the backend serving it. */
export interface ServedModel {
  readonly config: ModelConfig;
  readonly backend: Backend;
}

/** The usage log as verifiers audit it (edge/gpow/usageLog.ts). */
export interface UsageAuditPort {
  commitment(epoch: bigint): Promise<UsageCommitment>;
  open(epoch: bigint, index: number): Promise<{ entry: UsageEntry; proof: readonly Hex[]; root: Hex }>;
  findNonce(epoch: bigint, nonce: Hex): Promise<number | undefined>;
}
