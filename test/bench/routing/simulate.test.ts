// bench/routing/simulate.ts and oracle.ts at a small size (9 edges, a few hundred to a few
// thousand requests): runs are reproducible, the oracle bounds every policy, the admission queue
// never pushes an edge past its slots where direct round robin does, and nothing admitted is lost.
import { expect } from "chai";

import { fluidShedBound, runOracle } from "../../../bench/routing/oracle.ts";
import { simulateScenario } from "../../../bench/routing/simulate.ts";
import { capacityRps, generateArrivals, meanShape, type Scenario, scenario } from "../../../bench/routing/workload.ts";

/** A steady scenario on 9 edges at `load` of their capacity for `seconds`. */
function steady(load: number, seconds: number): Scenario {
  const def = scenario("steady50", { scale: 9 / 48 });
  const { prompt, output } = meanShape(def);
  const rate = load * capacityRps(def.edges, prompt, output);
  const durationMs = seconds * 1000;
  return { ...def, load, durationMs, phases: [{ fromMs: 0, toMs: durationMs, rate: [rate, rate] }] };
}

describe("bench/routing simulation", function () {
  this.timeout(30_000);

  it("gives the same result for the same seed, and another for another seed", () => {
    const def = steady(0.85, 20);
    const strip = ({ wallMs: _, ...rest }: ReturnType<typeof simulateScenario>) => rest;
    const a = strip(simulateScenario(def, "tideway"));
    const b = strip(simulateScenario(def, "tideway"));
    expect(a.requests).to.be.greaterThan(300);
    expect(a).to.deep.equal(b);
    const other = strip(simulateScenario({ ...def, seed: 2 }, "tideway"));
    expect(other).to.not.deep.equal(a);
  });

  it("has no policy beat the oracle on median time to first token", () => {
    const def = steady(0.85, 30);
    const arrivals = generateArrivals(def);
    const oracle = runOracle(def, arrivals);
    for (const policy of ["tideway", "round-robin", "random", "least-outstanding", "power-of-two", "peak-ewma"]) {
      const run = simulateScenario(def, policy, { arrivals });
      expect(run.ttftMs.p50, policy).to.be.at.least(oracle.ttftMs.p50);
    }
  });

  it("never pushes an edge past its slots in queue mode, where direct round robin does at 120 % load", () => {
    const def = steady(1.2, 30);
    const arrivals = generateArrivals(def);
    const tideway = simulateScenario(def, "tideway", { arrivals });
    const roundRobin = simulateScenario(def, "round-robin", { arrivals });
    expect(tideway.mode).to.equal("queue");
    expect(tideway.overCapacity).to.deep.equal({ requests: 0, edges: 0 });
    // Past capacity, the queue sheds what cannot start in time, and loses nothing it admitted.
    expect(tideway.shed).to.be.greaterThan(0);
    expect(tideway.lost).to.equal(0);
    expect(roundRobin.overCapacity.requests).to.be.greaterThan(0);
    expect(roundRobin.overCapacity.edges).to.be.greaterThan(0);
    expect(roundRobin.shed).to.equal(0);
  });

  it("resumes the streams of killed edges on others in queue mode: no admitted request is lost", () => {
    const def = scenario("kill", { scale: 9 / 48, timeScale: 0.25 });
    const run = simulateScenario(def, "tideway");
    expect(def.events.filter((e) => e.kind === "kill")).to.have.length(2);
    expect(run.requests).to.be.greaterThan(300);
    expect(run.resumed).to.be.greaterThan(0);
    expect(run.lost).to.equal(0);
    expect(run.completed + run.shed).to.equal(run.requests);
    expect(run.slowedEdgeShare).to.be.a("number");
  });

  it("fails over an attempt that has no first token 10 s after the edge's headers, as the router does, up to 3 attempts", () => {
    // Direct round robin at 150 %: the small edges' own queues grow for a minute.
    const run = simulateScenario(steady(1.5, 60), "round-robin");
    expect(run.resumed, "attempts failed over").to.be.greaterThan(0);
    expect(run.lost, "requests out of attempts").to.be.greaterThan(0);
    // No first token later than three attempts' timeouts (plus the network): clients would wait 60 s.
    expect(run.ttftMs.p999).to.be.below(3 * 10_000 + 1_000);
    expect(run.ttftMs.p99).to.be.above(10_000);
  });

  it("bounds the surge's shedding from below with the fluid bound", () => {
    const def = scenario("surge", { scale: 9 / 64, timeScale: 0.1 });
    const arrivals = generateArrivals(def);
    const bound = fluidShedBound(def, arrivals);
    expect(bound).to.be.greaterThan(0);
    expect(runOracle(def, arrivals).shed).to.be.at.least(bound);
    expect(simulateScenario(def, "tideway", { arrivals }).shed).to.be.at.least(bound);
  });
});
