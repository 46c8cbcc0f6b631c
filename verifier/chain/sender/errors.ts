// The sender's errors, and how errors from the node are told apart: a revert is an answer (thrown
// to the caller at once, decoded against the protocol's ABIs), a "known transaction / nonce used"
// broadcast answer is benign (receipts and the nonce tell what happened), anything else is an RPC
// failure that the driver retries.
import { BaseError, decodeErrorResult } from "viem";
import type { Abi, Hex } from "viem";

import { TidewayError } from "../../../lib/errors.ts";

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
    super(`transaction "${key}" would revert: ${decoded.reason}`, { ...options, code: "tx_would_revert" });
    this.key = key;
    this.reason = decoded.reason;
    this.errorName = decoded.errorName;
    this.args = decoded.args;
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

export interface DecodedRevert {
  reason: string;
  errorName: string | undefined;
  args: readonly unknown[];
  data: Hex | undefined;
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

const REVERT_DATA = /^0x([0-9a-fA-F]{8}([0-9a-fA-F]{64})*)?$/;

/** Whether `err` says the EVM reverted (JSON-RPC code 3, or viem's revert errors), as opposed to an RPC failure. */
export function isRevert(err: unknown): boolean {
  return causes(err).some((e) => {
    const name = (e as { name?: unknown }).name;
    const code = (e as { code?: unknown }).code;
    return name === "ExecutionRevertedError" || name === "ContractFunctionRevertedError" || code === 3;
  });
}

function revertData(err: unknown): Hex | undefined {
  for (const e of causes(err)) {
    const data = (e as { data?: unknown }).data;
    if (typeof data === "string" && REVERT_DATA.test(data)) return data as Hex;
    if (typeof data === "object" && data !== null) {
      const inner = (data as { data?: unknown }).data;
      if (typeof inner === "string" && REVERT_DATA.test(inner)) return inner as Hex;
    }
  }
  return undefined;
}

function formatArg(v: unknown): string {
  if (typeof v === "bigint") return v.toString();
  if (Array.isArray(v)) return `[${v.map(formatArg).join(", ")}]`;
  return String(v);
}

export function decodeRevert(err: unknown, abi: Abi): DecodedRevert {
  const data = revertData(err);
  if (data !== undefined && data !== "0x") {
    try {
      const decoded = decodeErrorResult({ abi, data });
      const args = (decoded.args ?? []) as readonly unknown[];
      const inputs = decoded.abiItem.type === "error" ? decoded.abiItem.inputs : [];
      const text = args.map((a, i) => `${inputs[i]?.name || `arg${i}`}=${formatArg(a)}`).join(", ");
      return { reason: `${decoded.errorName}(${text})`, errorName: decoded.errorName, args, data };
    } catch {
      return { reason: `unknown error ${data.slice(0, 10)} (data ${data})`, errorName: undefined, args: [], data };
    }
  }
  const nodeMessage = causes(err).map((e) => (e as { details?: unknown }).details).find((d) => typeof d === "string" && d !== "");
  return { reason: (nodeMessage as string | undefined) ?? errorText(err), errorName: undefined, args: [], data };
}

/**
 * Broadcast answers that mean "the node already has this nonce settled or pending": the
 * transaction (or one of its replacements) is known, the nonce was used, or a transaction with
 * this nonce and higher fees is pending. None is a failure: the receipts and the account's nonce
 * tell what happened.
 */
const BENIGN_BROADCAST = /already known|known transaction|already imported|already in (the )?(mempool|pool)|transaction already exists|nonce too low|nonce.*(lower|less) than|replacement transaction underpriced|underpriced replacement|replacement.*underpriced/i;

export function isBenignBroadcastError(err: unknown): boolean {
  return causes(err).some((e) => {
    const texts = [(e as { details?: unknown }).details, (e as { message?: unknown }).message];
    return texts.some((t) => typeof t === "string" && BENIGN_BROADCAST.test(t));
  });
}
