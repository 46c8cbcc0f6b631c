// Peak shaving end to end: a router in scheduling mode "queue" in front of two small edges whose
// proxy backends reach simulated inference servers (2 slots each, about a second per answer). A
// burst of streamed chats far over what the 4 slots can start within the requests' deadline is
// partly shed — 429 with Retry-After, answered before any edge works on it — while EVERY admitted
// request completes with its whole answer, and no edge's server ever has to queue a request (the
// router bound each one to a free slot).
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

import { expect } from "chai";
import { network } from "hardhat";

import { simulatedAnswer, startSimulatedInference } from "../../../bench/simulatedInference.ts";
import type { SimulatedServer } from "../../../bench/simulatedInference.ts";
import { untilRouterSees } from "../../../bench/routing/loopback.ts";
import { runOpenLoop } from "../../../bench/routing/openLoop.ts";
import type { OpenLoopRun } from "../../../bench/routing/openLoop.ts";
import { EDGE_MODEL, INPUT_PRICE, OUTPUT_PRICE, startRouterbed } from "../../../devnet/routerbed.ts";
import type { Routerbed } from "../../../devnet/routerbed.ts";

const ROOT = path.resolve(import.meta.dirname, "../../..");
const SLOTS = 2;
/** 20 tokens at 50 ms a step: each answer holds its slot for about a second. */
const OUTPUT_TOKENS = 20;
const DEADLINE_MS = 800;
const BURST = 24;

describe("the router sheds a burst over capacity (2 edges, 2 slots each, queue mode)", function () {
  this.timeout(5 * 60_000);
  let bed: Routerbed;
  let sims: SimulatedServer[] = [];
  let run: OpenLoopRun;
  let workDir: string;

  before(async function () {
    sims = await Promise.all(
      [0, 1].map(() => startSimulatedInference({ maxSequences: SLOTS, prefillTokensPerSecond: 20_000, decodeMs: 50, batchSlowdown: 0 })),
    );
    // The edge's declared capacity is 10 tokens/s per slot: the router's slot prior is capacity / 10.
    const edge = (sim: SimulatedServer) => ({
      capacity: 10 * SLOTS,
      overrides: {
        models: [
          {
            name: EDGE_MODEL,
            backend: { type: "openai" as const, baseUrl: sim.url, tokensPerSecond: 10 * SLOTS },
            price: { inputPerToken: INPUT_PRICE.toString(), outputPerToken: OUTPUT_PRICE.toString() },
            maxTokens: 1024,
            defaultMaxTokens: 64,
          },
        ],
        // The edge itself would take far more: only the router's queue can keep its server from queueing.
        limits: { maxConcurrent: 256, maxQueue: 256, queueTimeoutMs: 60_000, bodyLimitBytes: 1_048_576, drainTimeoutMs: 1_000 },
      },
    });
    // Every routing decision logged at info, to check its line.
    const routing = { policy: "tideway" as const, scheduling: "queue" as const, decisionLogShare: 1 };
    workDir = mkdtempSync(path.join(tmpdir(), "tideway-shedding-"));
    bed = await startRouterbed({
      conn: await network.create(),
      root: ROOT,
      workDir,
      edges: sims.map(edge),
      routerOverrides: { routing },
    });
    await untilRouterSees(bed);
    const url = `${bed.routers[0]!.url}/v1/chat/completions`;
    const headers = { authorization: `Bearer ${bed.tenant.apiKey}` };
    // The tenant's first request opens its session on-chain; the burst comes after.
    const first = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: JSON.stringify({ model: EDGE_MODEL, messages: [{ role: "user", content: "hello" }], max_tokens: 2, stream: true }),
    });
    expect(first.status, await first.text()).to.equal(200);
    run = await runOpenLoop({
      url,
      headers,
      requests: Array.from({ length: BURST }, (_, i) => ({
        at: i * 5,
        body: { model: EDGE_MODEL, messages: [{ role: "user", content: `burst ${i}` }], max_tokens: OUTPUT_TOKENS, temperature: 0 },
        headers: { "x-tideway-priority": "interactive", "x-tideway-deadline-ms": String(DEADLINE_MS) },
        expectedText: simulatedAnswer(OUTPUT_TOKENS),
      })),
    });
  });

  after(async function () {
    await bed?.stop();
    await Promise.all(sims.map((s) => s.close()));
  });

  it("answers the requests it cannot start in time 429 with Retry-After, fast", function () {
    const shed = run.records.filter((r) => r.status === 429);
    // 4 slots, about a second per answer, an 800 ms deadline: at most about 8 of 24 can start in time.
    expect(shed.length, JSON.stringify(run.records.map((r) => r.status))).to.be.at.least(BURST - 4 * SLOTS * 2);
    for (const r of shed) {
      expect(r.retryAfterS, r.error).to.be.a("number").and.at.least(1);
      // Shed on its predicted wait, or at the latest when its deadline passed in the queue.
      expect(r.responseMs!).to.be.below(DEADLINE_MS + 500);
    }
  });

  it("completes every admitted request with its whole answer", function () {
    const admitted = run.records.filter((r) => r.status !== 429);
    expect(admitted.length).to.be.at.least(2 * SLOTS);
    for (const r of admitted) {
      expect(r.status, r.error).to.equal(200);
      expect(r.completed, r.error).to.equal(true);
      expect(r.textMatches).to.equal(true);
    }
  });

  it("never sends an edge more than its slots", function () {
    for (const sim of sims) {
      const stats = sim.stats();
      expect(stats.queueWaits, JSON.stringify(stats)).to.equal(0);
      expect(stats.maxRunning).to.be.at.most(SLOTS);
    }
  });

  it("tells operators: sheds by class and reason, waits, queue depth and utilization in /metrics, and each decision's terms in the log", async function () {
    const text = await (await fetch(`${bed.routers[0]!.url}/metrics`)).text();
    const value = (pattern: RegExp) => [...text.matchAll(pattern)].reduce((sum, m) => sum + Number(m[1]), 0);
    const shed = run.records.filter((r) => r.status === 429).length;
    expect(value(/^tideway_router_shed_total\{class="interactive",reason="[a-z_]+"\} (\d+)$/gm)).to.equal(shed);
    expect(value(/^tideway_router_queue_wait_seconds_count\{class="interactive"\} (\d+)$/gm)).to.be.at.least(BURST - shed);
    expect(text).to.match(/^tideway_router_queue_depth\{class="interactive"\} 0$/m);
    expect(text).to.match(/^tideway_router_edge_utilization\{edge="\d+"\} [\d.]+$/m);
    const decisions = readFileSync(path.join(workDir, "router-1.log"), "utf8")
      .split("\n")
      .filter((line) => line.includes('"routing decision"'))
      .map((line) => JSON.parse(line) as { edgeId?: string; reason?: string; terms?: Record<string, number>; priority?: string });
    expect(decisions.length).to.be.at.least(BURST - shed);
    for (const d of decisions.slice(0, 5)) {
      expect(d.priority).to.equal("interactive");
      expect(d.edgeId).to.be.a("string");
      expect(d.terms?.estimateMs).to.be.a("number");
    }
  });
});
