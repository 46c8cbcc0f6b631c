// The chain's clock (lib/protocol/chainClock.ts) on a real Hardhat chain: it follows a chain that
// runs ahead of this machine's clock, falls back to this machine's when the chain lags, advances
// between reads, and keeps its last reading when the RPC fails.
import { expect } from "chai";
import { createPublicClient, custom, http } from "viem";

import { createChainClock } from "../../lib/protocol/chainClock.ts";
import { freePort } from "../../devnet/readiness.ts";
import { connect, type Connection } from "../helpers/protocol.ts";

describe("chain clock", function () {
  let conn: Connection;
  let client: ReturnType<typeof createPublicClient>;
  before(async function () {
    conn = await connect();
    client = createPublicClient({ transport: custom(conn.provider) });
  });

  it("follows a chain that runs ahead of this machine's clock", async function () {
    await conn.networkHelpers.time.increase(3_600);
    const clock = createChainClock(client);
    try {
      await clock.refresh();
      const chain = BigInt(await conn.networkHelpers.time.latest());
      const wall = BigInt(Math.floor(Date.now() / 1000));
      expect(chain > wall + 3_000n, "the chain is an hour ahead").to.equal(true);
      const now = clock.nowSeconds();
      expect(now >= chain && now <= chain + 2n, `${now} vs the chain's ${chain}`).to.equal(true);
    } finally {
      clock.stop();
    }
  });

  it("advances the reading by the time since it was read", async function () {
    let wallMs = Date.now();
    const clock = createChainClock(client, { wallNow: () => wallMs, refreshMs: 3_600_000 });
    try {
      await clock.refresh();
      const first = clock.nowSeconds();
      wallMs += 10_000;
      expect(clock.nowSeconds() - first).to.equal(10n);
    } finally {
      clock.stop();
    }
  });

  it("takes this machine's clock when the chain lags behind it", async function () {
    const ahead = 10 * 86_400_000;
    const clock = createChainClock(client, { wallNow: () => Date.now() + ahead });
    try {
      await clock.refresh();
      const wall = BigInt(Math.floor((Date.now() + ahead) / 1000));
      expect(clock.nowSeconds() >= wall && clock.nowSeconds() <= wall + 1n).to.equal(true);
    } finally {
      clock.stop();
    }
  });

  it("reports a failed read and falls back to this machine's clock while it has no reading", async function () {
    // A node that is not there: the read fails as an RPC outage does.
    const down = createPublicClient({ transport: http(`http://127.0.0.1:${await freePort()}`, { retryCount: 0, timeout: 1_000 }) });
    const errors: unknown[] = [];
    const clock = createChainClock(down, { onError: (err) => errors.push(err), refreshMs: 3_600_000 });
    try {
      await clock.refresh();
      expect(errors.length).to.be.at.least(1);
      const wall = BigInt(Math.floor(Date.now() / 1000));
      expect(clock.nowSeconds() >= wall && clock.nowSeconds() <= wall + 1n, "no reading yet: this machine's clock").to.equal(true);
    } finally {
      clock.stop();
    }
  });
});
