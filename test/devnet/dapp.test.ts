// The devnet's demo dApp: an ordinary program on the official openai client, against a real router
// and real edges (processes) on the in-process network. Its on-chain setup (deposit, authorize the
// router's key) makes it a payable tenant; its first question is answered and paid; its failover
// show kills the edge serving a stream mid-answer and the stream completes on the other edge.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

import { expect } from "chai";
import { network } from "hardhat";
import OpenAI from "openai";

import { createDemoDapp, DemoStepError, redeemedByEdge, setUpDemoTenant } from "../../devnet/dapp.ts";
import { fund } from "../../devnet/protocol.ts";
import { EDGE_MODEL, startRouterbed, type Routerbed } from "../../devnet/routerbed.ts";

const TOKEN = 10n ** 18n;
const ROOT = path.resolve(import.meta.dirname, "../..");

describe("devnet demo dApp", function () {
  this.timeout(180_000);
  let bed: Routerbed;

  before(async function () {
    bed = await startRouterbed({
      conn: await network.create(),
      root: ROOT,
      workDir: mkdtempSync(path.join(tmpdir(), "tideway-dapp-")),
      edges: [{}, {}],
    });
    await waitForEdges(bed, 2);
  });

  after(async function () {
    await bed?.stop();
  });

  it("refuses to set up a tenant whose payer cannot fund the escrow, saying so", async function () {
    const [, , poor] = await bed.market.clients.accounts();
    const err = await setUpDemoTenant(bed.market.clients, bed.market.addresses, {
      payer: poor!,
      router: bed.routerKey.address,
      escrow: 10n ** 30n,
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(DemoStepError);
    expect((err as Error).message).to.match(/holds .* less than the .* it deposits: fund it/);
  });

  it("is answered through the router once it deposited and authorized the router's key, and the edges redeem what it cost", async function () {
    const [, payer] = await bed.market.clients.accounts();
    await fund(bed.market.clients, bed.market.addresses, bed.market.admin, payer!, { tokens: 100n * TOKEN });
    const tenant = await bed.addTenant(payer!);
    const before = createDemoDapp({ baseURL: `${bed.routers[0]!.url}/v1`, apiKey: tenant.apiKey, model: EDGE_MODEL });
    const refused = await before.firstRequest("Hello").then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(refused).to.be.instanceOf(OpenAI.APIError);
    expect((refused as InstanceType<typeof OpenAI.APIError>).status).to.equal(402);
    expect((refused as Error).message).to.include("authorizeSigner");

    await setUpDemoTenant(bed.market.clients, bed.market.addresses, { payer: payer!, router: bed.routerKey.address, escrow: 50n * TOKEN });
    const dapp = createDemoDapp({ baseURL: `${bed.routers[0]!.url}/v1`, apiKey: tenant.apiKey, model: EDGE_MODEL });
    const first = await dapp.firstRequest("Hello, Tideway!");
    expect(first.answer).to.not.equal("");
    expect(BigInt(first.cost)).to.be.greaterThan(0n);
    expect(bed.edges.map((e) => e.edgeId.toString())).to.include(first.edge);
    const { sessions } = await redeemedByEdge(
      bed.market.clients,
      bed.market.addresses,
      payer!,
      bed.edges.map((e) => e.edgeId),
    );
    expect(sessions).to.have.length(1);
  });

  it("shows a failover: the stream completes on the other edge after the one serving it is killed", async function () {
    const dapp = createDemoDapp({ baseURL: `${bed.routers[0]!.url}/v1`, apiKey: bed.tenant.apiKey, model: EDGE_MODEL });
    const shown = await dapp.streamThroughFailover("Tell me a long story about the sea.", 3, (edge) => {
      const served = bed.edges.find((e) => e.edgeId.toString() === edge)!;
      process.kill(-served.service.pid!, "SIGKILL");
      return true;
    });
    expect(shown.edges[0]).to.equal(shown.killed);
    expect(shown.edges.length).to.be.greaterThan(1);
    expect(shown.edges.slice(1)).to.not.include(shown.killed);
    expect(shown.tokens).to.equal(1024);
  });
});

async function waitForEdges(bed: Routerbed, n: number): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const r = (await (await fetch(`${bed.routers[0]!.url}/tideway/v1/edges`)).json()) as { edges: Array<{ models: string[] }> };
    if (r.edges.filter((e) => e.models.length > 0).length >= n) return;
    if (Date.now() > deadline) throw new Error(`edges not ready: ${JSON.stringify(r)}`);
    await new Promise((res) => setTimeout(res, 250));
  }
}
