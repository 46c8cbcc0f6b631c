// What the router learns about an edge's slots: its declared capacity, the slots it reports, and
// the slots it showed when it refused a request as full.
import { expect } from "chai";

import {
  edgeCandidate,
  newEdgeStats,
  recordCompletion,
  recordDispatch,
  recordLoadReport,
  recordRefusal,
} from "../../../router/dispatch/edgeStats.ts";

const identity = { key: "1", edgeId: 1n, region: "eu", capacity: 400 };
const price = { inputPerToken: 1n, outputPerToken: 1n };

describe("router edge statistics", function () {
  it("takes the declared capacity / 10 as slots, then the slots an edge reports", function () {
    const s = newEdgeStats();
    expect(edgeCandidate(identity, s, price, 0, 10_000).concurrency).to.equal(40);
    recordLoadReport(s, { type: "load", inFlight: 0, queued: 0, tokensPerSecond: 0, saturation: 0, maxConcurrent: 6, at: 0 }, 0);
    expect(edgeCandidate(identity, s, price, 0, 10_000).concurrency).to.equal(6);
  });

  it("believes an edge that refused a request as full has only the slots this router used there, for 30 s", function () {
    const s = newEdgeStats();
    for (let i = 0; i < 3; i++) recordDispatch(s);
    recordRefusal(s, 1_000);
    recordCompletion(s, undefined, 1_000, 10_000);
    expect(edgeCandidate(identity, s, price, 1_000, 10_000).concurrency).to.equal(2);
    expect(edgeCandidate(identity, s, price, 30_999, 10_000).concurrency).to.equal(2);
    expect(edgeCandidate(identity, s, price, 31_000, 10_000).concurrency).to.equal(40);
  });

  it("adjusts the last report by what this router sent and saw end since", function () {
    const s = newEdgeStats();
    recordDispatch(s);
    recordLoadReport(s, { type: "load", inFlight: 5, queued: 0, tokensPerSecond: 0, saturation: 0.5, at: 0 }, 0);
    recordDispatch(s);
    recordDispatch(s);
    expect(edgeCandidate(identity, s, price, 10, 10_000).reported?.inFlight).to.equal(7);
    recordCompletion(s, undefined, 20, 10_000);
    recordCompletion(s, undefined, 20, 10_000);
    recordCompletion(s, undefined, 20, 10_000);
    expect(edgeCandidate(identity, s, price, 30, 10_000).reported?.inFlight).to.equal(4);
  });
});
