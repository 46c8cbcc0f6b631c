// The sender's API types (see index.ts for the contract they serve).
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import type { Account, Address, Chain, Hex, PublicClient, TransactionReceipt, Transport, WalletClient } from "viem";

/** The transaction an action needs (`build()` returns it; the sender fills in nonce, gas and fees). */
export interface TxRequest {
  to: Address;
  data: Hex;
  value?: bigint;
  /** Gas limit; by default the node's estimate + 20 % (estimation runs anyway, to catch reverts). */
  gas?: bigint;
}

export interface SendParams {
  /** Idempotency key of the logical action, e.g. `submit-epoch-12`: 1–200 of [A-Za-z0-9._-]. */
  key: string;
  /**
   * On-chain check: is the action already achieved (by anyone)? Then nothing is sent. Called under
   * the account lock. Errors are retried like RPC errors (for up to `rpcRetryMs`); a revert
   * (e.g. of a view call) is thrown to the caller at once.
   */
  isDone: () => Promise<boolean>;
  /**
   * The transaction; called only when a new transaction is needed (never when resuming a record),
   * under the account lock, after `isDone()` said false. Errors are handled as for `isDone`.
   */
  build: () => Promise<TxRequest>;
}

export type SendResult =
  | { status: "confirmed"; hash: Hex; receipt: TransactionReceipt }
  | { status: "already-done" }
  | { status: "reverted"; hash: Hex; receipt: TransactionReceipt };

/** Optional hooks, e.g. for prom-client counters. Each is called synchronously; throwing is ignored. */
export interface TxSenderMetrics {
  /** A signed transaction was handed to the node (`initial`, a fee `bump`, or a `rebroadcast`). */
  broadcast?(info: { key: string; hash: Hex; nonce: number; kind: "initial" | "bump" | "rebroadcast" }): void;
  /** A send finished; `ms` from the call to the result. */
  outcome?(info: { key: string; status: SendResult["status"]; ms: number }): void;
  /** An RPC call (or a callback) failed and will be retried. */
  rpcError?(info: { op: string; error: unknown }): void;
  /** A send found the account lock busy and waited `ms` for it. */
  lockWait?(info: { key: string; ms: number }): void;
}

export interface TxSenderOptions {
  /** ioredis client (shared with the rest of the verifier; not closed by the sender). */
  redis: Redis;
  publicClient: PublicClient;
  /** Its account signs; a local account signs without RPC (`account.signTransaction`). */
  walletClient: WalletClient<Transport, Chain | undefined, Account>;
  logger: Logger;
  /** Blocks (including the one with the transaction) before it counts. Default 1. */
  confirmations?: number;
  /** Re-sign with higher fees when no receipt after this long. Default 15 000. */
  bumpAfterMs?: number;
  /** Fee increase per bump, ≥ 10 (geth and EDR refuse replacements below +10 %). Default 20. */
  bumpPercent?: number;
  /** Bumps per record; afterwards the last transaction is re-broadcast while waiting. Default 5. */
  maxBumps?: number;
  /** Receipt polling interval. Default 500. */
  receiptPollMs?: number;
  /** Account lock TTL (renewed every third of it). Default 30 000. */
  lockTtlMs?: number;
  /** Give up (TxSenderRpcError, record kept) after RPC failing continuously this long. Default 120 000. */
  rpcRetryMs?: number;
  /**
   * Before taking a new nonce, wait at most this long for transactions of this account that no
   * record accounts for (pending nonce > latest nonce) — e.g. one whose record a Redis crash lost
   * within its fsync second — then ask `isDone()` again. Default 120 000.
   */
  foreignTxWaitMs?: number;
  /** How long a done marker is kept. Default one day. */
  doneTtlMs?: number;
  metrics?: TxSenderMetrics;
}

export interface TxSender {
  /** The sending account. */
  readonly address: Address;
  /** Performs the action exactly once (see index.ts). */
  send(params: SendParams): Promise<SendResult>;
  /** Stops: sends in progress reject with TxSenderClosedError (their records stay for a later resume). */
  close(): Promise<void>;
}
