import { expect } from "chai";

import { createLimiter, OverloadedError } from "../../../../edge/api/limiter.ts";

const limiter = (maxConcurrent: number, maxQueue: number, queueTimeoutMs = 10_000) =>
  createLimiter({ maxConcurrent, maxQueue, queueTimeoutMs, averageServiceMs: () => 2_000 });

describe("edge limiter", function () {
  it("serves maxConcurrent at once, queues maxQueue in order, refuses the rest with Retry-After", async function () {
    const l = limiter(2, 2);
    const a = l.enter(),
      b = l.enter(),
      c = l.enter(),
      d = l.enter();
    expect(l.inFlight).to.equal(2);
    expect(l.queued).to.equal(2);
    expect(() => l.enter())
      .to.throw(OverloadedError)
      .with.property("retryAfterSeconds", 2);
    const order: string[] = [];
    void c.ready.then(() => order.push("c"));
    void d.ready.then(() => order.push("d"));
    a.release();
    await c.ready;
    expect(order).to.deep.equal(["c"]);
    b.release();
    await d.ready;
    expect(order).to.deep.equal(["c", "d"]);
    expect(l.inFlight).to.equal(2);
    expect(l.queued).to.equal(0);
    c.release();
    d.release();
    expect(l.inFlight).to.equal(0);
  });

  it("releasing twice frees one slot only", function () {
    const l = limiter(1, 0);
    const a = l.enter();
    a.release();
    a.release();
    expect(l.inFlight).to.equal(0);
    l.enter();
    expect(() => l.enter()).to.throw(OverloadedError);
  });

  it("a queued request that times out is refused and leaves the line", async function () {
    const l = limiter(1, 1, 50);
    l.enter();
    const waiting = l.enter();
    await waiting.ready.then(
      () => expect.fail("granted"),
      (err) => expect(err).to.be.instanceOf(OverloadedError),
    );
    expect(l.queued).to.equal(0);
  });

  it("a queued request whose client leaves gives its place up", function () {
    const l = limiter(1, 1);
    const a = l.enter();
    const b = l.enter();
    b.release();
    expect(l.queued).to.equal(0);
    a.release();
    expect(l.inFlight).to.equal(0);
  });

  it("reports saturation", function () {
    const l = limiter(4, 4);
    l.enter();
    l.enter();
    expect(l.saturation()).to.equal(0.5);
  });
});
