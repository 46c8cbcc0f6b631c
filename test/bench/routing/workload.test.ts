// bench/routing/workload.ts and oracle.ts: the arrivals have the shapes and rates the scenarios
// define, and the oracle serves a hand-checked case exactly.
import { expect } from "chai";

import { fluidShedBound, runOracle } from "../../../bench/routing/oracle.ts";
import {
  type Arrival,
  capacityRps,
  edgeSet,
  generateArrivals,
  holdMs,
  interarrival,
  meanShape,
  mulberry32,
  type Scenario,
  scenario,
} from "../../../bench/routing/workload.ts";

function cv(values: number[]): number {
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  const variance = values.reduce((a, b) => a + (b - mean) ** 2, 0) / values.length;
  return Math.sqrt(variance) / mean;
}

describe("bench/routing workload", () => {
  it("draws interarrival times with the asked mean and coefficient of variation", () => {
    const random = mulberry32(7);
    for (const want of [1, 2]) {
      const draws = Array.from({ length: 50_000 }, () => interarrival(random, 10, want));
      const mean = draws.reduce((a, b) => a + b, 0) / draws.length;
      expect(mean).to.be.closeTo(10, 0.3);
      expect(cv(draws)).to.be.closeTo(want, 0.1);
    }
  });

  it("generates the same arrivals for the same seed, in time order, at the scenario's load", () => {
    const def = scenario("steady85", { scale: 0.25, timeScale: 0.25 });
    const a = generateArrivals(def);
    expect(generateArrivals(def)).to.deep.equal(a);
    expect(generateArrivals({ ...def, seed: 2 })).to.not.deep.equal(a);
    expect(a.every((x, i) => i === 0 || x.at >= a[i - 1].at)).to.equal(true);
    const { prompt, output } = meanShape(def);
    const offered = a.length / (def.durationMs / 1000);
    expect(offered / capacityRps(def.edges, prompt, output)).to.be.closeTo(0.85, 0.1);
  });

  it("scales edges and rates together", () => {
    const full = scenario("surge");
    const small = scenario("surge", { scale: 0.125 });
    expect(full.edges).to.have.length(64);
    expect(small.edges).to.have.length(8);
    expect(full.surge?.peakUsers).to.equal(10_000);
    const peak = (s: Scenario) => Math.max(...s.phases.map((p) => p.rate[1]));
    const perSlot = (s: Scenario) => peak(s) / s.edges.reduce((n, e) => n + e.engine.maxSequences, 0);
    expect(perSlot(small) / perSlot(full)).to.be.closeTo(1, 0.15);
    expect(edgeSet(6).map((e) => `${e.size}${e.region}`)).to.deep.equal(["1eu", "2eu", "4eu", "1us", "2us", "4us"]);
  });

  it("runs a conversation's turns after the previous turn's intended end, its prompt growing by the history it caches", () => {
    const def = scenario("kill", { scale: 0.25, timeScale: 0.1 });
    const turns = new Map<string, Arrival[]>();
    for (const a of generateArrivals(def)) turns.set(a.conversation, [...(turns.get(a.conversation) ?? []), a]);
    const long = [...turns.values()].filter((t) => t.length >= 3);
    expect(long.length).to.be.greaterThan(10);
    for (const t of long)
      for (let k = 1; k < t.length; k++) {
        const prev = t[k - 1];
        const think = def.conversations?.thinkMs ?? 0;
        expect(t[k].at).to.be.closeTo(prev.at + holdMs(def.edges[0].engine, prev.promptTokens, prev.outputTokens) + think, 1e-6);
        expect(t[k].prefix).to.deep.equal({ key: prev.conversation, tokens: prev.promptTokens + prev.outputTokens });
        expect(t[k].promptTokens).to.be.greaterThan(prev.promptTokens + prev.outputTokens);
        expect(t[k].affinityKey).to.equal(prev.conversation);
      }
  });

  it("sends the hot prefix group its share of the hotspot's requests", () => {
    const def = scenario("hotspot", { scale: 0.25, timeScale: 0.25 });
    const arrivals = generateArrivals(def);
    const conversations = new Map<string, string>();
    for (const a of arrivals) conversations.set(a.conversation, a.prefix?.key ?? "");
    const hot = [...conversations.values()].filter((k) => k === "p0").length / conversations.size;
    expect(hot).to.be.closeTo(0.3, 0.05);
    expect(arrivals.every((a) => a.prefix !== undefined && a.affinityKey === a.prefix.key)).to.equal(true);
  });
});

describe("bench/routing oracle", () => {
  /** One 1× edge (8 slots) with RTT 5 ms; `arrivals` as given. */
  function tiny(arrivals: Omit<Arrival, "id" | "tenant" | "conversation" | "turn">[]): { def: Scenario; arrivals: Arrival[] } {
    const def: Scenario = { ...scenario("steady50"), edges: edgeSet(1), events: [] };
    return {
      def,
      arrivals: arrivals.map((a, id) => ({ id, tenant: "t", conversation: `c${id}`, turn: 0, ...a })),
    };
  }

  it("starts a request when a slot frees, on the edge's slots, and sheds one that cannot start by its deadline", () => {
    const one = { at: 0, priority: "interactive" as const, promptTokens: 60, outputTokens: 51 };
    // Nine at once on eight slots: the ninth waits for the first to end.
    const { def, arrivals } = tiny(Array.from({ length: 9 }, () => one));
    const run = runOracle(def, arrivals);
    expect(run.completed).to.equal(9);
    // Alone, TTFT = RTT 5 ms + 60 tokens at 6000/s = 15 ms.
    expect(run.ttftMs.p50).to.be.closeTo(15, 0.05);
    // The first holds its slot 10 ms of prefill + 50 steps of 20 ms (alone on the edge when it started).
    expect(run.ttftMs.p999).to.be.closeTo(10 + 50 * 20 + 15, 1);
    const late = tiny([...Array.from({ length: 8 }, () => ({ ...one, outputTokens: 1000 })), one]);
    const shed = runOracle(late.def, late.arrivals);
    expect(shed.shed).to.equal(1);
    expect(shed.completed).to.equal(8);
  });

  it("is never below the fluid bound on the surge's shed", () => {
    const def = scenario("surge", { scale: 0.125, timeScale: 0.1 });
    const arrivals = generateArrivals(def);
    const bound = fluidShedBound(def, arrivals);
    expect(bound).to.be.greaterThan(0);
    expect(runOracle(def, arrivals).shed).to.be.at.least(bound);
    expect(fluidShedBound(scenario("steady85", { scale: 0.125, timeScale: 0.1 }))).to.equal(0);
  });
});
