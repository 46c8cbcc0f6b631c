// The sender's errors, and how errors from the node are told apart: a revert is an answer (thrown
// to the caller at once, decoded by lib/protocol/revert.ts against the protocol's ABIs), a "known transaction / nonce used"
// broadcast answer is benign (receipts and the nonce tell what happened), anything else is an RPC
// failure that the driver retries.
import { BaseError } from "viem";
import type { Hex } from "viem";

import { TidewayError } from "../../../lib/errors.ts";
import type { DecodedRevert } from "../../../lib/protocol/revert.ts";

/** Base class of the sender's errors. */
export class TxSenderError extends TidewayError {
  override name = "TxSenderError";
  constructor(message: string, options?: { cause?: unknown; code?: string }) {
    super(options?.code ?? "tx_sender_error", message, options);
  }
}

/** The transaction would revert (gas estimation reverted): nothing was signed, no nonce consumed. */
export class TxWouldRevertError extends TxSenderError {
  override name = "TxWouldRevertError";
  readonly key: string;
  /** Decoded reason, e.g. `ERC20InsufficientBalance(sender=0x…, balance=1, needed=2)`. */
  readonly reason: string;
  /** Custom error name (`Error` for require strings, `Panic`), or undefined when not decodable. */
  readonly errorName: string | undefined;
  readonly args: readonly unknown[];
  /** Raw revert data, when the node returned it. */
  readonly data: Hex | undefined;
  constructor(key: string, decoded: DecodedRevert, options?: { cause?: unknown }) {
    super(`transaction "${key}" would revert: ${decoded.message}`, { ...options, code: "tx_would_revert" });
    this.key = key;
    this.reason = decoded.message;
    this.errorName = decoded.name;
    this.args = decoded.args.map((a) => a.value);
    this.data = decoded.data;
  }
}

/** RPC (or a callback) failed continuously for `rpcRetryMs`; any record is kept for a later resume. */
export class TxSenderRpcError extends TxSenderError {
  override name = "TxSenderRpcError";
  readonly op: string;
  constructor(op: string, cause: unknown) {
    super(`${op} kept failing: ${errorText(cause)}`, { cause, code: "tx_rpc_unavailable" });
    this.op = op;
  }
}

/** The sender was closed while the send was in progress. */
export class TxSenderClosedError extends TxSenderError {
  override name = "TxSenderClosedError";
  constructor(message: string) {
    super(message, { code: "tx_sender_closed" });
  }
}

export function errorText(err: unknown): string {
  if (err instanceof BaseError) return err.shortMessage;
  if (err instanceof Error) return err.message;
  return String(err);
}

/** Every error in the `cause` chain, outermost first. */
export function causes(err: unknown): unknown[] {
  const out: unknown[] = [];
  let current: unknown = err;
  while (current !== undefined && current !== null && out.length < 16 && !out.includes(current)) {
    out.push(current);
    current = (current as { cause?: unknown }).cause;
  }
  return out;
}

/**
 * Broadcast answers that mean "the node already has this nonce settled or pending": the
 * transaction (or one of its replacements) is known, the nonce was used, or a transaction with
 * this nonce and higher fees is pending. None is a failure: the receipts and the account's nonce
 * tell what happened.
 */
const BENIGN_BROADCAST =
  /already known|known transaction|already imported|already in (the )?(mempool|pool)|transaction already exists|nonce too low|nonce.*(lower|less) than|replacement transaction underpriced|underpriced replacement|replacement.*underpriced/i;

export function isBenignBroadcastError(err: unknown): boolean {
  return causes(err).some((e) => {
    const texts = [(e as { details?: unknown }).details, (e as { message?: unknown }).message];
    return texts.some((t) => typeof t === "string" && BENIGN_BROADCAST.test(t));
  });
}
