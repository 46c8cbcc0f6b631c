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
// How (the reasons are next to the code: driver.ts, record.ts, errors.ts, fees.ts):
// 1. One Redis lock per ACCOUNT (`tideway:txlock:<address>`, lock.ts) held from the first
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
//
// Files: types.ts (the API's types), driver.ts (createTxSender: lock, record, broadcast, bump,
// wait), record.ts (the write-ahead record, its Redis keys and the fenced Lua writes), errors.ts
// (the sender's errors and how node errors are classified: revert, benign broadcast answer, RPC
// failure), fees.ts (fee estimation and replacement fees), lock.ts (the per-account Redis lock).
export type { SendParams, SendResult, TxRequest, TxSender, TxSenderMetrics, TxSenderOptions } from "./types.ts";
export { createTxSender } from "./driver.ts";
export { TxSenderClosedError, TxSenderError, TxSenderRpcError, TxWouldRevertError } from "./errors.ts";
export { parseTxRecord, readTxRecord, txLockKey, txOpenKey, txRecordKey } from "./record.ts";
export type { TxAttempt, TxDoneMarker, TxFees, TxRecord } from "./record.ts";
