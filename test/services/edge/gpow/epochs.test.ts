// edge/gpow/epochs.ts against the real EdgeStaking (the EpochClock) deployed through Ignition:
// the tracker reports the chain's epoch, follows time travel on refresh and on its own polls,
// steps past a boundary between polls from local elapsed time, never goes backwards, and keeps
// its cached epoch through RPC errors.
import { expect } from "chai";
import { pino } from "pino";
import { createPublicClient, custom, getAddress } from "viem";
import type { Address, EIP1193RequestFn } from "viem";

import { createEpochTracker, EpochTrackerClosedError, EpochUnknownError, type EpochTracker } from "../../../../edge/gpow/epochs.ts";
import { connect, deployProtocol, EPOCH, type Connection } from "../../../helpers/protocol.ts";

const logger = pino({ level: "silent" });

/** Resolves once `check()` holds, polling every 10 ms; fails after `ms`. */
async function until(check: () => boolean, ms = 3_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("condition not reached in time");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe("epoch tracker (edge/gpow/epochs)", () => {
  let conn: Connection;
  let tracker: EpochTracker | undefined;
  before(async () => {
    conn = await connect();
  });
  afterEach(() => {
    tracker?.close();
    tracker = undefined;
  });

  async function deployed() {
    return deployProtocol(conn);
  }

  /** The protocol, a viem client whose RPC can be made to fail, and a local clock the test moves. */
  async function setup() {
    const env = await conn.networkHelpers.loadFixture(deployed);
    const rpc = { failing: false };
    const request = (async (args: Parameters<EIP1193RequestFn>[0]) => {
      if (rpc.failing) throw new Error("connection refused (simulated)");
      return conn.provider.request(args as { method: string; params?: unknown[] });
    }) as EIP1193RequestFn;
    const publicClient = createPublicClient({ transport: custom({ request }, { retryCount: 0 }) });
    const clock = { ms: 1_000_000 };
    const staking: Address = getAddress(await env.staking.getAddress());
    const make = (pollIntervalMs: number, now?: () => number) => {
      tracker = createEpochTracker({ publicClient, staking, pollIntervalMs, logger, now });
      return tracker;
    };
    return { ...env, rpc, clock, make };
  }

  describe("current", () => {
    it("throws EpochUnknownError before the first read", async () => {
      const { make } = await setup();
      expect(() => make(1_000).current()).to.throw(EpochUnknownError);
    });

    it("is the chain's currentEpoch after start, and follows time travel on refresh", async () => {
      const { staking, make } = await setup();
      const t = make(60_000);
      await t.start();
      expect(t.current()).to.equal(await staking.currentEpoch());
      await conn.networkHelpers.time.increase(EPOCH * 2n);
      await t.refresh();
      const chainEpoch = await staking.currentEpoch();
      expect(chainEpoch).to.be.greaterThanOrEqual(2n);
      expect(t.current()).to.equal(chainEpoch);
    });

    it("steps past the boundary from local elapsed time between polls", async () => {
      const { staking, clock, make } = await setup();
      const t = make(60_000, () => clock.ms);
      await t.start();
      const epoch = await staking.currentEpoch();
      const now = BigInt(await conn.networkHelpers.time.latest());
      const toBoundary = Number((await staking.epochStartTime(epoch + 1n)) - now);
      clock.ms += (toBoundary - 1) * 1_000;
      expect(t.current()).to.equal(epoch);
      clock.ms += 1_000;
      expect(t.current()).to.equal(epoch + 1n);
      // Two more whole epochs of local time: two more steps, without reading the chain.
      clock.ms += Number(EPOCH) * 2_000;
      expect(t.current()).to.equal(epoch + 3n);
    });

    it("never goes backwards, even when the chain it reads is reverted", async () => {
      const { staking, make } = await setup();
      const t = make(60_000);
      await t.start();
      const snapshot = await conn.networkHelpers.takeSnapshot();
      await conn.networkHelpers.time.increase(EPOCH);
      await t.refresh();
      const later = t.current();
      expect(later).to.equal(await staking.currentEpoch());
      await snapshot.restore();
      expect(await staking.currentEpoch()).to.equal(later - 1n);
      await t.refresh();
      expect(t.current()).to.equal(later);
    });
  });

  describe("polling", () => {
    it("picks up a new epoch on its own poll", async () => {
      const { staking, make } = await setup();
      const t = make(20);
      await t.start();
      const before = t.current();
      await conn.networkHelpers.time.increase(EPOCH);
      await until(() => t.current() === before + 1n);
      expect(t.current()).to.equal(await staking.currentEpoch());
    });

    it("keeps the cached epoch through RPC errors and recovers when the RPC does", async () => {
      const { staking, rpc, make } = await setup();
      const t = make(20);
      await t.start();
      const before = t.current();
      rpc.failing = true;
      let error: unknown;
      await t.refresh().catch((err: unknown) => (error = err));
      expect((error as Error).message).to.contain("connection refused");
      expect(t.current()).to.equal(before);
      await new Promise((resolve) => setTimeout(resolve, 100)); // several failed polls
      expect(t.current()).to.equal(before);
      rpc.failing = false;
      await conn.networkHelpers.time.increase(EPOCH);
      await until(() => t.current() === before + 1n);
      expect(t.current()).to.equal(await staking.currentEpoch());
    });

    it("start resolves only after a first successful read, retrying while the RPC fails", async () => {
      const { staking, rpc, make } = await setup();
      rpc.failing = true;
      const t = make(20);
      let ready = false;
      const started = t.start().then(() => (ready = true));
      await new Promise((resolve) => setTimeout(resolve, 80));
      expect(ready).to.equal(false);
      rpc.failing = false;
      await started;
      expect(t.current()).to.equal(await staking.currentEpoch());
    });

    it("close rejects a start still waiting for the chain", async () => {
      const { rpc, make } = await setup();
      rpc.failing = true;
      const t = make(20);
      const started = t.start().then(
        () => undefined,
        (err: unknown) => err,
      );
      t.close();
      expect(await started).to.be.instanceOf(EpochTrackerClosedError);
    });
  });
});
