// The voucher ledger on a real Redis: its Lua arithmetic on wei amounts far beyond 2^53 matches
// BigInt exactly (fast-check against a model), concurrent reservations each see the others, a
// recorded voucher never goes down, a dead router's reservation expires with its lease, and an
// edge's own account can raise what was settled, never lower it.
import { expect } from "chai";
import fc from "fast-check";

import { createVoucherLedger } from "../../../router/payment/ledger.ts";
import { useScratchRedis } from "../../helpers/redis.ts";

const WEI = 10n ** 18n;

describe("router voucher ledger", function () {
  this.timeout(60_000);
  const scratch = useScratchRedis();
  let n = 0;
  const fresh = () => createVoucherLedger(scratch.client, `ledger-test-${++n}`);

  it("keeps settled, reserved and ceiling exact in wei, whatever the order of reservations and settlements", async function () {
    const amount = fc.bigInt({ min: 0n, max: 10_000n * WEI });
    const op = fc.oneof(
      fc.record({ kind: fc.constant("reserve" as const), max: amount }),
      fc.record({ kind: fc.constant("settle" as const), pick: fc.nat(), fraction: fc.integer({ min: 0, max: 100 }) }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 30 }), async (ops) => {
        const ledger = fresh();
        const open: Array<{ id: string; max: bigint }> = [];
        let settled = 0n;
        let reserved = 0n;
        let ceiling = 0n;
        let id = 0;
        for (const o of ops) {
          if (o.kind === "reserve") {
            const r = await ledger.reserve(1n, 7n, `r${++id}`, o.max, 60_000);
            reserved += o.max;
            ceiling += o.max;
            open.push({ id: `r${id}`, max: o.max });
            expect(r.need).to.equal(settled + reserved);
            expect(r.ceiling).to.equal(ceiling);
          } else if (open.length > 0) {
            const [done] = open.splice(o.pick % open.length, 1);
            const actual = (done!.max * BigInt(o.fraction)) / 100n;
            await ledger.settle(1n, 7n, done!.id, done!.max, actual);
            reserved -= done!.max;
            settled += actual;
          }
        }
        expect(await ledger.snapshot(1n, 7n)).to.deep.include({ settled, reserved, ceiling });
      }),
      { numRuns: 40 },
    );
  });

  it("counts every concurrent reservation: the last of 50 at once needs all 50 maxima", async function () {
    const ledger = fresh();
    const max = 123_456_789_012_345_678n;
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => ledger.reserve(3n, 1n, `c${i}`, max, 60_000)));
    const needs = results.map((r) => r.need).sort((a, b) => (a < b ? -1 : 1));
    expect(needs).to.deep.equal(Array.from({ length: 50 }, (_, i) => BigInt(i + 1) * max));
  });

  it("records a voucher only when it is above the stored one, and hands back the higher one otherwise", async function () {
    const ledger = fresh();
    const high = { cumulativeAmount: 5n * WEI, signature: `0x${"11".repeat(65)}` as const, expiry: 100n };
    const low = { cumulativeAmount: 4n * WEI, signature: `0x${"22".repeat(65)}` as const, expiry: 100n };
    expect(await ledger.record(1n, 1n, high)).to.deep.equal(high);
    expect(await ledger.record(1n, 1n, low)).to.deep.equal(high);
    expect((await ledger.snapshot(1n, 1n)).signed).to.equal(5n * WEI);
    const r = await ledger.reserve(1n, 1n, "x", 1n, 60_000);
    expect(r.signed).to.deep.equal(high);
  });

  it("drops the reservation of a router that died once its lease has run out", async function () {
    const ledger = fresh();
    await ledger.reserve(2n, 2n, "dead", 9n * WEI, 50);
    expect((await ledger.snapshot(2n, 2n)).reserved).to.equal(9n * WEI);
    await new Promise((r) => setTimeout(r, 80));
    const next = await ledger.reserve(2n, 2n, "alive", 1n * WEI, 60_000);
    expect(next.need).to.equal(1n * WEI);
    // Settling the dead request late still counts what it cost, and does not touch the live reservation.
    await ledger.settle(2n, 2n, "dead", 9n * WEI, 2n * WEI);
    expect(await ledger.snapshot(2n, 2n)).to.deep.include({ settled: 2n * WEI, reserved: 1n * WEI });
  });

  it("raises what was settled to the edge's account of it, net of what is reserved, and never lowers it", async function () {
    const ledger = fresh();
    await ledger.reserve(4n, 4n, "a", 3n * WEI, 60_000);
    await ledger.settle(4n, 4n, "a", 3n * WEI, 1n * WEI);
    await ledger.reserve(4n, 4n, "b", 2n * WEI, 60_000);
    // The edge says it needs 4 WEI cumulative with this request's 2 reserved: it served 2, not 1.
    expect(await ledger.raiseSettled(4n, 4n, 4n * WEI)).to.equal(2n * WEI);
    expect(await ledger.raiseSettled(4n, 4n, 1n * WEI)).to.equal(2n * WEI);
  });
});
