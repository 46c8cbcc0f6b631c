// Tenant limits on a real Redis: the token bucket counts tokens (a request takes its maximum and
// gets the unused part back), refills at the configured rate, says how long to wait, and refuses
// at once a request that could never fit; the spend limit holds across concurrent takers.
import { expect } from "chai";

import { createTenantLimiter } from "../../../router/tenants/limits.ts";
import { useScratchRedis } from "../../helpers/redis.ts";

describe("router tenant limits", function () {
  this.timeout(30_000);
  const scratch = useScratchRedis();
  let n = 0;

  it("takes tokens, not requests: a burst up to the bucket passes, the next waits about what it lacks", async function () {
    const limiter = createTenantLimiter(scratch.client, `limits-${++n}`);
    expect(await limiter.takeTokens("t", 6_000, 4_000)).to.deep.equal({ ok: true });
    expect(await limiter.takeTokens("t", 6_000, 2_000)).to.deep.equal({ ok: true });
    const refused = await limiter.takeTokens("t", 6_000, 600);
    expect(refused.ok).to.equal(false);
    // 6,000 per minute is 100 per second: 600 tokens take about 6 s to come back.
    if (!refused.ok) expect(refused.retryAfterMs).to.be.within(5_500, 6_100);
  });

  it("gives back what a request did not use", async function () {
    const limiter = createTenantLimiter(scratch.client, `limits-${++n}`);
    expect((await limiter.takeTokens("t", 1_000, 1_000)).ok).to.equal(true);
    expect((await limiter.takeTokens("t", 1_000, 300)).ok).to.equal(false);
    await limiter.giveTokens("t", 1_000, 400);
    expect((await limiter.takeTokens("t", 1_000, 300)).ok).to.equal(true);
  });

  it("refills at the rate: after a tenth of a minute a tenth of the bucket is back", async function () {
    const limiter = createTenantLimiter(scratch.client, `limits-${++n}`);
    expect((await limiter.takeTokens("t", 60_000, 60_000)).ok).to.equal(true);
    await new Promise((r) => setTimeout(r, 120));
    expect((await limiter.takeTokens("t", 60_000, 100)).ok).to.equal(true);
    expect((await limiter.takeTokens("t", 60_000, 100)).ok).to.equal(false);
  });

  it("refuses at once, as never fitting, a request above the whole bucket", async function () {
    const limiter = createTenantLimiter(scratch.client, `limits-${++n}`);
    expect(await limiter.takeTokens("t", 100, 101)).to.deep.equal({ ok: false, retryAfterMs: 0, neverFits: true });
  });

  it("holds the spend limit when many requests take at once, and counts corrections", async function () {
    const limiter = createTenantLimiter(scratch.client, `limits-${++n}`);
    const gwei = 10n ** 9n;
    const results = await Promise.all(Array.from({ length: 30 }, () => limiter.takeSpend("t", 10n * gwei, 100n * gwei)));
    expect(results.filter((r) => r.ok)).to.have.length(10);
    expect(await limiter.spent("t")).to.equal(100n * gwei);
    await limiter.adjustSpend("t", -35n * gwei);
    expect(await limiter.spent("t")).to.equal(65n * gwei);
    expect((await limiter.takeSpend("t", 30n * gwei, 100n * gwei)).ok).to.equal(true);
    expect((await limiter.takeSpend("t", 10n * gwei, undefined)).ok).to.equal(true);
  });
});
