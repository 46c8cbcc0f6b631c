// createTxSender: the sender's driver — the account lock, the write-ahead record, broadcasts, fee
// bumps, the wait for confirmations and the resume of records a crash left (see index.ts).
import { getAddress, keccak256, TransactionReceiptNotFoundError } from "viem";
import type { Hex, TransactionReceipt, TransactionSerializable } from "viem";

import { decodeRevert, isRevert } from "../../../lib/protocol/revert.ts";
import {
  causes,
  errorText,
  isBenignBroadcastError,
  TxSenderClosedError,
  TxSenderError,
  TxSenderRpcError,
  TxWouldRevertError,
} from "./errors.ts";
import { bumpedFees, createFeeEstimator } from "./fees.ts";
import { acquireLock, LockAbortedError, LockLostError } from "./lock.ts";
import type { HeldLock } from "./lock.ts";
import {
  DROP_RECORD,
  feesToJson,
  FINISH_RECORD,
  KEY_PATTERN,
  readTxRecord,
  serialize,
  txLockKey,
  txOpenKey,
  txRecordKey,
  UNLIST_RECORD,
  WRITE_RECORD,
} from "./record.ts";
import type { TxAttempt, TxDoneMarker, TxFees, TxRecord } from "./record.ts";
import type { SendParams, SendResult, TxSender, TxSenderMetrics, TxSenderOptions } from "./types.ts";

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
  const logger = options.logger.child({ account: address });

  const stop = new AbortController();
  let closed = false;
  const inFlight = new Set<Promise<unknown>>();
  // Calls of this instance queue locally first (FIFO), then contend for the Redis lock with other
  // processes: no point polling Redis against ourselves.
  let localTail: Promise<void> = Promise.resolve();
  let chainId: number | undefined;
  const estimateFees = createFeeEstimator(publicClient);
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
    return retry(ctx, "estimateFeesPerGas", estimateFees);
  }

  /** Signs locally when the account can (no RPC, no chance of a node signing something else). */
  async function sign(ctx: Ctx, rec: Pick<TxRecord, "chainId" | "nonce" | "to" | "data" | "value" | "gas">, fees: TxFees): Promise<Hex> {
    const base = { chainId: rec.chainId, nonce: rec.nonce, to: rec.to, data: rec.data, value: rec.value, gas: rec.gas };
    const tx: TransactionSerializable =
      fees.type === "eip1559"
        ? { ...base, type: "eip1559", maxFeePerGas: fees.maxFeePerGas, maxPriorityFeePerGas: fees.maxPriorityFeePerGas }
        : { ...base, type: "legacy", gasPrice: fees.gasPrice };
    if (account!.signTransaction !== undefined) return account!.signTransaction(tx);
    return retry(ctx, "signTransaction", () =>
      walletClient.signTransaction({ ...(tx as object), account: account!, chain: null } as never),
    );
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
      if (Number(local) < 1)
        logger.warn({ event: "tx.aof_not_synced" }, "Redis did not confirm the AOF fsync of a transaction record within 1 s");
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
      v: 1,
      state: "done",
      key: rec.key,
      status: receipt.status === "success" ? "confirmed" : "reverted",
      hash: receipt.transactionHash,
      nonce: rec.nonce,
      blockNumber: receipt.blockNumber,
      doneAt: Date.now(),
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
        logger.debug(
          { event: "tx.broadcast_known", key: rec.key, kind, hash: attempt.hash, answer: errorText(err) },
          "node already has this nonce; checking receipts",
        );
        return true;
      }
      // Not sent (RPC down, or the node refused it, e.g. insufficient funds): the wait loop
      // re-broadcasts and bumps; only failures lasting rpcRetryMs end the send (record kept, so
      // the next call resumes it once the node takes it).
      const now = Date.now();
      ctx.broadcastFailingSince ??= now;
      hook("rpcError", { op: "sendRawTransaction", error: err });
      logger.warn(
        { event: "tx.broadcast_failed", key: rec.key, kind, hash: attempt.hash, err: errorText(err) },
        "broadcast failed; will retry",
      );
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
          logger.info(
            {
              event: "tx.included",
              key: rec.key,
              hash: receipt.transactionHash,
              block: receipt.blockNumber.toString(),
              replacement: receipt.transactionHash !== rec.txs[0]!.hash,
            },
            "transaction included; waiting for confirmations",
          );
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
          logger.warn(
            { event: "tx.reorged", key: rec.key, hash: included.transactionHash, block: included.blockNumber.toString() },
            "included transaction disappeared (reorg); waiting again",
          );
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
    const fees = bumpedFees(prev.fees, await currentFees(ctx), bumpPercent);
    const raw = await sign(ctx, rec, fees);
    const attempt: TxAttempt = { hash: keccak256(raw), raw, fees, signedAt: Date.now() };
    const next: TxRecord = { ...rec, txs: [...rec.txs, attempt] };
    await writeRecord(ctx, next);
    rec.txs = next.txs;
    logger.warn(
      {
        event: "tx.bump",
        key: rec.key,
        nonce: rec.nonce,
        bump: rec.txs.length - 1,
        hash: attempt.hash,
        replaces: prev.hash,
        fees: feesToJson(fees),
      },
      "no receipt in time: replacing with higher fees",
    );
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
      throw new TxSenderError(
        `"${marker.key}" was confirmed in ${marker.hash} (block ${marker.blockNumber}), which the chain no longer has: a reorg deeper than ${confirmations} confirmations; not sending again`,
      );
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
      throw new TxSenderError(
        `the record of "${rec.key}" (${txRecordKey(address, rec.key)}) was signed for chain ${rec.chainId}, but the RPC serves chain ${here}: refusing to resume it`,
      );
    }
  }

  /** Finishes the records of other keys a crash left behind, lowest nonce first (they block later nonces). */
  async function settleOrphans(ctx: Ctx, exceptKey: string): Promise<void> {
    const open = await redis.hgetall(openKey);
    const keys = Object.entries(open)
      .filter(([k]) => k !== exceptKey)
      .sort((a, b) => Number(a[1]) - Number(b[1]))
      .map(([k]) => k);
    for (const key of keys) {
      checkAlive(ctx);
      const rec = await readRecord(key);
      if (rec === undefined || rec.state === "done") {
        await fenced(ctx, UNLIST_RECORD, { key }, "", []);
        continue;
      }
      await checkChain(ctx, rec);
      logger.warn(
        { event: "tx.orphan", key, nonce: rec.nonce, hashes: rec.txs.map((t) => t.hash) },
        "finishing a transaction another process left behind",
      );
      const out = await drive({ ...ctx, key }, rec, false);
      if (out.kind === "mined") {
        const marker = await finishRecord(ctx, rec, out.receipt);
        logger.info({ event: "tx.orphan_done", key, status: marker.status, hash: marker.hash }, "orphaned transaction finished");
      } else {
        await dropRecord(ctx, rec);
        logger.warn(
          { event: "tx.orphan_superseded", key, nonce: rec.nonce },
          "orphaned transaction's nonce was used by another transaction; record dropped",
        );
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
        logger.warn(
          { event: "tx.foreign_pending", key: ctx.key, pending, latest },
          "transactions of this account no record accounts for are still pending; going on with the next nonce",
        );
        return waited;
      }
      if (!waited)
        logger.warn(
          { event: "tx.foreign_wait", key: ctx.key, pending, latest },
          "waiting for transactions of this account that no record accounts for",
        );
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
        estimate = await retry(ctx, "estimateGas", () =>
          publicClient.estimateGas({ account: address, to: request.to, data: request.data, value }),
        );
      } catch (err) {
        if (!isRevert(err)) throw err;
        // Someone else may have achieved the action since isDone() was asked (another verifier
        // submitting the same epoch or fault): that is success, not an error.
        if (await retry(ctx, "isDone", params.isDone)) return { status: "already-done" };
        const decoded = decodeRevert(err) ?? { name: undefined, contract: undefined, args: [], message: errorText(err), data: undefined };
        logger.error(
          { event: "tx.would_revert", key: params.key, to: request.to, reason: decoded.message },
          "transaction would revert; not sent",
        );
        throw new TxWouldRevertError(params.key, decoded, { cause: err });
      }
      const gas = request.gas ?? (estimate * 120n) / 100n;
      const fees = await currentFees(ctx);
      const base = { chainId: await getChainId(ctx), nonce, to: getAddress(request.to), data: request.data, value, gas };
      const raw = await sign(ctx, base, fees);
      const rec: TxRecord = {
        v: 1,
        state: "pending",
        key: params.key,
        from: address,
        ...base,
        createdAt: Date.now(),
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
      logger.warn(
        { event: "tx.nonce_taken", key: params.key, nonce, latestNonce: out.latestNonce },
        "nonce used by another transaction; checking the action again",
      );
      if (await retry(ctx, "isDone", params.isDone)) return { status: "already-done" };
      if (round >= 2)
        throw new TxSenderError(
          `"${params.key}": nonce taken by other transactions three times in a row; is this key used outside the sender?`,
        );
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
    logger.info(
      { event: "tx.resume", key: params.key, nonce: rec.nonce, hashes: rec.txs.map((t) => t.hash) },
      "resuming a recorded transaction",
    );
    await settleOrphans(ctx, params.key);
    const out = await drive(ctx, rec, false);
    if (out.kind === "mined") {
      await finishRecord(ctx, rec, out.receipt);
      // Ours reverted because someone else achieved it first: the action is done all the same.
      if (done && out.receipt.status !== "success") return { status: "already-done" };
      return resultOf(out.receipt);
    }
    await dropRecord(ctx, rec);
    logger.warn(
      { event: "tx.nonce_taken", key: params.key, nonce: rec.nonce, latestNonce: out.latestNonce },
      "recorded nonce used by another transaction; checking the action again",
    );
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
    localTail = new Promise((resolve) => {
      releaseLocal = resolve;
    });
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
      if (!KEY_PATTERN.test(params.key))
        throw new TypeError(`transaction key must be 1–200 of [A-Za-z0-9._-] (no ':'), got ${JSON.stringify(params.key)}`);
      checkOpen();
      const started = Date.now();
      const run = runSend(params).then((result) => {
        hook("outcome", { key: params.key, status: result.status, ms: Date.now() - started });
        const level = result.status === "reverted" ? "error" : "info";
        logger[level](
          { event: `tx.${result.status}`, key: params.key, hash: "hash" in result ? result.hash : undefined, ms: Date.now() - started },
          `transaction ${result.status}`,
        );
        return result;
      });
      inFlight.add(run);
      run.then(
        () => inFlight.delete(run),
        () => inFlight.delete(run),
      );
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
