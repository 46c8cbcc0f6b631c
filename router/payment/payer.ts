// Paying one edge for one request on a tenant's behalf: reserve the request's maximum in the
// ledger, and hand back the voucher header that covers it — the stored highest voucher when it
// already does, else a new one signed for exactly settled + reserved. When the edge answers that
// it needs more (its own account of what it served: a response the router never saw complete),
// `reconcile` signs up to what it asks once, and only within what the router could owe it (the
// ceiling: every maximum ever reserved on that pair). `settle` ends the reservation at the
// request's actual cost.
import type { Address, Hex, TypedDataDomain } from "viem";

import { signDigest } from "../../lib/protocol/fastTypedData.ts";
import { createVoucherVerifier } from "../../lib/protocol/fastVoucher.ts";
import type { Voucher } from "../../lib/protocol/eip712.ts";
import { encodeVoucherHeader } from "../../lib/protocol/voucherHeader.ts";
import type { VoucherLedger, SignedVoucherRef } from "./ledger.ts";
import type { TenantSession } from "./sessions.ts";

export interface Payment {
  /** The `x-tideway-voucher` header to send. */
  header: string;
  /**
   * Resolves once a newly signed voucher is recorded in the ledger. It is written while the
   * request travels (one Redis round trip less before the first byte); await it before settling.
   * A voucher that reached the edge but not the ledger costs nothing: the edge judges by the
   * highest voucher it holds, and the ledger only lets the router reuse signatures.
   */
  recorded: Promise<unknown>;
  /** The cumulative amount it carries. */
  cumulativeAmount: bigint;
  /** What the edge may at most claim on this pair (the reconcile bound). */
  ceiling: bigint;
}

export interface Payer {
  /** Reserves `maxCost` for `requestId` on (session, edge) and returns the voucher to send. */
  reserve(payer: Address, session: TenantSession, edgeId: bigint, requestId: string, maxCost: bigint): Promise<Payment>;
  /**
   * The edge asked for `amountDue` cumulative: returns a voucher for it when it is within the
   * pair's ceiling, else undefined (the edge asks more than it can be owed).
   */
  reconcile(payer: Address, session: TenantSession, edgeId: bigint, amountDue: bigint, ceiling: bigint): Promise<Payment | undefined>;
  settle(session: TenantSession, edgeId: bigint, requestId: string, maxCost: bigint, actualCost: bigint): Promise<void>;
  /** The router's voucher key address (what tenants authorize). */
  readonly address: Address;
}

export interface PayerOptions {
  ledger: VoucherLedger;
  domain: TypedDataDomain;
  privateKey: Hex;
  address: Address;
  /** How long a reservation lives if its router dies (longer than any request). */
  leaseMs: number;
}

export function createPayer(options: PayerOptions): Payer {
  const { ledger } = options;
  const codec = createVoucherVerifier(options.domain);

  function sign(voucher: Voucher, sessionId: bigint, edgeId: bigint): { ref: SignedVoucherRef; recorded: Promise<SignedVoucherRef> } {
    // Native libsecp256k1 over the precomputed EIP-712 digest: ~20 µs, on every request's path.
    const ref = {
      cumulativeAmount: voucher.cumulativeAmount,
      signature: signDigest(options.privateKey, codec.digest(voucher)),
      expiry: voucher.expiry,
    };
    const recorded = ledger.record(sessionId, edgeId, ref);
    // Awaited by the caller later; a rejection is not unhandled meanwhile.
    recorded.catch(() => undefined);
    return { ref, recorded };
  }

  function header(
    payer: Address,
    session: TenantSession,
    edgeId: bigint,
    ref: SignedVoucherRef,
    ceiling: bigint,
    recorded: Promise<unknown> = Promise.resolve(),
  ): Payment {
    const voucher: Voucher = { payer, edgeId, sessionId: session.id, cumulativeAmount: ref.cumulativeAmount, expiry: ref.expiry };
    return { header: encodeVoucherHeader(voucher, ref.signature), recorded, cumulativeAmount: ref.cumulativeAmount, ceiling };
  }

  return {
    address: options.address,
    async reserve(payer, session, edgeId, requestId, maxCost) {
      const r = await ledger.reserve(session.id, edgeId, requestId, maxCost, options.leaseMs);
      if (r.signed !== undefined && r.signed.cumulativeAmount >= r.need && r.signed.expiry === session.expiry)
        return header(payer, session, edgeId, r.signed, r.ceiling);
      const amount = r.signed !== undefined && r.signed.cumulativeAmount > r.need ? r.signed.cumulativeAmount : r.need;
      const { ref, recorded } = sign(
        { payer, edgeId, sessionId: session.id, cumulativeAmount: amount, expiry: session.expiry },
        session.id,
        edgeId,
      );
      return header(payer, session, edgeId, ref, r.ceiling, recorded);
    },
    async reconcile(payer, session, edgeId, amountDue, ceiling) {
      if (amountDue > ceiling) return undefined;
      await ledger.raiseSettled(session.id, edgeId, amountDue);
      const { ref, recorded } = sign(
        { payer, edgeId, sessionId: session.id, cumulativeAmount: amountDue, expiry: session.expiry },
        session.id,
        edgeId,
      );
      await recorded;
      return header(payer, session, edgeId, ref, ceiling);
    },
    settle: (session, edgeId, requestId, maxCost, actualCost) => ledger.settle(session.id, edgeId, requestId, maxCost, actualCost),
  };
}
