// The routing benchmark's simulation can be trusted at full scale only if it agrees with the real
// thing where both can run: the steady 85 % scenario at loopback size, served once by the real
// router and edges (bench/routing/loopback.ts: delay proxies, simulated inference servers) and
// once by the discrete-event simulation (bench/routing/simulate.ts) on the same arrivals, edges and
// policy. Their p50 and p99 time to first token must agree within 20 %.
import path from "node:path";

import { expect } from "chai";

import { runLoopback } from "../../../bench/routing/loopback.ts";

const ROOT = path.resolve(import.meta.dirname, "../../..");

describe("the routing simulation agrees with the loopback run (steady 85 %, tideway)", function () {
  this.timeout(10 * 60_000);

  it("has p50 and p99 TTFT within 20 % of the real router's", async function () {
    const results = await runLoopback({
      root: ROOT,
      scenarios: ["steady85"],
      policies: ["tideway"],
      lowLoadPolicies: ["tideway"],
      log: () => {},
    });
    const run = results.steady85!.tideway!;
    const detail = JSON.stringify({ loopback: run.ttftMs, simulated: run.simulated.ttftMs });
    expect(run.lost, detail).to.equal(0);
    expect(run.simulated.p50Error, detail).to.be.at.most(0.2);
    expect(run.simulated.p99Error, detail).to.be.at.most(0.2);
  });
});
