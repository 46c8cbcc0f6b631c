// What serving a request needs from the rest of the edge: the narrow slices of the payment gate
// (edge/payment), the usage log and receipt signer (edge/gpow) and the epoch tracker that it
// calls, taken from those modules' own types so that there is one definition of each. Serving
// code depends on these slices only, so tests can run it with payment off and the HTTP layer
// never touches contracts or storage directly.
import type { Backend } from "../backends/types.ts";
import type { ModelConfig } from "../config.ts";
import type { EpochTracker } from "../gpow/epochs.ts";
import type { ReceiptSigner } from "../gpow/receipts.ts";
import type { UsageLog } from "../gpow/usageLog.ts";
import type { Admission, PaymentGate } from "../payment/gate.ts";

export type { Admission };
export type PaymentGatePort = Pick<PaymentGate, "admit">;
export type EpochsPort = Pick<EpochTracker, "current">;
export type UsageLogPort = Pick<UsageLog, "append">;
export type ReceiptSignerPort = ReceiptSigner;
/** The usage log as verifiers audit it. */
export type UsageAuditPort = Pick<UsageLog, "commitment" | "open" | "findNonce">;

/** A configured model and the backend serving it. */
export interface ServedModel {
  readonly config: ModelConfig;
  readonly backend: Backend;
}
