// The edge's vouchers, durably: per session the best (highest verified) voucher with its
// signature and signer, what was served against it, and what the chain says was redeemed.
// One named LMDB database ("vouchers") in the edge's environment, keyed by session id; amounts
// as decimal strings (msgpack has no 256-bit integers).
//
// `served` is written lazily (the gate does not wait for it), so after a crash the stored value
// may lag. On open the store therefore raises served to the best voucher's amount: every request
// admitted against that voucher counts as served, so nothing can be served twice for one voucher
// (conservative for the edge; the payer loses at most what was in flight at the crash).
import type { Database } from "lmdb";
import { getAddress } from "viem";
import type { Address, Hex } from "viem";

import type { Voucher } from "../../lib/protocol/eip712.ts";
import { type EdgeDatabase, flushEdgeDatabase } from "../store/database.ts";

/** What the edge holds for one session. */
export interface StoredSession {
  voucher: Voucher;
  signature: Hex;
  /** Who signed `voucher`: the payer or a signer it authorized (when it was stored). */
  signer: Address;
  /** Cost of completed requests (lower bound while running, see the file comment). */
  served: bigint;
  /** What the chain said this (session, edge) had received, when last read. */
  redeemed: bigint;
  /** Set when the voucher can never pay (signer revoked and its window passed, or expired before redemption). */
  lost: string | undefined;
}

interface Row {
  payer: string;
  edgeId: string;
  sessionId: string;
  cumulativeAmount: string;
  expiry: string;
  signature: string;
  signer: string;
  served: string;
  redeemed: string;
  lost?: string;
}

/** The durable voucher store (see the file comment). */
export interface VoucherStore {
  /** The stored state of `sessionId`, if any. */
  get(sessionId: bigint): StoredSession | undefined;
  /**
   * Stores `voucher` as the best of its session if it is above the stored one (or with
   * `replace`, unconditionally: the stored one can no longer pay). Resolves once committed: the
   * write then survives a crash of this process, and a crash of the machine once {flushed}.
   * Keeps served and redeemed. Returns whether it was written.
   */
  putBest(voucher: Voucher, signature: Hex, signer: Address, options?: { replace?: boolean; served?: bigint }): Promise<boolean>;
  /** Resolves once every write committed before the call is flushed to disk. */
  flushed(): Promise<void>;
  /** Raises the stored served amount (never lowers it); not awaited by the gate. */
  setServed(sessionId: bigint, served: bigint): Promise<void>;
  /** Records what the chain says was redeemed (never lowers it). */
  setRedeemed(sessionId: bigint, redeemed: bigint): Promise<void>;
  /** Marks the session's voucher as unable to pay, with why. */
  markLost(sessionId: bigint, reason: string): Promise<void>;
  /** Sessions whose best voucher is worth more than what was redeemed and is not lost. */
  unredeemed(): StoredSession[];
  /** Every stored session. */
  all(): StoredSession[];
}

/**
 * Opens the "vouchers" database in `root` and applies the restart rule (served := max(served,
 * best voucher)).
 * @param root The edge's LMDB environment (see openEdgeDatabase).
 */
export function createVoucherStore(root: EdgeDatabase): VoucherStore {
  const db: Database<Row, string> = root.openDB<Row, string>({ name: "vouchers" });

  db.transactionSync(() => {
    for (const { key, value } of db.getRange()) {
      if (BigInt(value.served) < BigInt(value.cumulativeAmount)) db.put(key, { ...value, served: value.cumulativeAmount });
    }
  });

  function fromRow(row: Row): StoredSession {
    return {
      voucher: {
        payer: getAddress(row.payer),
        edgeId: BigInt(row.edgeId),
        sessionId: BigInt(row.sessionId),
        cumulativeAmount: BigInt(row.cumulativeAmount),
        expiry: BigInt(row.expiry),
      },
      signature: row.signature as Hex,
      signer: getAddress(row.signer),
      served: BigInt(row.served),
      redeemed: BigInt(row.redeemed),
      lost: row.lost,
    };
  }

  const key = (sessionId: bigint) => sessionId.toString();

  return {
    get(sessionId) {
      const row = db.get(key(sessionId));
      return row === undefined ? undefined : fromRow(row);
    },
    putBest(voucher, signature, signer, options = {}) {
      return db.transaction(() => {
        const current = db.get(key(voucher.sessionId));
        if (current !== undefined && !options.replace && BigInt(current.cumulativeAmount) >= voucher.cumulativeAmount) return false;
        const served = maxOf(current === undefined ? 0n : BigInt(current.served), options.served ?? 0n);
        db.put(key(voucher.sessionId), {
          payer: voucher.payer,
          edgeId: voucher.edgeId.toString(),
          sessionId: voucher.sessionId.toString(),
          cumulativeAmount: voucher.cumulativeAmount.toString(),
          expiry: voucher.expiry.toString(),
          signature,
          signer,
          served: served.toString(),
          redeemed: current?.redeemed ?? "0",
        });
        return true;
      });
    },
    flushed() {
      return flushEdgeDatabase(root);
    },
    async setServed(sessionId, served) {
      await db.transaction(() => {
        const current = db.get(key(sessionId));
        if (current !== undefined && BigInt(current.served) < served) db.put(key(sessionId), { ...current, served: served.toString() });
      });
    },
    async setRedeemed(sessionId, redeemed) {
      await db.transaction(() => {
        const current = db.get(key(sessionId));
        if (current !== undefined && BigInt(current.redeemed) < redeemed)
          db.put(key(sessionId), { ...current, redeemed: redeemed.toString() });
      });
    },
    async markLost(sessionId, reason) {
      await db.transaction(() => {
        const current = db.get(key(sessionId));
        if (current !== undefined) db.put(key(sessionId), { ...current, lost: reason });
      });
    },
    unredeemed() {
      const out: StoredSession[] = [];
      for (const { value } of db.getRange()) {
        if (value.lost === undefined && BigInt(value.cumulativeAmount) > BigInt(value.redeemed)) out.push(fromRow(value));
      }
      return out;
    },
    all() {
      return Array.from(db.getRange(), ({ value }) => fromRow(value));
    },
  };
}

function maxOf(a: bigint, b: bigint): bigint {
  return a > b ? a : b;
}
