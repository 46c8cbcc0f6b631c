// The verifier's exactly-once transaction sender (`submitEpoch`, `reportFault`, `claimMany`).
//
// Several processes of ONE verifier may share one Redis and one key, and any of them may be killed
// at any instruction. The sender still sends one transaction per logical action, never has two in
// flight for one account, manages nonces, bumps the fees of stuck transactions and reports success
// only once the transaction is included AND `confirmations` blocks deep.
//
//   const sender = createTxSender({ redis, publicClient, walletClient, logger });
//   const r = await sender.send({
//     key: `submit-epoch-${epoch}`,                    // idempotency key: [A-Za-z0-9._-], no ':'
//     isDone: async () => (await readContract(... "epochRecord", [epoch])).state !== 0,
//     build: async () => ({ to: settlement, data: encodeFunctionData({ ... "submitEpoch" ... }) }),
//   });
//   // r.status: "confirmed" (hash, receipt) | "already-done" | "reverted" (hash, receipt)
//   await sender.close();
//
// What callers get:
// - "confirmed": our transaction succeeded, `confirmations` deep (the hash may be a fee-bumped
//   replacement of the first one). "already-done": `isDone()` said so and no transaction of ours
//   for this key was mined. "reverted": ours was mined and reverted (the nonce is spent); the key
//   keeps answering "reverted" for `doneTtlMs` — to try again, use a new key (e.g. `…-retry-1`).
// - Throws TxWouldRevertError (decoded custom error, args) when gas estimation reverts: nothing
//   signed, no nonce used, no record. TxSenderRpcError after `rpcRetryMs` of unbroken RPC
//   failure, TxSenderClosedError on close(): both keep the record, and the next call with the key
//   resumes it (never signs a second nonce for it). Reverts of `isDone()`/`build()` are rethrown.
//
// How (the reasons are next to the code below):
// 1. One Redis lock per ACCOUNT (`tideway:txlock:<address>`, redisLock.ts) held from the first
//    `isDone()` until the transaction is confirmed: every process sends through one queue, so a
//    nonce is never used twice and two transactions of one account are never in flight at once.
// 2. Under the lock, `isDone()` first: an action someone already achieved sends nothing.
// 3. A write-ahead record `tideway:tx:<address>:<key>` (JSON: nonce, request, every signed
//    transaction with its hash, raw bytes and fees, createdAt) is written BEFORE each broadcast
//    (the hash is known once the transaction is signed locally). A process that dies after the
//    broadcast leaves the record; whoever takes the lock next resumes it instead of signing anew:
//    it looks for a receipt of every hash (a fee-bumped replacement may be the one mined),
//    re-broadcasts the stored raw transaction (harmless if the node has it) and, if the nonce was
//    consumed by some other transaction, asks `isDone()` again before doing anything else. A
//    record is followed to its end even when `isDone()` is already true (its nonce must be settled
//    before any later one; if it loses the race it reverts, and the answer is "already-done").
//    Records of other keys left by a crash ("orphans", listed in `tideway:txopen:<address>`) are
//    finished first, in nonce order, so a stuck orphan never blocks the account's later nonces.
// 4. A record's nonce is fixed for life: bumps re-sign the SAME nonce with higher fees, so at most
//    one of its transactions can ever be included. A new nonce is only taken for a key with no
//    record (or after its record's nonce was proven consumed by another transaction).
// 5. Once confirmed (or reverted), the record becomes a small done marker (status, hash, block)
//    kept `doneTtlMs` (a day), so a late duplicate call returns at once and never sends again.
// 6. RPC errors are retried with backoff. Only after `rpcRetryMs` without a single successful call
//    does `send` give up with TxSenderRpcError — the record stays, and the next call resumes it.
// 7. Durability: the record is fsynced (WAITAOF, Redis ≥ 7.2) before the broadcast. On older
//    Redis (appendfsync everysec) a crash of Redis itself may lose the last second; a new nonce is
//    therefore only taken once no transaction of the account is pending that no record accounts
//    for (bounded by `foreignTxWaitMs`), and `isDone()` is asked again after such a wait.
//
// Redis writes that matter are "fenced": a Lua script performs them only if the lock still holds
// this holder's token, so a process that stalled past the lock TTL cannot write (nor, since the
// broadcast follows the write, send) anything after another process took over.
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import {
  BaseError,
  decodeErrorResult,
  Eip1559FeesNotSupportedError,
  getAddress,
  keccak256,
  TransactionReceiptNotFoundError,
} from "viem";
import type { Abi, Account, Address, Chain, Hex, PublicClient, TransactionReceipt, TransactionSerializable, Transport, WalletClient } from "viem";

import { mergedProtocolAbi } from "../../lib/protocol/abis.ts";
import { acquireLock, LockAbortedError, LockLostError } from "./redisLock.ts";
import type { HeldLock } from "./redisLock.ts";

// ---------------------------------------------------------------------------------------------
// Public types

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
  /** ABI to decode revert reasons with. Default: every protocol contract's. */
  errorAbi?: Abi;
  metrics?: TxSenderMetrics;
}

export interface TxSender {
  /** The sending account. */
  readonly address: Address;
  /** Performs the action exactly once (see the file comment). */
  send(params: SendParams): Promise<SendResult>;
  /** Stops: sends in progress reject with TxSenderClosedError (their records stay for a later resume). */
  close(): Promise<void>;
}

/** Base class of the sender's errors. */
export class TxSenderError extends Error {
  override name = "TxSenderError";
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
    super(`transaction "${key}" would revert: ${decoded.reason}`, options);
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
    super(`${op} kept failing: ${errorText(cause)}`, { cause });
    this.op = op;
  }
}

/** The sender was closed while the send was in progress. */
export class TxSenderClosedError extends TxSenderError {
  override name = "TxSenderClosedError";
}

// ---------------------------------------------------------------------------------------------
// The record in Redis

/** Fees of one signed transaction. */
export type TxFees =
  | { type: "eip1559"; maxFeePerGas: bigint; maxPriorityFeePerGas: bigint }
  | { type: "legacy"; gasPrice: bigint };

/** One signed transaction of a record (all share the record's nonce). */
export interface TxAttempt {
  hash: Hex;
  /** The signed bytes, to re-broadcast after a crash. */
  raw: Hex;
  fees: TxFees;
  /** When it was signed and recorded (ms); bumps count from the newest. */
  signedAt: number;
}

/** Write-ahead record of an action in progress (`tideway:tx:<address>:<key>`). */
export interface TxRecord {
  v: 1;
  state: "pending";
  key: string;
  from: Address;
  chainId: number;
  nonce: number;
  to: Address;
  data: Hex;
  value: bigint;
  gas: bigint;
  createdAt: number;
  /** Every transaction signed for this nonce, oldest first. */
  txs: TxAttempt[];
}

/** What a record becomes once its transaction is confirmed or reverted (kept `doneTtlMs`). */
export interface TxDoneMarker {
  v: 1;
  state: "done";
  key: string;
  status: "confirmed" | "reverted";
  hash: Hex;
  nonce: number;
  blockNumber: bigint;
  doneAt: number;
}

const KEY_PATTERN = /^[A-Za-z0-9._-]{1,200}$/;

/** Redis key of the record (then done marker) of `key` for `address`. */
export function txRecordKey(address: Address, key: string): string {
  return `tideway:tx:${address.toLowerCase()}:${key}`;
}
/** Redis key of the account lock. */
export function txLockKey(address: Address): string {
  return `tideway:txlock:${address.toLowerCase()}`;
}
/** Redis hash of the account's open records (key → nonce), to find orphans. */
export function txOpenKey(address: Address): string {
  return `tideway:txopen:${address.toLowerCase()}`;
}

function feesToJson(f: TxFees) {
  return f.type === "eip1559"
    ? { type: f.type, maxFeePerGas: f.maxFeePerGas.toString(), maxPriorityFeePerGas: f.maxPriorityFeePerGas.toString() }
    : { type: f.type, gasPrice: f.gasPrice.toString() };
}

function serialize(r: TxRecord | TxDoneMarker): string {
  if (r.state === "done") return JSON.stringify({ ...r, blockNumber: r.blockNumber.toString() });
  return JSON.stringify({
    ...r,
    value: r.value.toString(),
    gas: r.gas.toString(),
    txs: r.txs.map((t) => ({ ...t, fees: feesToJson(t.fees) })),
  });
}

/** Parses a stored record or marker; throws on anything malformed (never overwrite what we cannot read). */
export function parseTxRecord(json: string): TxRecord | TxDoneMarker {
  const o = JSON.parse(json) as Record<string, unknown>;
  const fail = (what: string): never => {
    throw new TxSenderError(`malformed transaction record (${what}): ${json.slice(0, 300)}`);
  };
  if (o.v !== 1) fail("version");
  if (typeof o.key !== "string" || typeof o.nonce !== "number") fail("key/nonce");
  if (o.state === "done") {
    if ((o.status !== "confirmed" && o.status !== "reverted") || typeof o.hash !== "string" || typeof o.blockNumber !== "string") fail("marker");
    return { ...(o as unknown as TxDoneMarker), blockNumber: BigInt(o.blockNumber as string) };
  }
  if (o.state !== "pending" || !Array.isArray(o.txs) || o.txs.length === 0) fail("pending record");
  const txs = (o.txs as Array<Record<string, unknown>>).map((t): TxAttempt => {
    const f = t.fees as Record<string, string>;
    if (typeof t.hash !== "string" || typeof t.raw !== "string" || typeof t.signedAt !== "number" || f === undefined) fail("tx");
    const fees: TxFees = f.type === "legacy"
      ? { type: "legacy", gasPrice: BigInt(f.gasPrice!) }
      : { type: "eip1559", maxFeePerGas: BigInt(f.maxFeePerGas!), maxPriorityFeePerGas: BigInt(f.maxPriorityFeePerGas!) };
    return { hash: t.hash as Hex, raw: t.raw as Hex, fees, signedAt: t.signedAt as number };
  });
  return { ...(o as unknown as TxRecord), value: BigInt(o.value as string), gas: BigInt(o.gas as string), txs };
}

/** Reads the record or done marker of `key` (undefined when none). For tests and operators. */
export async function readTxRecord(redis: Redis, address: Address, key: string): Promise<TxRecord | TxDoneMarker | undefined> {
  const json = await redis.get(txRecordKey(address, key));
  return json === null ? undefined : parseTxRecord(json);
}

// Fenced writes: performed only while the lock holds this holder's token (see the file comment).
const WRITE_RECORD = `
if redis.call("get", KEYS[1]) ~= ARGV[1] then return 0 end
redis.call("set", KEYS[2], ARGV[2])
redis.call("hset", KEYS[3], ARGV[3], ARGV[4])
return 1`;
const FINISH_RECORD = `
if redis.call("get", KEYS[1]) ~= ARGV[1] then return 0 end
redis.call("set", KEYS[2], ARGV[2], "PX", ARGV[5])
redis.call("hdel", KEYS[3], ARGV[3])
return 1`;
const DROP_RECORD = `
if redis.call("get", KEYS[1]) ~= ARGV[1] then return 0 end
redis.call("del", KEYS[2])
redis.call("hdel", KEYS[3], ARGV[3])
return 1`;
/** Takes a key off the open list only (its record is already a done marker, or gone). */
const UNLIST_RECORD = `
if redis.call("get", KEYS[1]) ~= ARGV[1] then return 0 end
redis.call("hdel", KEYS[3], ARGV[3])
return 1`;

// ---------------------------------------------------------------------------------------------
// Errors from the node

interface DecodedRevert {
  reason: string;
  errorName: string | undefined;
  args: readonly unknown[];
  data: Hex | undefined;
}

function errorText(err: unknown): string {
  if (err instanceof BaseError) return err.shortMessage;
  if (err instanceof Error) return err.message;
  return String(err);
}

/** Every error in the `cause` chain, outermost first. */
function causes(err: unknown): unknown[] {
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
function isRevert(err: unknown): boolean {
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

function decodeRevert(err: unknown, abi: Abi): DecodedRevert {
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

function isBenignBroadcastError(err: unknown): boolean {
  return causes(err).some((e) => {
    const texts = [(e as { details?: unknown }).details, (e as { message?: unknown }).message];
    return texts.some((t) => typeof t === "string" && BENIGN_BROADCAST.test(t));
  });
}

// ---------------------------------------------------------------------------------------------
// The sender

const DAY_MS = 86_400_000;
/** How long "our nonce was used by someone else" must hold before it is believed. */
const NONCE_TAKEN_CONFIRM_MS = 1_000;

type DriveOutcome = { kind: "mined"; receipt: TransactionReceipt } | { kind: "nonce-taken"; latestNonce: number };

/** Creates the sender (no I/O until the first `send`). */
export function createTxSender(options: TxSenderOptions): TxSender {
  const { redis, publicClient, walletClient, metrics } = options;
  const confirmations = options.confirmations ?? 1;
  const bumpAfterMs = options.bumpAfterMs ?? 15_000;
  const bumpPercent = options.bumpPercent ?? 20;
  const maxBumps = options.maxBumps ?? 5;
  const receiptPollMs = options.receiptPollMs ?? 500;
  const lockTtlMs = options.lockTtlMs ?? 30_000;
  const rpcRetryMs = options.rpcRetryMs ?? 120_000;
  const foreignTxWaitMs = options.foreignTxWaitMs ?? 120_000;
  const doneTtlMs = options.doneTtlMs ?? DAY_MS;
  const errorAbi = options.errorAbi ?? mergedProtocolAbi();

  const positiveInt = (name: string, v: number, min: number) => {
    if (!Number.isInteger(v) || v < min) throw new RangeError(`${name} must be an integer ≥ ${min}, got ${v}`);
  };
  positiveInt("confirmations", confirmations, 1);
  positiveInt("bumpAfterMs", bumpAfterMs, 1);
  positiveInt("bumpPercent", bumpPercent, 10); // below +10 % nodes refuse the replacement
  positiveInt("maxBumps", maxBumps, 0);
  positiveInt("receiptPollMs", receiptPollMs, 1);
  positiveInt("lockTtlMs", lockTtlMs, 300);
  positiveInt("rpcRetryMs", rpcRetryMs, 0);
  positiveInt("foreignTxWaitMs", foreignTxWaitMs, 0);
  positiveInt("doneTtlMs", doneTtlMs, 1);

  const account = walletClient.account;
  if (account === undefined) throw new TypeError("createTxSender: walletClient has no account");
  const address = getAddress(account.address);
  const lockKey = txLockKey(address);
  const openKey = txOpenKey(address);
  const logger = options.logger.child({ component: "tx-sender", account: address });

  const stop = new AbortController();
  let closed = false;
  const inFlight = new Set<Promise<unknown>>();
  // Calls of this instance queue locally first (FIFO), then contend for the Redis lock with other
  // processes: no point polling Redis against ourselves.
  let localTail: Promise<void> = Promise.resolve();
  let chainId: number | undefined;
  let feeMode: "eip1559" | "legacy" | undefined;
  let waitAof: "unknown" | "yes" | "no" = "unknown";

  function hook<K extends keyof TxSenderMetrics>(name: K, info: Parameters<NonNullable<TxSenderMetrics[K]>>[0]): void {
    try {
      (metrics?.[name] as ((i: typeof info) => void) | undefined)?.(info);
    } catch {
      // metrics must never break sending
    }
  }

  function checkOpen(): void {
    if (closed) throw new TxSenderClosedError("the transaction sender was closed");
  }

  function sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      if (stop.signal.aborted) return resolve();
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        stop.signal.removeEventListener("abort", done);
        resolve();
      }
      stop.signal.addEventListener("abort", done, { once: true });
    });
  }

  /** Per-send RPC health: `send` gives up only after `rpcRetryMs` without one successful call. */
  interface Ctx {
    key: string;
    lock?: HeldLock;
    /** First of an unbroken run of failed RPC calls. */
    failingSince?: number;
    /** First of an unbroken run of refused or failed broadcasts (counted apart: receipt polls succeed meanwhile). */
    broadcastFailingSince?: number;
  }

  /** Checks the sender is open and the lock still ours before a step that must be exclusive. */
  function checkAlive(ctx: Ctx): void {
    checkOpen();
    ctx.lock?.assertHeld();
  }

  /**
   * Runs `fn` (an RPC call or a caller's callback) until it succeeds, with backoff (100 ms doubling
   * to 5 s). Reverts are thrown at once (they are answers, not failures). Gives up with
   * TxSenderRpcError once calls have failed continuously for `rpcRetryMs`.
   */
  async function retry<T>(ctx: Ctx, op: string, fn: () => Promise<T>): Promise<T> {
    let delay = 100;
    for (;;) {
      checkAlive(ctx);
      try {
        const value = await fn();
        ctx.failingSince = undefined;
        return value;
      } catch (err) {
        if (err instanceof TxSenderError || err instanceof LockLostError) throw err;
        if (isRevert(err)) throw err;
        const now = Date.now();
        ctx.failingSince ??= now;
        hook("rpcError", { op, error: err });
        if (now - ctx.failingSince >= rpcRetryMs) throw new TxSenderRpcError(op, err);
        logger.warn({ event: "tx.rpc_error", key: ctx.key, op, err: errorText(err), retryInMs: delay }, "RPC call failed; retrying");
        await sleep(delay);
        delay = Math.min(5_000, delay * 2);
      }
    }
  }

  async function getChainId(ctx: Ctx): Promise<number> {
    chainId ??= await retry(ctx, "getChainId", () => publicClient.getChainId());
    return chainId;
  }

  async function currentFees(ctx: Ctx): Promise<TxFees> {
    return retry(ctx, "estimateFeesPerGas", async () => {
      if (feeMode !== "legacy") {
        try {
          const f = await publicClient.estimateFeesPerGas({ type: "eip1559", chain: undefined });
          feeMode = "eip1559";
          return { type: "eip1559", maxFeePerGas: f.maxFeePerGas, maxPriorityFeePerGas: f.maxPriorityFeePerGas } as const;
        } catch (err) {
          if (!causes(err).some((e) => e instanceof Eip1559FeesNotSupportedError)) throw err;
          feeMode = "legacy"; // no base fee on this chain: legacy gas price
        }
      }
      const f = await publicClient.estimateFeesPerGas({ type: "legacy", chain: undefined });
      return { type: "legacy", gasPrice: f.gasPrice } as const;
    });
  }

  /** Fees for a replacement: +bumpPercent on each field (rounded up), and at least the current estimate. */
  function bumpedFees(prev: TxFees, current: TxFees): TxFees {
    const pct = BigInt(bumpPercent);
    const up = (x: bigint) => {
      const y = (x * (100n + pct) + 99n) / 100n;
      return y > x ? y : x + 1n;
    };
    const max = (...xs: bigint[]) => xs.reduce((a, b) => (a > b ? a : b));
    if (prev.type === "legacy") {
      const cur = current.type === "legacy" ? current.gasPrice : current.maxFeePerGas;
      return { type: "legacy", gasPrice: max(up(prev.gasPrice), cur) };
    }
    const curFee = current.type === "eip1559" ? current.maxFeePerGas : current.gasPrice;
    const curTip = current.type === "eip1559" ? current.maxPriorityFeePerGas : current.gasPrice;
    const tip = max(up(prev.maxPriorityFeePerGas), curTip);
    return { type: "eip1559", maxPriorityFeePerGas: tip, maxFeePerGas: max(up(prev.maxFeePerGas), curFee, tip) };
  }

  /** Signs locally when the account can (no RPC, no chance of a node signing something else). */
  async function sign(ctx: Ctx, rec: Pick<TxRecord, "chainId" | "nonce" | "to" | "data" | "value" | "gas">, fees: TxFees): Promise<Hex> {
    const base = { chainId: rec.chainId, nonce: rec.nonce, to: rec.to, data: rec.data, value: rec.value, gas: rec.gas };
    const tx: TransactionSerializable = fees.type === "eip1559"
      ? { ...base, type: "eip1559", maxFeePerGas: fees.maxFeePerGas, maxPriorityFeePerGas: fees.maxPriorityFeePerGas }
      : { ...base, type: "legacy", gasPrice: fees.gasPrice };
    if (account!.signTransaction !== undefined) return account!.signTransaction(tx);
    return retry(ctx, "signTransaction", () => walletClient.signTransaction({ ...(tx as object), account: account!, chain: null } as never));
  }

  async function fenced(ctx: Ctx, script: string, rec: { key: string }, json: string, extra: string[] = []): Promise<void> {
    const lock = ctx.lock!;
    const ok = await redis.eval(script, 3, lockKey, txRecordKey(address, rec.key), openKey, lock.token, json, rec.key, ...extra);
    if (Number(ok) !== 1) throw new LockLostError(`lock ${lockKey} was taken over before writing the record of "${rec.key}"`);
  }

  /**
   * Makes the record durable before its transaction leaves: WAITAOF (Redis ≥ 7.2) waits for the
   * local AOF fsync. Older Redis fsyncs within a second (appendfsync everysec); a record lost in
   * that second is covered by the foreign-transaction wait before any new nonce.
   */
  async function durable(): Promise<void> {
    if (waitAof === "no") return;
    try {
      const [local] = (await redis.call("WAITAOF", "1", "0", "1000")) as [number, number];
      if (waitAof === "unknown") waitAof = "yes";
      if (Number(local) < 1) logger.warn({ event: "tx.aof_not_synced" }, "Redis did not confirm the AOF fsync of a transaction record within 1 s");
    } catch (err) {
      if (waitAof === "unknown") {
        waitAof = "no";
        logger.info({ event: "tx.no_waitaof", err: errorText(err) }, "Redis has no WAITAOF (< 7.2): records rely on appendfsync everysec");
      }
    }
  }

  async function writeRecord(ctx: Ctx, rec: TxRecord): Promise<void> {
    await fenced(ctx, WRITE_RECORD, rec, serialize(rec), [String(rec.nonce)]);
    await durable();
  }

  async function finishRecord(ctx: Ctx, rec: TxRecord, receipt: TransactionReceipt): Promise<TxDoneMarker> {
    const marker: TxDoneMarker = {
      v: 1, state: "done", key: rec.key, status: receipt.status === "success" ? "confirmed" : "reverted",
      hash: receipt.transactionHash, nonce: rec.nonce, blockNumber: receipt.blockNumber, doneAt: Date.now(),
    };
    await fenced(ctx, FINISH_RECORD, rec, serialize(marker), [String(rec.nonce), String(doneTtlMs)]);
    return marker;
  }

  async function dropRecord(ctx: Ctx, rec: TxRecord): Promise<void> {
    await fenced(ctx, DROP_RECORD, rec, "", []);
  }

  /** Hands a signed transaction to the node; answers meaning "already there / nonce used" are fine. */
  async function broadcast(ctx: Ctx, rec: TxRecord, attempt: TxAttempt, kind: "initial" | "bump" | "rebroadcast"): Promise<boolean> {
    checkAlive(ctx);
    hook("broadcast", { key: rec.key, hash: attempt.hash, nonce: rec.nonce, kind });
    try {
      await publicClient.sendRawTransaction({ serializedTransaction: attempt.raw });
      ctx.broadcastFailingSince = undefined;
      logger.info({ event: "tx.broadcast", key: rec.key, kind, hash: attempt.hash, nonce: rec.nonce }, "transaction broadcast");
      return true;
    } catch (err) {
      if (isBenignBroadcastError(err)) {
        ctx.broadcastFailingSince = undefined;
        logger.debug({ event: "tx.broadcast_known", key: rec.key, kind, hash: attempt.hash, answer: errorText(err) }, "node already has this nonce; checking receipts");
        return true;
      }
      // Not sent (RPC down, or the node refused it, e.g. insufficient funds): the wait loop
      // re-broadcasts and bumps; only failures lasting rpcRetryMs end the send (record kept, so
      // the next call resumes it once the node takes it).
      const now = Date.now();
      ctx.broadcastFailingSince ??= now;
      hook("rpcError", { op: "sendRawTransaction", error: err });
      logger.warn({ event: "tx.broadcast_failed", key: rec.key, kind, hash: attempt.hash, err: errorText(err) }, "broadcast failed; will retry");
      if (now - ctx.broadcastFailingSince >= rpcRetryMs) throw new TxSenderRpcError("sendRawTransaction", err);
      return false;
    }
  }

  async function receiptOf(ctx: Ctx, hash: Hex): Promise<TransactionReceipt | undefined> {
    return retry(ctx, "getTransactionReceipt", async () => {
      try {
        return await publicClient.getTransactionReceipt({ hash });
      } catch (err) {
        if (causes(err).some((e) => e instanceof TransactionReceiptNotFoundError)) return undefined;
        throw err;
      }
    });
  }

  /** The receipt of whichever of the record's transactions was included (at most one can be: same nonce). */
  async function findReceipt(ctx: Ctx, rec: TxRecord): Promise<TransactionReceipt | undefined> {
    for (let i = rec.txs.length - 1; i >= 0; i--) {
      const r = await receiptOf(ctx, rec.txs[i]!.hash);
      if (r !== undefined) return r;
    }
    return undefined;
  }

  /**
   * Waits until one of the record's transactions is `confirmations` deep on the canonical chain,
   * re-broadcasting and bumping fees meanwhile; or until the nonce is proven used by a transaction
   * that is not one of ours. `fresh`: the newest transaction was just broadcast (else re-broadcast
   * it first: the process that wrote the record may have died before sending it).
   */
  async function drive(ctx: Ctx, rec: TxRecord, fresh: boolean): Promise<DriveOutcome> {
    let lastBroadcastAt = fresh ? Date.now() : 0;
    let included: TransactionReceipt | undefined;
    let takenSince: number | undefined;
    for (;;) {
      checkAlive(ctx);
      // Nonce before receipts: if ours is mined between the two reads we see its receipt.
      const latestNonce = await retry(ctx, "getTransactionCount", () => publicClient.getTransactionCount({ address, blockTag: "latest" }));
      const receipt = await findReceipt(ctx, rec);
      if (receipt !== undefined) {
        takenSince = undefined;
        if (included?.blockHash !== receipt.blockHash) {
          logger.info({ event: "tx.included", key: rec.key, hash: receipt.transactionHash, block: receipt.blockNumber.toString(), replacement: receipt.transactionHash !== rec.txs[0]!.hash }, "transaction included; waiting for confirmations");
        }
        included = receipt;
        const tip = await retry(ctx, "getBlockNumber", () => publicClient.getBlockNumber({ cacheTime: 0 }));
        if (tip - receipt.blockNumber + 1n >= BigInt(confirmations)) {
          // Still canonical? (the receipt may come from a block a reorg just replaced)
          const block = await retry(ctx, "getBlock", () => publicClient.getBlock({ blockNumber: receipt.blockNumber }));
          if (block.hash === receipt.blockHash) return { kind: "mined", receipt };
        }
      } else {
        if (included !== undefined) {
          // A reorg dropped it: it is normally back in the mempool; re-broadcast to be sure.
          logger.warn({ event: "tx.reorged", key: rec.key, hash: included.transactionHash, block: included.blockNumber.toString() }, "included transaction disappeared (reorg); waiting again");
          included = undefined;
          lastBroadcastAt = 0;
        }
        if (latestNonce > rec.nonce) {
          // Used by a transaction that is not one of ours (a receipt would have shown otherwise).
          // Concluded only when it still looks so a second later: behind a load balancer, the
          // node answering for receipts may lag the one that counted the nonce, and concluding
          // wrongly would mean a second transaction for the action.
          takenSince ??= Date.now();
          if (Date.now() - takenSince >= NONCE_TAKEN_CONFIRM_MS) return { kind: "nonce-taken", latestNonce };
          await sleep(Math.min(receiptPollMs, NONCE_TAKEN_CONFIRM_MS));
          continue;
        }
        takenSince = undefined;
        const newest = rec.txs[rec.txs.length - 1]!;
        const now = Date.now();
        if (now - newest.signedAt >= bumpAfterMs && rec.txs.length - 1 < maxBumps) {
          lastBroadcastAt = (await bump(ctx, rec)) ? Date.now() : 0;
        } else if (now - lastBroadcastAt >= Math.min(bumpAfterMs, 10_000)) {
          // Nodes drop transactions (restart, eviction); sending the same bytes again is harmless.
          const ok = await broadcast(ctx, rec, newest, "rebroadcast");
          lastBroadcastAt = ok ? Date.now() : 0;
        }
      }
      await sleep(receiptPollMs);
    }
  }

  /** Re-signs the record's nonce with higher fees: written to the record first, then broadcast. */
  async function bump(ctx: Ctx, rec: TxRecord): Promise<boolean> {
    const prev = rec.txs[rec.txs.length - 1]!;
    const fees = bumpedFees(prev.fees, await currentFees(ctx));
    const raw = await sign(ctx, rec, fees);
    const attempt: TxAttempt = { hash: keccak256(raw), raw, fees, signedAt: Date.now() };
    const next: TxRecord = { ...rec, txs: [...rec.txs, attempt] };
    await writeRecord(ctx, next);
    rec.txs = next.txs;
    logger.warn({ event: "tx.bump", key: rec.key, nonce: rec.nonce, bump: rec.txs.length - 1, hash: attempt.hash, replaces: prev.hash, fees: feesToJson(fees) }, "no receipt in time: replacing with higher fees");
    return broadcast(ctx, rec, attempt, "bump");
  }

  function resultOf(receipt: TransactionReceipt): SendResult {
    return receipt.status === "success"
      ? { status: "confirmed", hash: receipt.transactionHash, receipt }
      : { status: "reverted", hash: receipt.transactionHash, receipt };
  }

  async function fromMarker(ctx: Ctx, marker: TxDoneMarker): Promise<SendResult> {
    const receipt = await receiptOf(ctx, marker.hash);
    if (receipt === undefined) {
      throw new TxSenderError(`"${marker.key}" was confirmed in ${marker.hash} (block ${marker.blockNumber}), which the chain no longer has: a reorg deeper than ${confirmations} confirmations; not sending again`);
    }
    return resultOf(receipt);
  }

  async function readRecord(key: string): Promise<TxRecord | TxDoneMarker | undefined> {
    checkOpen();
    return readTxRecord(redis, address, key);
  }

  /** A record signed for another chain (same Redis, another network) must never be broadcast here. */
  async function checkChain(ctx: Ctx, rec: TxRecord): Promise<void> {
    const here = await getChainId(ctx);
    if (rec.chainId !== here) {
      throw new TxSenderError(`the record of "${rec.key}" (${txRecordKey(address, rec.key)}) was signed for chain ${rec.chainId}, but the RPC serves chain ${here}: refusing to resume it`);
    }
  }

  /** Finishes the records of other keys a crash left behind, lowest nonce first (they block later nonces). */
  async function settleOrphans(ctx: Ctx, exceptKey: string): Promise<void> {
    const open = await redis.hgetall(openKey);
    const keys = Object.entries(open).filter(([k]) => k !== exceptKey).sort((a, b) => Number(a[1]) - Number(b[1])).map(([k]) => k);
    for (const key of keys) {
      checkAlive(ctx);
      const rec = await readRecord(key);
      if (rec === undefined || rec.state === "done") {
        await fenced(ctx, UNLIST_RECORD, { key }, "", []);
        continue;
      }
      await checkChain(ctx, rec);
      logger.warn({ event: "tx.orphan", key, nonce: rec.nonce, hashes: rec.txs.map((t) => t.hash) }, "finishing a transaction another process left behind");
      const out = await drive({ ...ctx, key }, rec, false);
      if (out.kind === "mined") {
        const marker = await finishRecord(ctx, rec, out.receipt);
        logger.info({ event: "tx.orphan_done", key, status: marker.status, hash: marker.hash }, "orphaned transaction finished");
      } else {
        await dropRecord(ctx, rec);
        logger.warn({ event: "tx.orphan_superseded", key, nonce: rec.nonce }, "orphaned transaction's nonce was used by another transaction; record dropped");
      }
    }
  }

  /** Waits (bounded) until no transaction of this account is pending that no record accounts for. */
  async function waitForeignTxs(ctx: Ctx): Promise<boolean> {
    const started = Date.now();
    let waited = false;
    for (;;) {
      const [pending, latest] = await Promise.all([
        retry(ctx, "getTransactionCount", () => publicClient.getTransactionCount({ address, blockTag: "pending" })),
        retry(ctx, "getTransactionCount", () => publicClient.getTransactionCount({ address, blockTag: "latest" })),
      ]);
      if (pending <= latest) return waited;
      if (Date.now() - started >= foreignTxWaitMs) {
        logger.warn({ event: "tx.foreign_pending", key: ctx.key, pending, latest }, "transactions of this account no record accounts for are still pending; going on with the next nonce");
        return waited;
      }
      if (!waited) logger.warn({ event: "tx.foreign_wait", key: ctx.key, pending, latest }, "waiting for transactions of this account that no record accounts for");
      waited = true;
      await sleep(receiptPollMs);
      checkAlive(ctx);
    }
  }

  /** A new transaction for `params.key` (no record): nonce, build, estimate, sign, record, broadcast. */
  async function sendNew(ctx: Ctx, params: SendParams): Promise<SendResult> {
    for (let round = 0; ; round++) {
      await settleOrphans(ctx, params.key);
      if (await waitForeignTxs(ctx)) {
        if (await retry(ctx, "isDone", params.isDone)) return { status: "already-done" };
      }
      const nonce = await retry(ctx, "getTransactionCount", () => publicClient.getTransactionCount({ address, blockTag: "pending" }));
      const request = await retry(ctx, "build", params.build);
      const value = request.value ?? 0n;
      let estimate: bigint;
      try {
        estimate = await retry(ctx, "estimateGas", () => publicClient.estimateGas({ account: address, to: request.to, data: request.data, value }));
      } catch (err) {
        if (!isRevert(err)) throw err;
        // Someone else may have achieved the action since isDone() was asked (another verifier
        // submitting the same epoch or fault): that is success, not an error.
        if (await retry(ctx, "isDone", params.isDone)) return { status: "already-done" };
        const decoded = decodeRevert(err, errorAbi);
        logger.error({ event: "tx.would_revert", key: params.key, to: request.to, reason: decoded.reason }, "transaction would revert; not sent");
        throw new TxWouldRevertError(params.key, decoded, { cause: err });
      }
      const gas = request.gas ?? (estimate * 120n) / 100n;
      const fees = await currentFees(ctx);
      const base = { chainId: await getChainId(ctx), nonce, to: getAddress(request.to), data: request.data, value, gas };
      const raw = await sign(ctx, base, fees);
      const rec: TxRecord = {
        v: 1, state: "pending", key: params.key, from: address, ...base, createdAt: Date.now(),
        txs: [{ hash: keccak256(raw), raw, fees, signedAt: Date.now() }],
      };
      // Write-ahead: the record (with the hash) is durable before the transaction can exist anywhere.
      await writeRecord(ctx, rec);
      const sent = await broadcast(ctx, rec, rec.txs[0]!, "initial");
      const out = await drive(ctx, rec, sent);
      if (out.kind === "mined") {
        await finishRecord(ctx, rec, out.receipt);
        return resultOf(out.receipt);
      }
      // Our nonce went to someone else's transaction (e.g. sent from this key outside the sender).
      await dropRecord(ctx, rec);
      logger.warn({ event: "tx.nonce_taken", key: params.key, nonce, latestNonce: out.latestNonce }, "nonce used by another transaction; checking the action again");
      if (await retry(ctx, "isDone", params.isDone)) return { status: "already-done" };
      if (round >= 2) throw new TxSenderError(`"${params.key}": nonce taken by other transactions three times in a row; is this key used outside the sender?`);
    }
  }

  /** Everything done while holding the account lock. */
  async function underLock(ctx: Ctx, params: SendParams): Promise<SendResult> {
    // isDone first: what is achieved (by anyone) needs nothing sent.
    const done = await retry(ctx, "isDone", params.isDone);
    const rec = await readRecord(params.key);
    if (rec?.state === "done") return done ? { status: "already-done" } : fromMarker(ctx, rec);
    if (rec === undefined) return done ? { status: "already-done" } : sendNew(ctx, params);

    // A record: a previous attempt (maybe another process, maybe killed) signed and maybe sent a
    // transaction with this nonce. Never sign a new nonce before knowing what became of it.
    await checkChain(ctx, rec);
    logger.info({ event: "tx.resume", key: params.key, nonce: rec.nonce, hashes: rec.txs.map((t) => t.hash) }, "resuming a recorded transaction");
    await settleOrphans(ctx, params.key);
    const out = await drive(ctx, rec, false);
    if (out.kind === "mined") {
      await finishRecord(ctx, rec, out.receipt);
      // Ours reverted because someone else achieved it first: the action is done all the same.
      if (done && out.receipt.status !== "success") return { status: "already-done" };
      return resultOf(out.receipt);
    }
    await dropRecord(ctx, rec);
    logger.warn({ event: "tx.nonce_taken", key: params.key, nonce: rec.nonce, latestNonce: out.latestNonce }, "recorded nonce used by another transaction; checking the action again");
    if (done || (await retry(ctx, "isDone", params.isDone))) return { status: "already-done" };
    return sendNew(ctx, params);
  }

  async function runSend(params: SendParams): Promise<SendResult> {
    const ctx: Ctx = { key: params.key };
    // Quick path for a late duplicate: a done marker is final (written only after confirmation).
    const early = await readRecord(params.key);
    if (early?.state === "done") {
      return (await retry(ctx, "isDone", params.isDone)) ? { status: "already-done" } : fromMarker(ctx, early);
    }

    const previous = localTail;
    let releaseLocal!: () => void;
    localTail = new Promise((resolve) => { releaseLocal = resolve; });
    try {
      await previous;
      for (;;) {
        checkOpen();
        const waitStarted = Date.now();
        let busy = false;
        const lock = await acquireLock(redis, lockKey, {
          ttlMs: lockTtlMs,
          signal: stop.signal,
          onBusy: () => {
            busy = true;
            logger.debug({ event: "tx.lock_wait", key: params.key }, "account lock busy; queued");
          },
        }).catch((err: unknown) => {
          if (err instanceof LockAbortedError) throw new TxSenderClosedError("the transaction sender was closed");
          throw err;
        });
        if (busy) hook("lockWait", { key: params.key, ms: Date.now() - waitStarted });
        ctx.lock = lock;
        try {
          return await underLock(ctx, params);
        } catch (err) {
          if (!(err instanceof LockLostError) || closed) throw err;
          // Stalled past the TTL: another process may have moved on. Start over from the record.
          logger.warn({ event: "tx.lock_lost", key: params.key }, "account lock lost mid-send; starting over under a new lock");
        } finally {
          ctx.lock = undefined;
          await lock.release();
        }
      }
    } finally {
      releaseLocal();
    }
  }

  return {
    address,
    async send(params: SendParams): Promise<SendResult> {
      if (!KEY_PATTERN.test(params.key)) throw new TypeError(`transaction key must be 1–200 of [A-Za-z0-9._-] (no ':'), got ${JSON.stringify(params.key)}`);
      checkOpen();
      const started = Date.now();
      const run = runSend(params).then((result) => {
        hook("outcome", { key: params.key, status: result.status, ms: Date.now() - started });
        const level = result.status === "reverted" ? "error" : "info";
        logger[level]({ event: `tx.${result.status}`, key: params.key, hash: "hash" in result ? result.hash : undefined, ms: Date.now() - started }, `transaction ${result.status}`);
        return result;
      });
      inFlight.add(run);
      run.then(() => inFlight.delete(run), () => inFlight.delete(run));
      return run;
    },
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      stop.abort();
      await Promise.allSettled([...inFlight]);
    },
  };
}
