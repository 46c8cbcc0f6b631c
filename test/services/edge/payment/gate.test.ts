// edge/payment/gate.ts (with store.ts and market.ts): admission of paid requests against the
// real ComputeMarket on the Hardhat network, vouchers in a real LMDB directory.
import { expect } from "chai";
import type { Hex } from "viem";

import { PaymentError } from "../../../../edge/payment/errors.ts";
import { encodeVoucherHeader } from "../../../../lib/protocol/voucherHeader.ts";
import type { VoucherStore } from "../../../../edge/payment/store.ts";
import {
  COST,
  headerFor,
  MIN_LIFETIME,
  paymentStack,
  until,
  type PaymentStack,
  type PaymentStackOptions,
  voucherAt,
} from "../../../helpers/edgePayment.ts";
import { deployMarketWithSession, MODEL, signVoucherIn, type SessionEnv } from "../../../helpers/market.ts";
import { connect, type Connection, TOKEN } from "../../../helpers/protocol.ts";

/** Whether `promise` has settled, after every callback already queued has run. */
async function settled(promise: Promise<unknown>): Promise<boolean> {
  let done = false;
  void promise.then(
    () => (done = true),
    () => (done = true),
  );
  await new Promise((resolve) => setImmediate(resolve));
  return done;
}

/**
 * The store's flushes, held until the test lets them through: `calls` counts the flushes asked
 * for, `release()` lets every one asked so far complete (after the store's own flush), `free()`
 * lets every one through from then on, `hold()` holds them again.
 */
function heldFlushes() {
  let held: (() => void)[] = [];
  let free = false;
  const control = {
    calls: 0,
    release() {
      for (const go of held) go();
      held = [];
    },
    free() {
      free = true;
      control.release();
    },
    hold() {
      free = false;
    },
    wrap(store: VoucherStore): VoucherStore {
      return {
        ...store,
        flushed() {
          control.calls += 1;
          if (free) return store.flushed();
          return new Promise<void>((resolve) => held.push(resolve)).then(() => store.flushed());
        },
      };
    },
  };
  return control;
}

/** Awaits `promise` and returns the PaymentError it rejected with (fails if it resolved). */
async function refusal(promise: Promise<unknown>): Promise<PaymentError> {
  try {
    await promise;
  } catch (error) {
    expect(error).to.be.instanceOf(PaymentError);
    return error as PaymentError;
  }
  expect.fail("expected a PaymentError");
}

describe("payment gate", () => {
  let conn: Connection;
  let stack: PaymentStack | undefined;
  let flushControl: ReturnType<typeof heldFlushes> | undefined;
  before(async () => {
    conn = await connect();
  });
  afterEach(async () => {
    flushControl?.free();
    flushControl = undefined;
    await stack?.close();
    stack = undefined;
  });

  async function sessionFixture() {
    return deployMarketWithSession(conn);
  }

  async function setup(options?: PaymentStackOptions): Promise<{ env: SessionEnv; s: PaymentStack; now: bigint }> {
    const env = await conn.networkHelpers.loadFixture(sessionFixture);
    stack = await paymentStack(conn, env, undefined, options);
    return { env, s: stack, now: stack.clock.now };
  }

  const accepted = (s: PaymentStack) =>
    s.metrics.vouchers.get().then((m) => m.values.find((v) => v.labels.result === "accepted")?.value ?? 0);

  describe("admit", () => {
    it("admits a valid payer voucher and reserves then settles the actual cost", async () => {
      const { env, s, now } = await setup();
      const a = await s.gate.admit({
        voucherHeader: await headerFor(env, env.payer, voucherAt(env, now, 2n * COST)),
        model: MODEL,
        maxCost: COST,
      });
      expect(a.payer).to.equal(env.payer.address);
      expect(a.sessionId).to.equal(env.sessionId);
      expect(s.gate.snapshot(env.sessionId)).to.deep.equal({ best: 2n * COST, served: 0n, reserved: COST });
      a.settle(COST / 4n);
      expect(s.gate.snapshot(env.sessionId)).to.deep.equal({ best: 2n * COST, served: COST / 4n, reserved: 0n });
      await a.durable;
      expect(s.store.get(env.sessionId)?.voucher.cumulativeAmount).to.equal(2n * COST); // on disk once `durable` resolves
      expect(await accepted(s)).to.equal(1);
    });

    it("admits a voucher signed by the payer's authorized gateway key", async () => {
      const { env, s, now } = await setup();
      const a = await s.gate.admit({
        voucherHeader: await headerFor(env, env.gateway, voucherAt(env, now, COST)),
        model: MODEL,
        maxCost: COST,
      });
      expect(a.payer).to.equal(env.payer.address);
      await a.durable;
      expect(s.store.get(env.sessionId)?.signer).to.equal(env.gateway.address);
    });

    it("release drops the reservation so the headroom is reusable", async () => {
      const { env, s, now } = await setup();
      const header = await headerFor(env, env.payer, voucherAt(env, now, COST));
      (await s.gate.admit({ voucherHeader: header, model: MODEL, maxCost: COST })).release();
      const again = await s.gate.admit({ voucherHeader: header, model: MODEL, maxCost: COST });
      again.settle(COST);
      expect(s.gate.snapshot(env.sessionId)).to.deep.equal({ best: COST, served: COST, reserved: 0n });
    });

    it("settle and release count once, whichever comes first (the serving layer may call both)", async () => {
      const { env, s, now } = await setup();
      const a = await s.gate.admit({
        voucherHeader: await headerFor(env, env.payer, voucherAt(env, now, 3n * COST)),
        model: MODEL,
        maxCost: COST,
      });
      a.settle(COST / 2n);
      a.settle(COST);
      a.release();
      expect(s.gate.snapshot(env.sessionId)).to.deep.equal({ best: 3n * COST, served: COST / 2n, reserved: 0n });
      const b = await s.gate.admit({
        voucherHeader: await headerFor(env, env.payer, voucherAt(env, now, 3n * COST)),
        model: MODEL,
        maxCost: COST,
      });
      b.release();
      b.release();
      b.settle(COST);
      expect(s.gate.snapshot(env.sessionId)).to.deep.equal({ best: 3n * COST, served: COST / 2n, reserved: 0n });
    });
  });

  describe("refusals", () => {
    it("payment_required without a header, amount due = served + reserved + maxCost of a known session", async () => {
      const { env, s, now } = await setup();
      let e = await refusal(s.gate.admit({ voucherHeader: undefined, model: MODEL, maxCost: COST }));
      expect([e.status, e.code, e.amountDue]).to.deep.equal([402, "payment_required", COST]);
      const a = await s.gate.admit({
        voucherHeader: await headerFor(env, env.payer, voucherAt(env, now, 3n * COST)),
        model: MODEL,
        maxCost: COST,
      });
      a.settle(COST);
      await s.gate.admit({ voucherHeader: await headerFor(env, env.payer, voucherAt(env, now, 3n * COST)), model: MODEL, maxCost: COST });
      e = await refusal(s.gate.admit({ voucherHeader: undefined, model: MODEL, maxCost: COST, sessionId: env.sessionId }));
      expect(e.amountDue).to.equal(3n * COST); // 1 served + 1 in flight + 1 asked
    });

    it("400 invalid_voucher for a malformed header", async () => {
      const { s } = await setup();
      const e = await refusal(s.gate.admit({ voucherHeader: "not-a-voucher", model: MODEL, maxCost: COST }));
      expect([e.status, e.code]).to.deep.equal([400, "invalid_voucher"]);
    });

    it("insufficient_voucher with the right amount due when underpaid", async () => {
      const { env, s, now } = await setup();
      const a = await s.gate.admit({
        voucherHeader: await headerFor(env, env.payer, voucherAt(env, now, 2n * COST)),
        model: MODEL,
        maxCost: COST,
      });
      a.settle(COST);
      // best = 2, served = 1: a request of up to 1.5 needs 2.5
      const e = await refusal(
        s.gate.admit({
          voucherHeader: await headerFor(env, env.payer, voucherAt(env, now, 2n * COST)),
          model: MODEL,
          maxCost: (3n * COST) / 2n,
        }),
      );
      expect([e.status, e.code, e.amountDue]).to.deep.equal([402, "insufficient_voucher", COST + (3n * COST) / 2n]);
    });

    it("refuses a replayed voucher once its value is used up", async () => {
      const { env, s, now } = await setup();
      const header = await headerFor(env, env.payer, voucherAt(env, now, COST));
      (await s.gate.admit({ voucherHeader: header, model: MODEL, maxCost: COST })).settle(COST);
      const e = await refusal(s.gate.admit({ voucherHeader: header, model: MODEL, maxCost: COST }));
      expect([e.code, e.amountDue]).to.deep.equal(["insufficient_voucher", 2n * COST]);
    });

    it("voucher_unauthorized_signer for a forged voucher (signed by an outsider)", async () => {
      const { env, s, now } = await setup();
      const e = await refusal(
        s.gate.admit({ voucherHeader: await headerFor(env, env.outsider, voucherAt(env, now, COST)), model: MODEL, maxCost: COST }),
      );
      expect(e.code).to.equal("voucher_unauthorized_signer");
      expect(e.message)
        .to.contain(env.outsider.address)
        .and.to.match(/forged or altered/);
    });

    it("follows the payer of a voucher that checks out for good, and a forged voucher's payer for one poll only", async () => {
      const { env, s, now } = await setup();
      const payer = env.payer.address;
      const thaws: string[] = [];
      s.market.onThawStarted((p) => thaws.push(p));
      await refusal(
        s.gate.admit({ voucherHeader: await headerFor(env, env.outsider, voucherAt(env, now, COST)), model: MODEL, maxCost: COST }),
      );
      await s.market.refresh(); // the poll that includes the payer the forged voucher named, then drops it
      await env.market.connect(env.payer).thaw(TOKEN);
      await s.market.refresh();
      expect(thaws).to.deep.equal([], "a forged voucher does not make the edge follow its payer");
      (
        await s.gate.admit({ voucherHeader: await headerFor(env, env.payer, voucherAt(env, now, COST)), model: MODEL, maxCost: COST })
      ).settle(COST);
      await s.market.refresh();
      await s.market.refresh();
      await env.market.connect(env.payer).thaw(2n * TOKEN);
      await s.market.refresh();
      expect(thaws).to.deep.equal([payer]);
    });

    it("voucher_unauthorized_signer for a voucher whose amount was raised after signing", async () => {
      const { env, s, now } = await setup();
      const v = voucherAt(env, now, COST);
      const signature = (await signVoucherIn(env.domain, env.payer, v)) as Hex;
      const e = await refusal(
        s.gate.admit({
          voucherHeader: encodeVoucherHeader({ ...v, cumulativeAmount: 100n * COST }, signature),
          model: MODEL,
          maxCost: COST,
        }),
      );
      expect(e.code).to.equal("voucher_unauthorized_signer");
      expect(s.store.get(env.sessionId)).to.equal(undefined);
    });

    it("voucher_wrong_edge for a voucher of another edge", async () => {
      const { env, s, now } = await setup();
      const e = await refusal(
        s.gate.admit({
          voucherHeader: await headerFor(env, env.payer, voucherAt(env, now, COST, { edgeId: env.edge2 })),
          model: MODEL,
          maxCost: COST,
        }),
      );
      expect(e.code).to.equal("voucher_wrong_edge");
    });

    it("voucher_expired when the voucher leaves less than minVoucherLifetimeSeconds to redeem", async () => {
      const { env, s, now } = await setup();
      const e = await refusal(
        s.gate.admit({
          voucherHeader: await headerFor(env, env.payer, voucherAt(env, now, COST, { expiry: now + BigInt(MIN_LIFETIME) - 1n })),
          model: MODEL,
          maxCost: COST,
        }),
      );
      expect(e.code).to.equal("voucher_expired");
      await s.gate.admit({
        voucherHeader: await headerFor(env, env.payer, voucherAt(env, now, COST, { expiry: now + BigInt(MIN_LIFETIME) })),
        model: MODEL,
        maxCost: COST,
      });
    });

    it("session_unknown, session_model_mismatch and voucher_payer_mismatch", async () => {
      const { env, s, now } = await setup();
      let e = await refusal(
        s.gate.admit({
          voucherHeader: await headerFor(env, env.payer, voucherAt(env, now, COST, { sessionId: 99n })),
          model: MODEL,
          maxCost: COST,
        }),
      );
      expect(e.code).to.equal("session_unknown");
      e = await refusal(
        s.gate.admit({ voucherHeader: await headerFor(env, env.payer, voucherAt(env, now, COST)), model: "other/model", maxCost: COST }),
      );
      expect(e.code).to.equal("session_model_mismatch");
      e = await refusal(
        s.gate.admit({
          voucherHeader: await headerFor(env, env.payer2, voucherAt(env, now, COST, { payer: env.payer2.address as Hex })),
          model: MODEL,
          maxCost: COST,
        }),
      );
      expect(e.code).to.equal("voucher_payer_mismatch");
    });

    it("session_closed once the payer closes the session (seen through the event follower)", async () => {
      const { env, s, now } = await setup();
      const header = await headerFor(env, env.payer, voucherAt(env, now, 5n * COST));
      await s.gate.admit({ voucherHeader: header, model: MODEL, maxCost: COST });
      await env.market.connect(env.payer).closeSession(env.sessionId);
      await s.market.refresh();
      const e = await refusal(s.gate.admit({ voucherHeader: header, model: MODEL, maxCost: COST }));
      expect(e.code).to.equal("session_closed");
    });

    it("session_expired after the session's expiry", async () => {
      const { env, s, now } = await setup();
      const header = await headerFor(env, env.payer, voucherAt(env, now, COST, { expiry: env.sessionExpiry + 86_400n }));
      s.clock.now = env.sessionExpiry + 1n;
      const e = await refusal(s.gate.admit({ voucherHeader: header, model: MODEL, maxCost: COST }));
      expect(e.code).to.equal("session_expired");
    });

    it("voucher_unauthorized_signer after revokeSigner, for new and already-held gateway vouchers", async () => {
      const { env, s, now } = await setup();
      (
        await s.gate.admit({
          voucherHeader: await headerFor(env, env.gateway, voucherAt(env, now, 3n * COST)),
          model: MODEL,
          maxCost: COST,
        })
      ).settle(COST);
      await env.market.connect(env.payer).revokeSigner(env.gateway.address);
      await s.market.refresh();
      // a replay of the held voucher: its signer no longer counts, so it is checked again
      let e = await refusal(
        s.gate.admit({ voucherHeader: await headerFor(env, env.gateway, voucherAt(env, now, 3n * COST)), model: MODEL, maxCost: COST }),
      );
      expect(e.code).to.equal("voucher_unauthorized_signer");
      e = await refusal(
        s.gate.admit({ voucherHeader: await headerFor(env, env.gateway, voucherAt(env, now, 4n * COST)), model: MODEL, maxCost: COST }),
      );
      expect(e.code).to.equal("voucher_unauthorized_signer");
      // the payer's own voucher replaces the dead one, and must cover what was served (1) + this request
      e = await refusal(
        s.gate.admit({ voucherHeader: await headerFor(env, env.payer, voucherAt(env, now, COST)), model: MODEL, maxCost: COST }),
      );
      expect([e.code, e.amountDue]).to.deep.equal(["insufficient_voucher", 2n * COST]);
      await (
        await s.gate.admit({ voucherHeader: await headerFor(env, env.payer, voucherAt(env, now, 2n * COST)), model: MODEL, maxCost: COST })
      ).durable;
      expect(s.store.get(env.sessionId)?.signer).to.equal(env.payer.address);
    });

    it("escrow_insufficient when escrow cannot pay what the edge would be owed, budget_exhausted past the budget", async () => {
      const { env, s } = await setup();
      // payer2: 3 tokens in escrow, a session with a budget of 100
      await env.market.connect(env.payer2).deposit(env.payer2.address, 3n * TOKEN);
      const expiry = BigInt(await conn.networkHelpers.time.latest()) + 86_400n;
      await env.market.connect(env.payer2).openSession(MODEL, 100n * TOKEN, expiry);
      await s.syncClock();
      const v = { ...voucherAt(env, s.clock.now, 10n * COST), payer: env.payer2.address as Hex, sessionId: 2n };
      const header = await headerFor(env, env.payer2, v);
      const held = await Promise.all([1, 2, 3].map(() => s.gate.admit({ voucherHeader: header, model: MODEL, maxCost: COST })));
      let e = await refusal(s.gate.admit({ voucherHeader: header, model: MODEL, maxCost: COST }));
      expect(e.code).to.equal("escrow_insufficient");
      for (const a of held) a.release();
      // session 1 has a budget of 500 and 1,000 in escrow: 501 passes escrow but not budget
      await s.syncClock();
      e = await refusal(
        s.gate.admit({
          voucherHeader: await headerFor(env, env.payer, voucherAt(env, s.clock.now, 501n * COST)),
          model: MODEL,
          maxCost: 501n * COST,
        }),
      );
      expect(e.code).to.equal("budget_exhausted");
    });
  });

  describe("concurrency", () => {
    it("admits N concurrent requests whose vouchers arrive shuffled, then refuses the replay N+1", async () => {
      const { env, s, now } = await setup();
      const n = 24;
      const headers = await Promise.all(
        Array.from({ length: n }, (_, k) => headerFor(env, env.gateway, voucherAt(env, now, BigInt(k + 1) * COST))),
      );
      // deterministic shuffle (LCG), so a failure reproduces
      const order = headers
        .map((h, i) => ({ h, key: (i * 7919 + 13) % 101 }))
        .sort((a, b) => a.key - b.key)
        .map((x) => x.h);
      const admitted = await Promise.all(order.map((voucherHeader) => s.gate.admit({ voucherHeader, model: MODEL, maxCost: COST })));
      expect(admitted).to.have.length(n);
      await Promise.all(admitted.map((a) => a.durable));
      expect(s.gate.snapshot(env.sessionId)).to.deep.equal({ best: BigInt(n) * COST, served: 0n, reserved: BigInt(n) * COST });
      for (const a of admitted) a.settle(COST);
      const e = await refusal(s.gate.admit({ voucherHeader: headers[n - 1], model: MODEL, maxCost: COST }));
      expect([e.code, e.amountDue]).to.deep.equal(["insufficient_voucher", BigInt(n + 1) * COST]);
      expect(s.store.get(env.sessionId)?.voucher.cumulativeAmount).to.equal(BigInt(n) * COST);
    });
  });

  describe("durability", () => {
    it("sync: no output before the voucher is flushed, even once it is committed", async () => {
      const flushes = heldFlushes();
      flushControl = flushes;
      const { env, s, now } = await setup({ gate: { durability: { mode: "sync" } }, wrapStore: flushes.wrap });
      const a = await s.gate.admit({
        voucherHeader: await headerFor(env, env.payer, voucherAt(env, now, COST)),
        model: MODEL,
        maxCost: COST,
      });
      await s.store.flushed(); // the commit and LMDB's own flush are done
      expect(s.store.get(env.sessionId)?.voucher.cumulativeAmount).to.equal(COST);
      expect(flushes.calls).to.equal(1);
      expect(await settled(a.durable)).to.equal(false);
      flushes.release();
      await a.durable;
    });

    it("interval: serves once the voucher is committed, while the gate follows its flush", async () => {
      const flushes = heldFlushes();
      flushControl = flushes;
      const { env, s, now } = await setup({
        gate: { durability: { mode: "interval", flushIntervalMs: 20 }, clockMs: () => 0 },
        wrapStore: flushes.wrap,
      });
      const a = await s.gate.admit({
        voucherHeader: await headerFor(env, env.payer, voucherAt(env, now, COST)),
        model: MODEL,
        maxCost: COST,
      });
      await a.durable;
      expect(s.store.get(env.sessionId)?.voucher.cumulativeAmount).to.equal(COST);
      // Served before any flush; the gate's flush follows (half an interval later) and is held.
      await until(async () => flushes.calls === 1);
      const b = await s.gate.admit({
        voucherHeader: await headerFor(env, env.payer, voucherAt(env, now, 2n * COST)),
        model: MODEL,
        maxCost: COST,
      });
      await b.durable;
      expect(flushes.calls).to.equal(1); // one flush at a time
      flushes.release();
      await until(async () => flushes.calls === 2); // the voucher committed meanwhile gets its own
      flushes.release();
    });

    it("interval: once the oldest unflushed voucher is flushIntervalMs old, requests wait for the flush", async () => {
      const flushes = heldFlushes();
      flushControl = flushes;
      const clock = { ms: 0 };
      const { env, s, now } = await setup({
        gate: { durability: { mode: "interval", flushIntervalMs: 1000 }, clockMs: () => clock.ms },
        wrapStore: flushes.wrap,
      });
      const a = await s.gate.admit({
        voucherHeader: await headerFor(env, env.payer, voucherAt(env, now, COST)),
        model: MODEL,
        maxCost: COST,
      });
      await a.durable;
      clock.ms = 1000; // exactly at the bound: still serving on commits
      const b = await s.gate.admit({
        voucherHeader: await headerFor(env, env.payer, voucherAt(env, now, 2n * COST)),
        model: MODEL,
        maxCost: COST,
      });
      await b.durable;
      clock.ms = 1001; // the disk is behind
      const c = await s.gate.admit({
        voucherHeader: await headerFor(env, env.payer, voucherAt(env, now, 3n * COST)),
        model: MODEL,
        maxCost: COST,
      });
      await s.store.flushed();
      expect(await settled(c.durable)).to.equal(false);
      flushes.free();
      await c.durable;
      // Once the gate's own flush (half an interval later) has caught up, requests serve on their commit again.
      await until(async () => flushes.calls >= 2);
      await s.store.flushed();
      flushes.hold();
      const d = await s.gate.admit({
        voucherHeader: await headerFor(env, env.payer, voucherAt(env, now, 4n * COST)),
        model: MODEL,
        maxCost: COST,
      });
      await d.durable;
    });
  });

  describe("restart", () => {
    it("keeps the best voucher and counts it as served (conservative), so nothing is served twice", async () => {
      const { env, s, now } = await setup();
      const header3 = await headerFor(env, env.payer, voucherAt(env, now, 3n * COST));
      const a = await s.gate.admit({ voucherHeader: header3, model: MODEL, maxCost: COST });
      a.settle(COST);
      await s.gate.admit({ voucherHeader: header3, model: MODEL, maxCost: COST }); // in flight at the "crash"
      const dir = s.dataDir;
      await s.close(true);
      stack = await paymentStack(conn, env, dir);
      const r = stack;
      expect(r.store.get(env.sessionId)?.voucher.cumulativeAmount).to.equal(3n * COST);
      expect(r.gate.snapshot(env.sessionId)).to.deep.equal({ best: 3n * COST, served: 3n * COST, reserved: 0n });
      const e = await refusal(r.gate.admit({ voucherHeader: header3, model: MODEL, maxCost: COST }));
      expect([e.code, e.amountDue]).to.deep.equal(["insufficient_voucher", 4n * COST]);
      await r.gate.admit({ voucherHeader: await headerFor(env, env.payer, voucherAt(env, now, 4n * COST)), model: MODEL, maxCost: COST });
    });
  });
});
