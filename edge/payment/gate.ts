// Admission of paid requests: a request is served only if the best voucher the edge holds for
// its session covers everything served, everything in flight and this request's maximum cost,
// and the payer's escrow and the session's budget can still pay it.
//
// Vouchers are cumulative, and gateways send one per request over many connections, so they
// arrive out of order. The gate therefore judges every request against the highest voucher seen
// (`best`), not against the one it carries: a voucher not above `best` changes nothing and needs
// no signature check; a higher one is verified (native secp256k1, ~20k/s) and becomes `best`.
// All awaits (chain reads, the signature) happen first; the check-and-reserve step is then
// synchronous, so concurrent admissions of one session cannot both spend the same headroom.
// No output leaves before the `best` a request relies on is stored (LMDB group commit), so a crash
// of the edge's process can never leave served work without a stored voucher covering it. Whether
// stored means flushed too is the operator's choice (`durability`): "sync" waits for the disk
// flush, so a crash of the machine loses nothing either; "interval" waits for the commit only (the
// database then commits without flushing, edge/store/database.ts) and flushes every half
// flushIntervalMs while vouchers wait for it. A machine crash then loses at most the vouchers of
// the last flushIntervalMs (each covered by the payer's next voucher, as vouchers are
// cumulative): once the oldest unflushed voucher is older than that, requests wait for the flush
// again, so a disk that falls behind cannot widen the exposure.
import type { Logger } from "pino";
import type { Address, Hex } from "viem";

import type { Voucher } from "../../lib/protocol/eip712.ts";
import { InvalidVoucherSignatureError } from "../../lib/protocol/fastVoucher.ts";
import type { VoucherVerifier } from "../../lib/protocol/fastVoucher.ts";
import { decodeVoucherHeader, VoucherHeaderError } from "../../lib/protocol/voucherHeader.ts";
import type { EdgeMetrics } from "../metrics.ts";
import { PaymentError } from "./errors.ts";
import type { MarketEscrow, MarketSession, MarketView } from "./market.ts";
import type { VoucherStore } from "./store.ts";

/** A request the gate let through, with its cost reserved. Call exactly one of settle/release. */
export interface Admission {
  payer: Address;
  sessionId: bigint;
  /** Resolves once the voucher this admission relies on is stored (see `durability`); no output may leave before. Rejects with a PaymentError (503). */
  durable: Promise<void>;
  /** The request completed at `actualCost` (≤ the reserved maxCost): counts it as served. */
  settle(actualCost: bigint): void;
  /** The request failed before serving anything: drops the reservation. */
  release(): void;
}

/** What {PaymentGate.admit} needs to know about a request. */
export interface AdmitRequest {
  /** The `x-tideway-voucher` header value, if any. */
  voucherHeader: string | undefined;
  /** The model the request asks for (must be the session's). */
  model: string;
  /** The most this request can cost (max tokens × price), in token units. */
  maxCost: bigint;
  /** The session, when known without a voucher (only used for the amount due of an unpaid request). */
  sessionId?: bigint;
}

export interface PaymentGate {
  /**
   * Admits a request or throws a {PaymentError} saying why not (see the file comment and the
   * brief's rules, checked in order).
   */
  admit(request: AdmitRequest): Promise<Admission>;
  /** The in-memory accounting of a session (for tests and diagnostics). */
  snapshot(sessionId: bigint): { best: bigint | undefined; served: bigint; reserved: bigint };
  /** Writes the served amounts still pending; call before closing the database. */
  close(): Promise<void>;
}

/** Options of {createPaymentGate}. */
export interface PaymentGateOptions {
  /** The durable voucher store (createVoucherStore on the edge's database). */
  db: VoucherStore;
  market: MarketView;
  verifier: VoucherVerifier;
  /** This edge's id: vouchers for other edges are refused. */
  edgeId: bigint;
  logger: Logger;
  metrics: EdgeMetrics;
  /** A voucher must stay valid at least this long, so that the edge has time to redeem it. */
  minVoucherLifetimeSeconds: number;
  /** Current unix time in seconds (default: the system clock). */
  now?: () => bigint;
  /** When a new voucher counts as stored (default "sync"; see the file comment). */
  durability?: VoucherDurability;
  /** A monotonic clock in milliseconds for the flush bound (default: performance.now). */
  clockMs?: () => number;
}

/** "sync": a request waits for its voucher's disk flush; "interval": for its commit, flushes at most `flushIntervalMs` behind. */
export type VoucherDurability = { mode: "sync" } | { mode: "interval"; flushIntervalMs: number };

interface Best {
  voucher: Voucher;
  signature: Hex;
  signer: Address;
  /** Resolves when this voucher is stored as `durability` requires. */
  durable: Promise<unknown>;
}

interface SessionState {
  best: Best | undefined;
  served: bigint;
  reserved: bigint;
}

const ZERO = "0x0000000000000000000000000000000000000000";

/**
 * Creates the payment gate.
 * @param options See {PaymentGateOptions}.
 */
export function createPaymentGate(options: PaymentGateOptions): PaymentGate {
  const { db: store, market, verifier, edgeId, logger, metrics } = options;
  const minLifetime = BigInt(options.minVoucherLifetimeSeconds);
  const now = options.now ?? (() => BigInt(Math.floor(Date.now() / 1000)));
  const states = new Map<bigint, SessionState>();
  const durability = options.durability ?? { mode: "sync" };
  const clockMs = options.clockMs ?? (() => performance.now());

  function state(sessionId: bigint): SessionState {
    let s = states.get(sessionId);
    if (s === undefined) {
      const stored = store.get(sessionId);
      s =
        stored === undefined
          ? { best: undefined, served: 0n, reserved: 0n }
          : {
              best: { voucher: stored.voucher, signature: stored.signature, signer: stored.signer, durable: Promise.resolve() },
              served: stored.served,
              reserved: 0n,
            };
      states.set(sessionId, s);
    }
    return s;
  }

  // Served amounts are written at most once a second per session, not once per request: a lost
  // write costs nothing, since the store restarts with served := max(served, best voucher).
  const dirty = new Set<bigint>();
  let saveTimer: NodeJS.Timeout | undefined;
  let closed = false;
  function saveServed(): Promise<unknown> {
    clearTimeout(saveTimer);
    saveTimer = undefined;
    const writes: Promise<void>[] = [];
    for (const id of dirty) {
      const served = states.get(id)?.served;
      if (served === undefined) continue;
      writes.push(
        store.setServed(id, served).catch((error: unknown) => {
          logger.warn({ event: "payment.served_write_failed", sessionId: id.toString(), err: error }, "could not store served amount");
        }),
      );
    }
    dirty.clear();
    return Promise.all(writes);
  }
  function saveServedSoon(sessionId: bigint): void {
    dirty.add(sessionId);
    if (closed || saveTimer !== undefined) return;
    saveTimer = setTimeout(() => void saveServed(), 1000);
    saveTimer.unref();
  }

  // Interval mode: vouchers committed and not yet flushed, oldest first, and the next flush (one
  // at a time, half an interval after a voucher starts waiting for it).
  const unflushed: { seq: number; at: number }[] = [];
  let committed = 0;
  let flushTimer: NodeJS.Timeout | undefined;
  let flushing = false;
  let behindLogged = false;
  function scheduleFlush(): void {
    if (durability.mode === "sync" || flushing || flushTimer !== undefined || unflushed.length === 0) return;
    flushTimer = setTimeout(flushNow, durability.flushIntervalMs / 2);
    flushTimer.unref();
  }
  function flushNow(): void {
    flushTimer = undefined;
    flushing = true;
    const upTo = committed;
    store.flushed().then(
      () => {
        flushing = false;
        while (unflushed.length > 0 && unflushed[0]!.seq <= upTo) unflushed.shift();
        if (unflushed.length === 0) behindLogged = false;
        scheduleFlush();
      },
      (error: unknown) => {
        // Retried half an interval later; meanwhile the bound makes requests wait for a flush.
        flushing = false;
        logger.error({ event: "payment.flush_failed", err: error }, "could not flush vouchers to disk");
        scheduleFlush();
      },
    );
  }
  function stored(write: Promise<boolean>): Promise<unknown> {
    if (durability.mode === "sync") return write.then(() => store.flushed());
    return write.then(() => {
      unflushed.push({ seq: ++committed, at: clockMs() });
      scheduleFlush();
    });
  }
  /** In interval mode, whether the disk is more than flushIntervalMs behind: then requests wait for it. */
  function flushBehind(): boolean {
    if (durability.mode === "sync" || unflushed.length === 0) return false;
    const behind = clockMs() - unflushed[0]!.at > durability.flushIntervalMs;
    if (behind && !behindLogged) {
      behindLogged = true;
      logger.warn(
        { event: "payment.flush_behind", flushIntervalMs: durability.flushIntervalMs, unflushed: unflushed.length },
        "the disk flush of vouchers fell behind: requests wait for it until it catches up",
      );
    }
    return behind;
  }

  function refuse(
    code: ConstructorParameters<typeof PaymentError>[0],
    message: string,
    extra: { amountDue?: bigint; cause?: unknown } = {},
  ): never {
    metrics.vouchers.inc({ result: code });
    throw new PaymentError(code, message, extra);
  }

  /** Runs chain reads; an RPC failure is the edge's problem, not the payer's: 503. */
  async function chain<T>(what: string, read: () => Promise<T>): Promise<T> {
    try {
      return await read();
    } catch (error) {
      logger.warn({ event: "payment.chain_unavailable", what, err: error }, "could not read ComputeMarket");
      return refuse("payment_unavailable", `the edge could not read ${what} from ComputeMarket; retry shortly`, { cause: error });
    }
  }

  async function admit(request: AdmitRequest): Promise<Admission> {
    const { maxCost, model } = request;
    if (maxCost < 0n) throw new RangeError(`maxCost ${maxCost} is negative`);

    // 1. A voucher, well-formed.
    if (request.voucherHeader === undefined || request.voucherHeader === "") {
      const known = request.sessionId === undefined ? undefined : states.get(request.sessionId);
      const due = known === undefined ? maxCost : known.served + known.reserved + maxCost;
      refuse(
        "payment_required",
        `this edge serves paid requests only: send an x-tideway-voucher header with a voucher for at least ${due}`,
        { amountDue: due },
      );
    }
    let voucher: Voucher;
    let signature: Hex;
    try {
      ({ voucher, signature } = decodeVoucherHeader(request.voucherHeader));
    } catch (error) {
      if (error instanceof VoucherHeaderError) refuse("invalid_voucher", error.message, { cause: error });
      throw error;
    }
    const sessionId = voucher.sessionId;

    // 2. For this edge.
    if (voucher.edgeId !== edgeId) {
      refuse(
        "voucher_wrong_edge",
        `the voucher is for edge ${voucher.edgeId}, this is edge ${edgeId}: sign one for this edge (vouchers pay one edge each)`,
      );
    }

    // 3. An open session of this payer, for this model.
    const session: MarketSession | undefined = await chain(`session ${sessionId}`, () => market.session(sessionId));
    const t = now();
    if (session === undefined)
      refuse("session_unknown", `session ${sessionId} does not exist on ComputeMarket: open one with openSession and use its id`);
    if (session.closed) refuse("session_closed", `session ${sessionId} was closed by its payer: open a new session`);
    if (t > session.expiry) refuse("session_expired", `session ${sessionId} expired at ${session.expiry}: open a new session`);
    if (voucher.payer !== session.payer)
      refuse("voucher_payer_mismatch", `the voucher names payer ${voucher.payer} but session ${sessionId} belongs to ${session.payer}`);
    if (model !== session.model)
      refuse("session_model_mismatch", `session ${sessionId} is for model "${session.model}", the request asks for "${model}"`);

    // 4. Time to redeem.
    if (voucher.expiry < t + minLifetime) {
      refuse(
        "voucher_expired",
        `the voucher expires at ${voucher.expiry}; this edge needs vouchers valid until at least ${t + minLifetime} (${minLifetime} s from now) to redeem them`,
      );
    }

    // 5. The signature, if the voucher could change anything.
    const payer = session.payer;
    const st = state(sessionId);
    const judged = st.best;
    const [bestSignerOk, escrow, redeemed] = await Promise.all([
      judged === undefined || judged.signer === payer
        ? true
        : chain("a signer authorization", () => market.isAuthorizedSigner(payer, judged.signer)),
      chain(`the escrow of ${payer}`, () => market.escrow(payer)),
      chain(`what session ${sessionId} paid this edge`, () => market.redeemed(sessionId)),
    ]);
    const bestExpiring = judged !== undefined && judged.voucher.expiry < t + minLifetime;
    const bestUsable = judged !== undefined && bestSignerOk && !bestExpiring;
    if (judged !== undefined && !bestSignerOk) {
      logger.warn(
        {
          event: "payment.best_signer_revoked",
          sessionId: sessionId.toString(),
          signer: judged.signer,
          amount: judged.voucher.cumulativeAmount.toString(),
        },
        "the best voucher's signer was revoked: it still redeems for a thawing period, but new requests need a voucher of an authorized signer",
      );
    }
    const above = judged === undefined || voucher.cumulativeAmount > judged.voucher.cumulativeAmount;
    const renews =
      judged !== undefined &&
      bestExpiring &&
      bestSignerOk &&
      voucher.cumulativeAmount === judged.voucher.cumulativeAmount &&
      voucher.expiry > judged.voucher.expiry;
    let candidate: { voucher: Voucher; signature: Hex; signer: Address } | undefined;
    if (above || !bestSignerOk || renews) {
      let signer: Address;
      try {
        signer = verifier.recoverSigner(voucher, signature);
      } catch (error) {
        if (error instanceof InvalidVoucherSignatureError) refuse("invalid_voucher", error.message, { cause: error });
        throw error;
      }
      const authorized =
        signer === payer || (signer !== ZERO && (await chain("a signer authorization", () => market.isAuthorizedSigner(payer, signer))));
      if (!authorized) {
        refuse(
          "voucher_unauthorized_signer",
          `the voucher's signature recovers ${signer}, which is neither payer ${payer} nor a signer it authorized: the voucher was forged or altered after signing, or its signer was revoked`,
        );
      }
      candidate = { voucher, signature, signer };
      // A payer whose voucher checks out is followed for good (a forged one names a payer only
      // until the market view's next poll).
      market.follow(payer);
    }

    // From here on: no awaits until the reservation is made (atomic per session).
    let replaced = false;
    if (candidate !== undefined) {
      const current = st.best;
      const replaceUnusable = current === judged && (!bestSignerOk || renews);
      if (current === undefined || candidate.voucher.cumulativeAmount > current.voucher.cumulativeAmount || replaceUnusable) {
        st.best = {
          ...candidate,
          durable: stored(
            store.putBest(candidate.voucher, candidate.signature, candidate.signer, { replace: replaceUnusable, served: st.served }),
          ),
        };
        replaced = true;
      }
    }
    const best = st.best;
    // 6. Enough voucher.
    const required = st.served + st.reserved + maxCost;
    const usable = best !== undefined && (best !== judged || bestUsable);
    if (!usable || best.voucher.cumulativeAmount < required) {
      const due = best !== undefined && !usable && bestExpiring ? maxOf(required, best.voucher.cumulativeAmount) : required;
      refuse(
        "insufficient_voucher",
        `sign a voucher for at least ${due} (served ${st.served}, in flight ${st.reserved}, this request up to ${maxCost}${best === undefined ? "" : `; the best voucher held is for ${best.voucher.cumulativeAmount}${usable ? "" : " and can no longer be used"}`})`,
        { amountDue: due },
      );
    }
    // 7. Escrow and budget can pay it.
    if (required - redeemed > escrowAvailable(escrow)) {
      refuse(
        "escrow_insufficient",
        `payer ${payer} has ${escrow.balance} in escrow, less than the ${required - redeemed} this edge would be owed: deposit more`,
      );
    }
    if (required > redeemed + (session.budget - session.spent)) {
      refuse(
        "budget_exhausted",
        `session ${sessionId} has ${session.budget - session.spent} of its budget left, not enough for ${required - redeemed} more: open a new session`,
      );
    }
    st.reserved += maxCost;

    // 8. Stored before serving: the caller awaits `durable` before any output leaves, so the
    // write overlaps the queue wait and the model's work instead of adding to them.
    const written = flushBehind() ? best.durable.then(() => store.flushed()) : best.durable;
    const durable = written.then(
      () => undefined,
      (error: unknown) => {
        logger.error({ event: "payment.persist_failed", sessionId: sessionId.toString(), err: error }, "could not store a voucher");
        throw new PaymentError("payment_unavailable", "the edge could not store the voucher; retry shortly", { cause: error });
      },
    );
    // Nobody may await it if the request fails first; the failure is logged above.
    durable.catch(() => {});
    metrics.vouchers.inc({ result: "accepted" });
    if (replaced)
      logger.debug(
        { event: "payment.best_voucher", sessionId: sessionId.toString(), amount: voucher.cumulativeAmount.toString() },
        "new best voucher",
      );

    let done = false;
    return {
      payer,
      sessionId,
      durable,
      settle(actualCost: bigint) {
        if (done) return;
        done = true;
        let cost = actualCost;
        if (cost > maxCost || cost < 0n) {
          logger.warn(
            {
              event: "payment.cost_out_of_range",
              sessionId: sessionId.toString(),
              actualCost: actualCost.toString(),
              maxCost: maxCost.toString(),
            },
            "actual cost outside [0, maxCost]: clamped",
          );
          cost = cost < 0n ? 0n : maxCost;
        }
        st.reserved -= maxCost;
        st.served += cost;
        // Lazy on purpose: the restart rule (served := max(served, best)) covers a lost write.
        saveServedSoon(sessionId);
      },
      release() {
        if (done) return;
        done = true;
        st.reserved -= maxCost;
      },
    };
  }

  return {
    admit,
    async close() {
      closed = true;
      clearTimeout(flushTimer);
      await saveServed();
      await store.flushed();
    },
    snapshot(sessionId) {
      const s = states.get(sessionId) ?? state(sessionId);
      return { best: s.best?.voucher.cumulativeAmount, served: s.served, reserved: s.reserved };
    },
  };
}

/** Escrow that pays edges: the whole balance (thawing tokens keep paying until withdrawn). */
function escrowAvailable(escrow: MarketEscrow): bigint {
  return escrow.balance;
}

function maxOf(a: bigint, b: bigint): bigint {
  return a > b ? a : b;
}
