// bench/routing/engine.ts on a virtual clock: token times follow the batching, queueing, prefix
// cache, slow-down and kill rules its header states.
import { expect } from "chai";

import { createEngine, type EngineListener, type EngineRequest, type EngineSpec } from "../../../bench/routing/engine.ts";
import { createVirtualClock } from "../../../bench/routing/virtualClock.ts";

const SPEC: EngineSpec = { maxSequences: 4, prefillTokensPerSecond: 1000, decodeMs: 10, batchSlowdown: 1 };

interface Trace {
  tokens: number[];
  doneAt?: number;
  error?: string;
}

function run(spec: EngineSpec, requests: EngineRequest[], before?: (engine: ReturnType<typeof createEngine>) => void) {
  const clock = createVirtualClock();
  const engine = createEngine(spec, clock);
  before?.(engine);
  const traces: Trace[] = requests.map(() => ({ tokens: [] }));
  requests.forEach((request, i) => {
    const trace = traces[i];
    const listener: EngineListener = {
      token(index, atMs) {
        expect(index).to.equal(trace.tokens.length);
        trace.tokens.push(atMs);
      },
      done(atMs) {
        trace.doneAt = atMs;
      },
      error(reason) {
        trace.error = reason;
      },
    };
    engine.submit(request, listener);
  });
  return { clock, engine, traces };
}

const gaps = (t: Trace) => t.tokens.slice(1).map((at, i) => at - t.tokens[i]);

describe("bench/routing engine", () => {
  it("prefills the prompt at the prefill rate, then emits one token per decode step until done", () => {
    const { clock, traces, engine } = run(SPEC, [{ promptTokens: 100, outputTokens: 5 }]);
    clock.run();
    expect(traces[0].tokens).to.deep.equal([100, 110, 120, 130, 140]);
    expect(traces[0].doneAt).to.equal(140);
    expect(engine.running()).to.equal(0);
    expect(clock.pending()).to.equal(0);
  });

  it("slows every step as the batch grows", () => {
    const alone = run(SPEC, [{ promptTokens: 10, outputTokens: 20 }]);
    alone.clock.run();
    // Prefills so fast that the four decode side by side from the first step.
    const full = run(
      { ...SPEC, prefillTokensPerSecond: 1e9 },
      Array.from({ length: 4 }, () => ({ promptTokens: 10, outputTokens: 20 })),
    );
    full.clock.run();
    // Four running: each step takes 10 × (1 + 3/4) ms.
    expect(gaps(alone.traces[0]).every((g) => g === 10)).to.equal(true);
    expect(
      gaps(full.traces[3])
        .slice(1)
        .every((g) => Math.abs(g - 17.5) < 1e-9),
    ).to.equal(true);
    expect(full.traces[3].doneAt).to.be.greaterThan(alone.traces[0].doneAt as number);
  });

  it("queues requests beyond maxSequences in its own FIFO and starts one when a slot frees", () => {
    const requests = Array.from({ length: 6 }, (_, i) => ({ promptTokens: 10, outputTokens: 3 + i }));
    const { clock, engine, traces } = run(SPEC, requests);
    expect(engine.running()).to.equal(4);
    expect(engine.waiting()).to.equal(2);
    clock.run();
    const firstEnd = Math.min(...traces.slice(0, 4).map((t) => t.doneAt as number));
    // The fifth starts only when the first of the four ends, the sixth after the second.
    expect(traces[4].tokens[0]).to.be.greaterThan(firstEnd);
    expect(traces[5].tokens[0]).to.be.greaterThan(traces[1].doneAt as number);
    expect(traces.every((t, i) => t.tokens.length === requests[i].outputTokens && t.doneAt !== undefined)).to.equal(true);
    expect(engine.waiting()).to.equal(0);
  });

  it("skips a cached prefix's prefill on a hit and counts it", () => {
    const spec = { ...SPEC, prefixCacheTokens: 1000 };
    const clock = createVirtualClock();
    const engine = createEngine(spec, clock);
    const firstToken: number[] = [];
    const submitAt = (at: number) =>
      clock.setTimer(at, () => {
        const startedAt = clock.now();
        engine.submit(
          { promptTokens: 500, outputTokens: 1, prefix: { key: "system", tokens: 400 } },
          { token: (_i, atMs) => firstToken.push(atMs - startedAt), done() {}, error() {} },
        );
      });
    submitAt(0);
    submitAt(1000);
    clock.run();
    expect(firstToken).to.deep.equal([500, 100]);
    expect(engine.cacheStats()).to.deep.equal({ lookups: 2, hits: 1, savedTokens: 400 });
  });

  it("keeps the longest prefix computed under a key, so a conversation's next turn reuses its whole history", () => {
    const spec = { ...SPEC, maxSequences: 1, prefixCacheTokens: 1000 };
    const { clock, engine, traces } = run(spec, [
      { promptTokens: 300, outputTokens: 1, prefix: { key: "c1", tokens: 200 } },
      { promptTokens: 500, outputTokens: 1, prefix: { key: "c1", tokens: 400 } },
      { promptTokens: 700, outputTokens: 1, prefix: { key: "c1", tokens: 600 } },
    ]);
    clock.run();
    // Miss (300 prefilled), hit on 200 (300 prefilled), hit on 400 (300 prefilled).
    expect(traces.map((t) => t.tokens[0])).to.deep.equal([300, 600, 900]);
    expect(engine.cacheStats()).to.deep.equal({ lookups: 3, hits: 2, savedTokens: 600 });
  });

  it("evicts the least recently used prefix when the cache is full", () => {
    const spec = { ...SPEC, maxSequences: 1, prefixCacheTokens: 800 };
    const keys = ["a", "b", "a", "c", "b", "a"];
    const { clock, engine } = run(
      spec,
      keys.map((key) => ({ promptTokens: 500, outputTokens: 1, prefix: { key, tokens: 400 } })),
    );
    clock.run();
    // a miss, b miss, a hit, c miss (evicts b), b miss (evicts a), a miss.
    expect(engine.cacheStats().hits).to.equal(1);
  });

  it("slow(5) makes prefill and every step five times as long", () => {
    const normal = run(SPEC, [{ promptTokens: 100, outputTokens: 5 }]);
    normal.clock.run();
    const slowed = run(SPEC, [{ promptTokens: 100, outputTokens: 5 }], (engine) => engine.slow(5));
    slowed.clock.run();
    expect(slowed.traces[0].tokens).to.deep.equal(normal.traces[0].tokens.map((t) => t * 5));
  });

  it("kill() errors every running and waiting sequence, and later submits", () => {
    const requests = Array.from({ length: 6 }, () => ({ promptTokens: 10, outputTokens: 50 }));
    const { clock, engine, traces } = run(SPEC, requests);
    clock.run(100);
    expect(traces[0].tokens.length).to.be.greaterThan(1);
    engine.kill();
    expect(traces.every((t) => t.error === "killed" && t.doneAt === undefined)).to.equal(true);
    expect(engine.running() + engine.waiting()).to.equal(0);
    const counts = traces.map((t) => t.tokens.length);
    let late: string | undefined;
    engine.submit({ promptTokens: 1, outputTokens: 1 }, { token() {}, done() {}, error: (r) => (late = r) });
    expect(late).to.equal(undefined);
    clock.run();
    expect(late).to.equal("killed");
    expect(traces.map((t) => t.tokens.length)).to.deep.equal(counts);
  });

  it("cancel() frees the slot for the next queued sequence and calls nothing more", () => {
    const clock = createVirtualClock();
    const engine = createEngine({ ...SPEC, maxSequences: 1 }, clock);
    const seen: string[] = [];
    const listener = (name: string): EngineListener => ({
      token: () => seen.push(name),
      done: () => seen.push(`${name} done`),
      error: () => seen.push(`${name} error`),
    });
    const first = engine.submit({ promptTokens: 10, outputTokens: 100 }, listener("first"));
    engine.submit({ promptTokens: 10, outputTokens: 1 }, listener("second"));
    clock.run(35);
    first.cancel();
    expect(engine.running()).to.equal(1);
    clock.run();
    expect(seen.filter((s) => s.startsWith("first")).length).to.be.lessThan(5);
    expect(seen.slice(-2)).to.deep.equal(["second", "second done"]);
  });
});
