// Under a surge the edge answers 429 with Retry-After beyond its bounded queue, serves the rest,
// and stays up.
import { expect } from "chai";
import { network } from "hardhat";

import { parseEdgeConfig } from "../../../../edge/config.ts";
import { startEdge } from "../../../../edge/edge.ts";
import type { RunningEdge } from "../../../../edge/edge.ts";
import { metricSum, post } from "../../../helpers/edgeClient.ts";
import { deployEdgeTestbed, EDGE_MODEL, edgeConfig, startRpcBridge } from "../../../helpers/edgeTestbed.ts";

describe("edge under overload", function () {
  this.timeout(120_000);
  let edge: RunningEdge;
  let bridge: Awaited<ReturnType<typeof startRpcBridge>>;

  before(async function () {
    const conn = await network.create();
    const bed = await deployEdgeTestbed(conn);
    bridge = await startRpcBridge(conn.provider);
    const config = edgeConfig(bed, bed.edges[0]!, bridge.url, {
      payment: { required: false },
      limits: { maxConcurrent: 2, maxQueue: 4, queueTimeoutMs: 30_000, bodyLimitBytes: 65_536 },
    });
    edge = await startEdge({ config: parseEdgeConfig(config), account: bed.edges[0]!.key });
  });

  after(async function () {
    await edge?.close();
    await bridge?.close();
  });

  it("answers 429 with Retry-After past maxConcurrent + maxQueue, serves the others, and stays up", async function () {
    const request = { model: EDGE_MODEL, messages: [{ role: "user", content: "surge" }], max_tokens: 400 };
    const answers = await Promise.all(Array.from({ length: 40 }, () => post(edge.url, "/v1/chat/completions", request)));
    const ok = answers.filter((a) => a.status === 200);
    const rejected = answers.filter((a) => a.status === 429);
    expect(ok.length + rejected.length).to.equal(40);
    // At most 2 serving + 4 waiting when the burst lands; the rest are turned away at once.
    expect(ok.length).to.be.at.least(6);
    expect(rejected.length).to.be.at.least(1);
    for (const r of rejected) {
      expect(r.json!.error.type).to.equal("rate_limit_error");
      expect(r.json!.error.code).to.equal("edge_overloaded");
      expect(Number(r.headers.get("retry-after"))).to.be.within(1, 60);
    }
    for (const a of ok) expect(a.json!.usage.completion_tokens).to.equal(400);
    expect(await metricSum(edge.url, "tideway_edge_rejected_overload_total")).to.equal(rejected.length);
    const health = await fetch(`${edge.url}/health`);
    expect(health.status).to.equal(200);
    const after = await post(edge.url, "/v1/chat/completions", { ...request, max_tokens: 4 });
    expect(after.status).to.equal(200);
  });

  it("drains on shutdown: requests in flight when close() begins are answered in full", async function () {
    // A long prompt keeps the two requests in the model long enough (a few hundred ms) to stop the edge under them.
    const request = { model: EDGE_MODEL, messages: [{ role: "user", content: "finish me ".repeat(3000) }], max_tokens: 512, stream: true };
    const inFlight = [post(edge.url, "/v1/chat/completions", request), post(edge.url, "/v1/chat/completions", request)];
    // Both have started streaming before the edge is asked to stop.
    const deadline = Date.now() + 10_000;
    while (((await (await fetch(`${edge.url}/health`)).json()) as { in_flight: number }).in_flight < 2) {
      if (Date.now() > deadline) expect.fail("the requests never ran together");
      await new Promise((r) => setTimeout(r, 5));
    }
    const closed = edge.close();
    for (const answer of await Promise.all(inFlight)) {
      expect(answer.status).to.equal(200);
      expect(answer.done).to.equal(true);
      expect(answer.events!.at(-1)!.usage.completion_tokens).to.equal(512);
    }
    await closed;
    await fetch(`${edge.url}/health`).then(
      () => expect.fail("still listening"),
      () => undefined,
    );
  });
});
