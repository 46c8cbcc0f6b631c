// An edge's circuit breaker: opens after the configured consecutive failures, lets exactly one
// trial through once the open time has passed (listing the edge as a candidate does not use it
// up), closes on its success, reopens for longer on its failure; a success resets the count.
import { expect } from "chai";

import { createBreaker } from "../../../router/dispatch/breaker.ts";

describe("router circuit breaker", function () {
  let now = 0;
  const breaker = () => createBreaker({ failures: 3, openMs: 1_000, now: () => now });
  beforeEach(() => {
    now = 1_000_000;
  });

  it("opens after three failures in a row, not after two separated by a success", function () {
    const b = breaker();
    b.failed();
    b.failed();
    b.succeeded();
    b.failed();
    b.failed();
    expect(b.state()).to.equal("closed");
    b.failed();
    expect(b.state()).to.equal("open");
    expect(b.allows()).to.equal(false);
  });

  it("lets one trial through when half-open, closes on its success", function () {
    const b = breaker();
    for (let i = 0; i < 3; i++) b.failed();
    now += 1_000;
    expect(b.state()).to.equal("half-open");
    // Listing candidates does not use up the trial; sending to the edge does.
    expect(b.allows()).to.equal(true);
    expect(b.allows()).to.equal(true);
    b.take();
    expect(b.allows()).to.equal(false);
    b.succeeded();
    expect(b.state()).to.equal("closed");
    expect(b.allows()).to.equal(true);
  });

  it("reopens for twice as long when the trial fails, and a successful probe closes it", function () {
    const b = breaker();
    for (let i = 0; i < 3; i++) b.failed();
    now += 1_000;
    expect(b.allows()).to.equal(true);
    b.take();
    b.failed();
    expect(b.state()).to.equal("open");
    now += 1_999;
    expect(b.state()).to.equal("open");
    now += 1;
    expect(b.state()).to.equal("half-open");
    b.probeSucceeded();
    expect(b.state()).to.equal("closed");
  });
});
