// What a 402 tells a payer, the same from the edge and the router: the amount in the token's
// smallest unit (wei) and in EDGE, what to do before retrying, and where the payment flow is
// documented. Refusal codes are the edge's (edge/payment/errors.ts) and the router's
// (router/dispatch/admission.ts); a code without a step here gets the docs alone.
import { formatTokensExact, TOKEN_SYMBOL } from "../protocol/units.ts";

/** Where each side's payment flow is documented, in the repository. */
export const PAYMENT_DOCS = {
  edge: "edge/README.md#paying-vouchers",
  router: "router/README.md#for-dapp-developers",
} as const;

/** What the payer must do first, by refusal code. */
const NEXT_STEP: Record<string, string> = {
  payment_required: "send a voucher in the x-tideway-voucher header for at least amount_due",
  insufficient_voucher: "sign a voucher whose cumulativeAmount is at least amount_due",
  voucher_expired: "sign a fresh voucher with a later expiry",
  voucher_unauthorized_signer: "authorize the voucher's signer with ComputeMarket.authorizeSigner, or sign as the payer",
  voucher_wrong_edge: "sign the voucher for this edge's id",
  voucher_payer_mismatch: "sign the voucher for the session's payer",
  session_unknown: "open a session with ComputeMarket.openSession and put its id in the voucher",
  session_closed: "open a new session with ComputeMarket.openSession",
  session_expired: "open a new session with ComputeMarket.openSession",
  session_model_mismatch: "open a session for this model",
  budget_exhausted: "open a new session with a larger budget",
  escrow_insufficient: "deposit at least amount_due more with ComputeMarket.deposit",
  router_not_authorized: "authorize the router's voucher key with ComputeMarket.authorizeSigner",
  spend_limit_reached: "ask the router's operator to raise the tenant's spend limit, or wait for it to reset",
  session_unavailable: "check the payer's escrow and authorization, then retry",
};

/**
 * The fields a 402 carries besides its code and message: `amount_due` (wei, as the edge's header
 * `x-tideway-amount-due` has it) with `amount_due_tokens` when an amount fixes it, the `token`,
 * the `next_step` and the `docs`.
 */
export function paymentRefusalDetails(code: string, side: keyof typeof PAYMENT_DOCS, amountDueWei?: bigint): Record<string, string> {
  const step = NEXT_STEP[code];
  return {
    token: TOKEN_SYMBOL,
    ...(amountDueWei === undefined ? {} : { amount_due: amountDueWei.toString(), amount_due_tokens: formatTokensExact(amountDueWei) }),
    ...(step === undefined ? {} : { next_step: step }),
    docs: PAYMENT_DOCS[side],
  };
}
