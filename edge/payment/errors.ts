// Why the edge refuses to serve a request for payment reasons. Each refusal is a PaymentError
// with an HTTP status (402, or 400 for a header that is not a voucher at all), a stable `code`
// the gateway can branch on, and, where signing a bigger voucher fixes it, `amountDue`: the
// cumulative amount the next voucher must reach.

import { TidewayError } from "../../lib/errors.ts";

/** Every payment refusal code, in the order the gate checks them. */
export const PAYMENT_ERROR_CODES = [
  "payment_required",
  "invalid_voucher",
  "voucher_wrong_edge",
  "session_unknown",
  "session_closed",
  "session_expired",
  "voucher_payer_mismatch",
  "session_model_mismatch",
  "voucher_expired",
  "voucher_unauthorized_signer",
  "insufficient_voucher",
  "escrow_insufficient",
  "budget_exhausted",
  "payment_unavailable",
] as const;

export type PaymentErrorCode = (typeof PAYMENT_ERROR_CODES)[number];

/** HTTP status of a refusal: 400 malformed header, 402 payment refused, 503 chain unreachable. */
export type PaymentErrorStatus = 400 | 402 | 503;

/**
 * A request the edge will not serve until the payer fixes its voucher, session or escrow.
 * `amountDue` (token units) is set when a voucher for at least that cumulative amount would be accepted.
 */
export class PaymentError extends TidewayError {
  override name = "PaymentError";
  readonly status: PaymentErrorStatus;
  declare readonly code: PaymentErrorCode;
  readonly amountDue: bigint | undefined;
  constructor(code: PaymentErrorCode, message: string, options: { amountDue?: bigint; status?: PaymentErrorStatus; cause?: unknown } = {}) {
    super(code, message, { cause: options.cause });
    this.status = options.status ?? (code === "invalid_voucher" ? 400 : code === "payment_unavailable" ? 503 : 402);
    this.amountDue = options.amountDue;
  }
}

/** Whether `error` is a {PaymentError} (across module copies too). */
export function isPaymentError(error: unknown): error is PaymentError {
  return error instanceof PaymentError || (error instanceof Error && error.name === "PaymentError" && "code" in error);
}
