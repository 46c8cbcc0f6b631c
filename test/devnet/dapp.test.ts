// The devnet's demo dApp against a real edge (HTTP, payment required) on the in-process network:
// it opens its own session and pays its first request, retrying while the edge cannot answer yet
// (still starting, or not yet aware of the session); a refusal that retrying cannot fix fails at once, saying where to look.
import { expect } from "chai";
import { network } from "hardhat";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";

import { parseEdgeConfig } from "../../edge/config.ts";
import { startEdge, type RunningEdge } from "../../edge/edge.ts";
import { createDemoDapp, DemoStepError } from "../../devnet/dapp.ts";
import { freePort } from "../../devnet/readiness.ts";
import { fund } from "../../devnet/protocol.ts";
import { deployMarketTestbed, EDGE_MODEL, edgeConfigFor, startRpcBridge } from "../../devnet/testbed.ts";

const TOKEN = 10n ** 18n;

describe("devnet demo dApp", function () {
  this.timeout(60_000);
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function setup(options: { edgeStartsAfterMs?: number } = {}) {
    const conn = await network.create();
    const bed = await deployMarketTestbed(conn);
    const bridge = await startRpcBridge(conn.provider);
    cleanups.push(bridge.close);
    const port = await freePort();
    const config = parseEdgeConfig(
      edgeConfigFor(bed.addresses, bed.edges[0]!.edgeId, bridge.url, {
        listen: { host: "127.0.0.1", port },
        chain: {
          rpcUrl: bridge.url,
          addresses: { registry: bed.addresses.registry, staking: bed.addresses.staking, market: bed.addresses.market },
          pollIntervalMs: 2_000,
        },
      }),
    );
    const start = async () => {
      const edge: RunningEdge = await startEdge({ config, account: bed.edges[0]!.key, privateKey: bed.edges[0]!.privateKey });
      cleanups.push(() => edge.close());
    };
    if (options.edgeStartsAfterMs === undefined) await start();
    else setTimeout(() => void start(), options.edgeStartsAfterMs);
    const [, payer] = await bed.clients.accounts();
    await fund(bed.clients, bed.addresses, bed.admin, payer!, { tokens: 1_000n * TOKEN });
    return { bed, payer: payer!, url: `http://127.0.0.1:${port}` };
  }

  it("pays its first request on its own session, retrying while the edge is not there yet", async function () {
    const { bed, payer, url } = await setup({ edgeStartsAfterMs: 3_000 });
    const dapp = createDemoDapp(bed.clients, {
      chainId: bed.chainId,
      addresses: bed.addresses,
      payer,
      gateway: privateKeyToAccount(generatePrivateKey()),
      model: EDGE_MODEL,
      edges: [{ edgeId: bed.edges[0]!.edgeId, url }],
    });
    const sessionId = await dapp.setup({ escrow: 100n * TOKEN, budget: 10n * TOKEN, days: 1n });
    expect(sessionId).to.equal(bed.sessionId + 1n); // the testbed's payer opened the first one
    const first = await dapp.firstRequest(0, "Hello, Tideway!");
    expect(first.answer).to.be.a("string").and.not.equal("");
    expect(first.due > 0n).to.equal(true);
    expect(dapp.traffic.paid).to.equal(1);
    expect(dapp.signedFor.get(bed.edges[0]!.edgeId)).to.equal(first.due);
  });

  it("fails at once, saying where to look, when the edge refuses for a reason retrying cannot fix", async function () {
    const { bed, payer, url } = await setup();
    const dapp = createDemoDapp(bed.clients, {
      chainId: bed.chainId,
      addresses: bed.addresses,
      payer,
      gateway: privateKeyToAccount(generatePrivateKey()),
      model: "no/such-model",
      edges: [{ edgeId: bed.edges[0]!.edgeId, url }],
    });
    await dapp.setup({ escrow: 100n * TOKEN, budget: 10n * TOKEN, days: 1n });
    const started = Date.now();
    const err = await dapp.firstRequest(0, "Hello").then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(DemoStepError);
    expect((err as Error).message)
      .to.match(/refused the paid request \(404 model_not_found/)
      .and.match(/see its log/);
    expect(Date.now() - started).to.be.lessThan(2_000);
  });
});
